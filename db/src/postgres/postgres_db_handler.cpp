#include <parley/db/postgres_db_handler.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <random>
#include <set>
#include <unordered_set>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/db/timestamp.hpp>
#include <parley/errors.hpp>
#include <parley/fnv.hpp>
#include <parley/log.hpp>
#include <parley/reply.hpp>
#include <parley/session.hpp>
#include <parley/transition.hpp>

#include "../row_text.hpp"
#include "../session_transfer.hpp"
#include "pg_batch.hpp"
#include "pg_connection.hpp"
#include "pg_reader.hpp"
#include "pg_schema.hpp"

namespace parley::db {

bool is_postgres_url(std::string_view path) {
  return path.starts_with("postgresql://") || path.starts_with("postgres://");
}

int shard_of(std::string_view agent_name, std::string_view session_id) {
  // The same on every node and every platform.
  return static_cast<int>(fnv1a_pair(agent_name, session_id) % static_cast<std::uint64_t>(shard_count));
}

namespace {

using pg::query;
using detail::closes_turn;
using detail::describe;
using detail::field;
using detail::to_text;

// A double as text PostgreSQL reads back to the same value.
std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// A payload's number as a parameter (null when absent), whole or exact.
std::optional<std::string> number(const json& payload, const char* key, bool integer) {
  const auto v = detail::number_field(payload, key);
  if (!v) return std::nullopt;
  return integer ? std::to_string(static_cast<std::int64_t>(*v)) : exact(*v);
}

// PostgreSQL text must not hold NUL bytes (SQLite keeps them): they become U+FFFD.
std::string pg_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\0')
      out += "\xEF\xBF\xBD";
    else
      out += c;
  }
  return out;
}

// The session's row, by (agent, id): $1 and $2 of every per-session statement.
constexpr const char* session_row = "(SELECT id FROM session WHERE agent_name = $1 AND session_id = $2)";

std::string sql_with_row(const char* before, const char* after) {
  return std::string(before) + session_row + after;
}

// chat.seq: the reply's number; NULL for the user's rows and replies not sent by a session.
std::optional<std::string> reply_seq_param(const reply& message, bool is_user) {
  if (is_user || message.seq <= 0) return std::nullopt;
  return std::to_string(message.seq);
}

// What a failure says, for the log.
std::string error_text(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

std::exception_ptr as_db_error(std::exception_ptr e, const std::string& what) {
  try {
    std::rethrow_exception(e);
  } catch (const db_error&) {
    return std::current_exception();
  } catch (const std::exception& x) {
    return std::make_exception_ptr(db_error(what + ": " + x.what()));
  }
}

}  // namespace

// The node's row: its heartbeat and where it serves ($1 agent, $2 node, $3 address).
constexpr const char* upsert_node_sql =
    "INSERT INTO parley_node (node, agent_name, address) VALUES ($2, $1, $3) ON CONFLICT (node) "
    "DO UPDATE SET heartbeat = now(), address = EXCLUDED.address RETURNING generation";

// ---- the connection's thread -------------------------------------------------------------------

struct postgres_db_handler::impl : std::enable_shared_from_this<impl> {
  struct item {
    std::vector<query> statements;  // run in order, before `rows`
    std::vector<pg::row> rows;      // written with the batch's other rows of their tables
    std::vector<pg::timer_op> timers;  // of `session`, after `statements`
    bool link = false;  // rows[0] is a reply closing a turn: the turn's reasoning steps point at it
    std::function<void()> committed;
    std::function<void(const std::string&)> refused;  // not stored, and why (io thread)
    std::uint64_t order = 0;  // its place in recording order (push), kept when sent again
    std::string session;  // touched: its last_activity (and state, variables) move on
    std::string timestamp;
    std::optional<std::string> state;
    std::optional<std::string> variables;
    std::size_t size() const { return statements.size() + rows.size() + timers.size(); }
  };
  using batch_done = std::function<void(std::exception_ptr, std::vector<pg::result>)>;
  static constexpr std::size_t max_batch_statements = 4000;
  // Batches sent and not yet answered: the next is gathered and sent while the server works on
  // the one before (pipeline mode keeps them in order on the one connection).
  static constexpr int max_in_flight = 2;

  net::io_context io{1};
  net::executor_work_guard<net::io_context::executor_type> guard = net::make_work_guard(io);
  std::thread thread;
  net::steady_timer retry{io};
  net::steady_timer stall_timer{io};  // the server is out of room: batches wait for it
  std::shared_ptr<pg::connection> conn;
  postgres_options options;
  std::string agent;
  std::string where;  // the URI without its password

  std::mutex mu;
  std::condition_variable cv;
  std::deque<item> queue;          // under mu
  std::size_t queued_statements = 0;
  bool kick_posted = false;
  bool stopping = false;
  std::unordered_set<std::string> reasoning_turns;  // sessions whose turn has reasoning steps (under mu)

  // Ownership (several nodes): the shards this node holds, at the epoch it claimed them, until
  // (on the monotonic clock) its last renewal lapses minus a margin: past it, it stops acting
  // for them before any other node may take them (under mu).
  struct lease {
    std::int64_t epoch = 0;
    std::chrono::steady_clock::time_point valid_until;
  };
  std::string node;
  std::map<int, lease> held;
  // The node row's generation when `held` last matched the server's leases (read with them by
  // a renewal): while the server's is the same, no lease of ours changed, and the fence checks
  // no lease row (parley_fence, schema 5). -1: not known yet.
  std::int64_t seen_generation = -1;
  // io thread: shards with a claim on its way for async_claim, and who waits for its answer.
  std::map<int, std::vector<std::function<void(db_handler::ownership, std::exception_ptr)>>> claiming;
  std::set<int> taken_over;  // shards another node took from this one: never claimed back by a write
  std::function<void(std::function<bool(std::string_view)>)> lost_handler;  // under mu
  std::function<void(std::vector<std::string>)> orphans_handler;            // under mu
  net::steady_timer renew_timer{io};
  bool renewing = false;  // io thread
  std::size_t unsent_total = 0;           // items queued or in flight (under mu)
  // Replies are delivered in recording order, whatever order their batches commit in (a batch
  // refused by the fence, or sent again, is overtaken by the next one in flight): `committed`
  // runs only once every item recorded before it is committed or dropped.
  std::uint64_t next_order = 0;              // under mu
  std::set<std::uint64_t> outstanding;       // items queued or in flight, by order (under mu)
  std::map<std::uint64_t, std::function<void()>> ready;  // committed, waiting for earlier ones (io)

  // io thread only
  bool connected = false;
  bool closing = false;
  int in_flight = 0;
  std::size_t solo = 0;  // the next items go one per batch (a batch failed on a row)
  std::vector<item> retry_items;
  std::vector<std::int64_t> ids;  // row ids reserved from parley_row_id, used in order
  std::size_t next_id = 0;
  bool preparing = false;  // ids or shards are being fetched for the next batch
  std::vector<std::function<void()>> after_prepare;  // reads that follow the batch waiting for ids
  std::chrono::milliseconds backoff{100};
  bool reported_down = false;
  bool stalled = false;  // the server refused a batch for lack of room (SQLSTATE class 53)
  bool stalled_reported = false;
  std::atomic<std::uint64_t> dropped{0};

  explicit impl(postgres_options o) : options(std::move(o)), where(pg::connection::redact(options.url)) {
    std::random_device rd;
    char buf[33];
    for (int i = 0; i < 4; ++i) std::snprintf(buf + i * 8, 9, "%08x", static_cast<unsigned>(rd()));
    node = buf;
  }

  int shard(const std::string& session) const { return shard_of(agent, session); }

  bool holds(int s, std::chrono::steady_clock::time_point now) const {  // under mu
    auto it = held.find(s);
    return it != held.end() && it->second.valid_until > now;
  }

  // Any thread: queue one recording call's statements.
  void push(item it) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return queued_statements < options.max_queued || stopping; });
    queued_statements += it.size();
    ++unsent_total;
    it.order = ++next_order;
    outstanding.insert(it.order);
    queue.push_back(std::move(it));
    if (!kick_posted) {
      kick_posted = true;
      net::post(io, [self = shared_from_this()] { self->pump(); });
    }
  }

  // io thread: send what is queued, unless a batch is in flight already (then it is sent when
  // that one is done: batches grow with the load). `now`: send even so (a read waits on it).
  void pump(bool now = false) {
    std::vector<item> items;
    {
      std::lock_guard lock(mu);
      kick_posted = false;
      // While ids or shards are fetched for a batch, nothing is sent past it (order).
      if (!connected || preparing || stalled || (in_flight >= max_in_flight && !now) || queue.empty()) return;
      // A batch is one transaction: big enough to make commits rare, small enough that
      // progress (and close(), and the queue's room) moves in steps.
      const std::size_t n = solo ? 1 : queue.size();
      std::size_t statements = 0;
      for (std::size_t i = 0; i < n && statements < max_batch_statements; ++i) {
        statements += queue.front().size();
        queued_statements -= queue.front().size();
        items.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      if (solo) --solo;
    }
    cv.notify_all();  // room in the queue
    send(std::move(items));
  }

  void send(std::vector<item> items) {
    std::size_t need = 0;
    for (auto& it : items)
      for (auto& r : it.rows) need += r.id == 0;
    if (ids.size() - next_id < need) return reserve_ids(need, std::move(items));
    // The shards this batch writes for: claimed first when not held (a write implies a claim;
    // agents claim before they act, this catches the rest), then fenced in the transaction.
    std::set<int> shards;
    for (auto& it : items)
      if (!it.session.empty()) shards.insert(shard(it.session));
    std::vector<int> missing;
    std::vector<std::optional<std::string>> fence_shards, fence_epochs;
    std::int64_t generation = -1;
    {
      std::lock_guard lock(mu);
      generation = seen_generation;
      const auto now = std::chrono::steady_clock::now();
      for (int sh : shards) {
        if (!holds(sh, now)) {
          missing.push_back(sh);
        } else {
          fence_shards.emplace_back(std::to_string(sh));
          fence_epochs.emplace_back(std::to_string(held[sh].epoch));
        }
      }
    }
    if (!missing.empty()) {
      // A shard another node took: this node's rows for it are refused here, not written. One
      // that merely lapsed (the server was away, the process paused) is claimed again: if no
      // other node took it meanwhile, nothing was lost and the rows go out under a new epoch.
      std::set<int> refused;
      std::vector<int> claimable;
      {
        std::lock_guard lock(mu);
        for (int sh : missing) {
          if (taken_over.contains(sh))
            refused.insert(sh);
          else
            claimable.push_back(sh);
        }
      }
      if (!refused.empty()) {
        refuse(items, refused, "another node took them over");
        if (items.empty()) return pump();
      }
      if (!claimable.empty()) return claim_before_send(std::move(claimable), std::move(items));
      return send(std::move(items));
    }
    pg::batch_builder b(agent);
    if (!shards.empty())
      b.raw({"SELECT parley_fence($1, $2, $3, $4, $5::bigint)",
             {agent, node, pg::text_array(fence_shards), pg::text_array(fence_epochs), std::to_string(generation)}});
    for (auto& it : items) {
      if (!it.session.empty()) b.touch(it.session, it.timestamp, it.state, it.variables);
      for (auto& q : it.statements) b.raw(q);
      for (auto& t : it.timers) b.timer(it.session, t);
      std::int64_t prediction = 0;
      for (auto& r : it.rows) {
        // Given once: a batch sent again writes the same ids (recover tells whether it landed).
        if (r.id == 0) r.id = ids[next_id++];
        if (r.t == pg::table::intent_prediction) prediction = r.id;
        if (r.t == pg::table::parameter && r.values.at(0)->empty()) r.values[0] = std::to_string(prediction);
        b.add(r);
      }
      if (it.link && !it.rows.empty()) {
        // The turn's steps (after its user message) end on the last reply that closes it.
        b.raw({sql_with_row("UPDATE reasoning_step SET chat_id = $3::bigint WHERE session_id = ",
                            " AND id < $3::bigint AND id > coalesce((SELECT max(u.id) FROM chat u WHERE "
                            "u.session_id = reasoning_step.session_id AND u.is_user <> 0 AND u.id < $3::bigint), 0)"),
               {agent, it.session, std::to_string(it.rows.front().id)}});
      }
    }
    ++in_flight;
    auto batch = b.take();
    auto shared = std::make_shared<std::vector<item>>(std::move(items));
    conn->async_batch(std::move(batch), [self = shared_from_this(), shared](
                                            std::exception_ptr e, std::vector<pg::result>) {
      self->sent(shared, e);
    });
  }

  // Row ids come in blocks from the shared sequence (several nodes may draw from it at once:
  // each value is theirs alone), so that ids follow the write order. Counts as a batch in flight.
  void reserve_ids(std::size_t need, std::vector<item> items) {
    conn->async_batch({pg::reserve_ids_query(need)},
                      [self = shared_from_this(), resume = hold(std::move(items))](
                          std::exception_ptr e, std::vector<pg::result> rs) {
                        if (!e && rs.size() != 1)
                          e = std::make_exception_ptr(pg::pg_error("no row ids from parley_row_id", ""));
                        resume(e, [&](std::vector<item>&) {
                          self->ids = pg::reserved_ids(rs.front());
                          self->next_id = 0;
                        });
                      });
  }

  // io thread: the batch `items` waits for something fetched first (row ids, claims). It
  // counts as in flight, and nothing is sent past it meanwhile (order). The returned
  // completion fails the batch on an error (as if sent); else `go` sees the items first, then
  // what is left of them is sent, and the reads that waited follow.
  using resume_batch = std::function<void(std::exception_ptr, const std::function<void(std::vector<item>&)>& go)>;
  resume_batch hold(std::vector<item> items) {
    ++in_flight;
    preparing = true;
    auto shared = std::make_shared<std::vector<item>>(std::move(items));
    return [self = shared_from_this(), shared](std::exception_ptr e, const std::function<void(std::vector<item>&)>& go) {
      self->preparing = false;
      if (e) {
        self->sent(shared, e);
      } else {
        --self->in_flight;
        go(*shared);
        if (!shared->empty()) self->send(std::move(*shared));
      }
      self->prepared();
    };
  }

  // ---- ownership -------------------------------------------------------------------------

  struct claim_answer {
    int shard = 0;
    std::optional<std::int64_t> epoch;  // claimed at this epoch; else owned by `owner`
    std::string owner, address;
  };
  using claim_done = std::function<void(std::exception_ptr, std::vector<claim_answer>)>;

  // io thread: claims each shard that is free, lapsed, or ours already (a new epoch: any batch
  // of ours still in flight under the old one is refused), and says who owns the others.
  void claim(std::vector<int> shards, claim_done done) {
    std::vector<std::optional<std::string>> want;
    for (int sh : std::set<int>(shards.begin(), shards.end())) want.emplace_back(std::to_string(sh));
    const auto sent_at = std::chrono::steady_clock::now();
    // parley_claim (pg_schema.cpp, version 5): a shard taken from a lapsed owner waits for that
    // owner's batch in flight, whose fence holds its node row.
    query q{"SELECT r_shard, r_epoch, r_owner, r_address FROM parley_claim($1, $2, $3::int[], $4::bigint)",
            {agent, node, pg::text_array(want), std::to_string(options.lease_ttl.count())}};
    conn->async_batch({std::move(q)}, [self = shared_from_this(), sent_at, done = std::move(done)](
                                          std::exception_ptr e, std::vector<pg::result> rs) {
      std::vector<claim_answer> out;
      if (!e && rs.size() == 1) {
        const auto& r = rs.front();
        std::lock_guard lock(self->mu);
        for (int i = 0; i < r.rows(); ++i) {
          claim_answer a;
          a.shard = static_cast<int>(r.integer(i, 0));
          if (!r.is_null(i, 1)) {
            a.epoch = r.integer(i, 1);
            self->held[a.shard] = {*a.epoch, sent_at + self->valid_for()};
            self->taken_over.erase(a.shard);
          } else {
            a.owner = r.optional_text(i, 2).value_or("");
            a.address = r.optional_text(i, 3).value_or("");
          }
          out.push_back(std::move(a));
        }
        self->schedule_renew();
      } else if (!e) {
        e = std::make_exception_ptr(pg::pg_error("no answer to a shard claim", ""));
      }
      done(e, std::move(out));
    });
  }

  // How long a renewal sent now keeps this node acting: the lease minus a margin for clock
  // drift between this host's monotonic clock and the server's.
  std::chrono::steady_clock::duration valid_for() const {
    return options.lease_ttl - std::max(options.lease_ttl / 5, std::chrono::milliseconds(200));
  }

  // io thread: claims the shards a batch needs, then sends it; the rows of sessions another
  // node owns are refused (this node must not act for them) and that is said.
  void claim_before_send(std::vector<int> shards, std::vector<item> items) {
    claim(std::move(shards), [self = shared_from_this(), resume = hold(std::move(items))](
                                 std::exception_ptr e, std::vector<claim_answer> as) {
      resume(e, [&](std::vector<item>& batch) {
        std::set<int> others;
        for (auto& a : as)
          if (!a.epoch) others.insert(a.shard);
        if (!others.empty()) self->refuse(batch, others, "another node owns them");
      });
    });
  }

  // io thread: a batch got its ids or shards and was sent (or is fetching the next thing it
  // needs: then this waits for that). Reads asked meanwhile go after the batch they must see.
  void prepared() {
    if (preparing) return;
    for (auto& r : std::exchange(after_prepare, {})) r();
    pump();
  }

  // io thread: drops the items of sessions in `shards` (not ours), counted and said once, and
  // tells the agent it no longer owns those sessions.
  void refuse(std::vector<item>& items, const std::set<int>& shards, const std::string& why) {
    std::vector<item> keep;
    std::vector<std::uint64_t> gone;
    std::size_t refused = 0;
    for (auto& it : items) {
      if (!it.session.empty() && shards.contains(shard(it.session))) {
        ++refused;
        gone.push_back(it.order);
        // Not stored, so never delivered: the client must not see a reply the database
        // refused (the session moved; its new owner answers). Nothing waits for it.
        it.committed = nullptr;
        if (it.refused) it.refused("this node no longer owns the session (" + why + ")");
      } else {
        keep.push_back(std::move(it));
      }
    }
    if (refused) {
      dropped += refused;
      PARLEY_LOG(error, "db: " << refused << " row group(s) refused: this node no longer owns their sessions ("
                                << why << "); they are not written");
      std::lock_guard lock(mu);
      unsent_total -= refused;
      for (auto o : gone) outstanding.erase(o);
    }
    cv.notify_all();
    items = std::move(keep);
    deliver_in_order();
    lose(shards);
  }

  // Any thread: this node stops acting for the sessions of `shards` (`taken`: another node
  // has them; else they lapsed).
  void lose(const std::set<int>& shards, bool taken = true) {
    std::function<void(std::function<bool(std::string_view)>)> h;
    {
      std::lock_guard lock(mu);
      for (int sh : shards) {
        held.erase(sh);
        if (taken) taken_over.insert(sh);
      }
      h = lost_handler;
    }
    if (shards.empty()) return;
    PARLEY_LOG(warn, "db: this node (" << node.substr(0, 8) << ") no longer owns " << shards.size()
                                       << " shard(s); their sessions are dropped here");
    if (h) h([shards, a = agent](std::string_view sid) { return shards.contains(shard_of(a, sid)); });
  }

  // io thread: renews every held lease every lease_ttl / 3, and notices the ones that lapsed.
  void schedule_renew() {
    if (renewing || closing) return;
    renewing = true;
    renew_timer.expires_after(options.lease_ttl / 3);
    renew_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->renewing = false;
      if (!ec && !self->closing) self->renew();
    });
  }

  void renew() {
    std::set<int> lapsed;
    {
      std::lock_guard lock(mu);
      const auto now = std::chrono::steady_clock::now();
      for (auto& [sh, l] : held)
        if (l.valid_until <= now) lapsed.insert(sh);
    }
    if (!lapsed.empty()) lose(lapsed, false);  // the server was away too long: stop acting first
    if (!connected) return schedule_renew();
    const auto sent_at = std::chrono::steady_clock::now();
    bool scan = false;
    {
      std::lock_guard lock(mu);
      scan = static_cast<bool>(orphans_handler);
    }
    conn->async_batch(
        // The leases before the node's row: a claim taking a lapsed shard of ours holds its
        // lease row, then waits for our node row; the other order would be a deadlock.
        {{"UPDATE shard_lease SET lease_until = now() + $3::bigint * interval '1 millisecond' "
          "WHERE agent_name = $1 AND owner = $2 RETURNING shard, epoch",
          {agent, node, std::to_string(options.lease_ttl.count())}},
         {upsert_node_sql, {agent, node, options.address}},
         // Sessions with timers whose shard no live node holds (their node died): taken over
         // here, so their timers fire (late, once) without waiting for a client.
         {"SELECT DISTINCT s.session_id FROM timer t JOIN session s ON s.id = t.session_id "
          "LEFT JOIN shard_lease l ON l.agent_name = s.agent_name AND l.shard = s.shard "
          "WHERE s.agent_name = $1 AND $2::boolean AND s.shard IS NOT NULL AND s.closed_reason IS NULL "
          "AND (l.owner IS NULL OR l.lease_until < now()) LIMIT 200",
          {agent, scan ? "true" : "false"}}},
        [self = shared_from_this(), sent_at](std::exception_ptr e, std::vector<pg::result> rs) {
          if (!e && rs.size() == 3) {
            std::set<int> gone;
            {
              std::lock_guard lock(self->mu);
              std::map<int, std::int64_t> still;
              for (int i = 0; i < rs[0].rows(); ++i)
                still[static_cast<int>(rs[0].integer(i, 0))] = rs[0].integer(i, 1);
              for (auto& [sh, l] : self->held) {
                auto f = still.find(sh);
                if (f == still.end() || f->second != l.epoch)
                  gone.insert(sh);
                else
                  l.valid_until = sent_at + self->valid_for();
              }
            }
            if (!gone.empty()) self->lose(gone);
            // Every lease still held matches the server's at this generation (read in the same
            // transaction, after the leases); the ones gone were let go just above. A claim sent
            // after this renewal moved the generation on, if it took a lease of ours.
            if (rs[1].rows() == 1) {
              std::lock_guard lock(self->mu);
              self->seen_generation = rs[1].integer(0, 0);
            }
            std::vector<std::string> orphans;
            for (int i = 0; i < rs[2].rows(); ++i) orphans.emplace_back(rs[2].text(i, 0));
            std::function<void(std::vector<std::string>)> h;
            {
              std::lock_guard lock(self->mu);
              h = self->orphans_handler;
            }
            if (h && !orphans.empty()) h(std::move(orphans));
          }
          if (e) PARLEY_LOG(warn, "db: renewing this node's leases failed: " << error_text(e));
          self->schedule_renew();
        });
  }

  // io thread: `items` go back to the front of the queue, in order, and out again.
  void send_again(std::vector<item>& items) {
    {
      std::lock_guard lock(mu);
      for (auto it = items.rbegin(); it != items.rend(); ++it) {
        queued_statements += it->size();
        queue.push_front(std::move(*it));
      }
    }
    net::post(io, [self = shared_from_this()] { self->pump(); });
  }

  void sent(const std::shared_ptr<std::vector<item>>& items, std::exception_ptr e) {
    --in_flight;
    if (!e) {
      if (stalled_reported) {
        PARLEY_LOG(warn, "db: PostgreSQL at " << where << " takes rows again; sending the queued rows");
        stalled_reported = false;
      }
      finished(*items);
      return pump();
    }
    std::string why = "unknown error", state;
    bool lost = true;
    try {
      std::rethrow_exception(e);
    } catch (const pg::pg_error& x) {
      why = x.what();
      state = x.sqlstate;
      lost = x.connection_lost();
      bool register_again = false;
      if (x.sqlstate == "PF001" && why.find("no longer registered") != std::string::npos) {
        std::lock_guard lock(mu);
        register_again = !stopping;
        if (register_again) seen_generation = -1;  // the new row's generation starts afresh
      }
      if (register_again) {
        // This node's row was deleted while it runs (by hand, or a restore): it registers again
        // and the batch goes again, fenced lease by lease.
        PARLEY_LOG(warn, "db: this node's row in parley_node at " << where
                             << " was deleted while the node runs; registered again");
        conn->async_batch({{upsert_node_sql, {agent, node, options.address}}},
                          [](std::exception_ptr, std::vector<pg::result>) {});
        return send_again(*items);
      }
      if (x.sqlstate == "PF001") {
        // The fence refused the batch: this node lost those shards. Their rows go; the rest
        // are sent again, in order, ahead of what is queued.
        std::set<int> gone;
        const auto at = why.find("shards ");
        if (at != std::string::npos) {
          std::size_t pos = at + 7;
          while (pos < why.size() && std::isdigit(static_cast<unsigned char>(why[pos]))) {
            std::size_t end = pos;
            gone.insert(std::stoi(why.substr(pos), &end));
            pos += end;
            if (pos < why.size() && why[pos] == ',') ++pos;
          }
        }
        if (gone.empty()) {  // unreadable: give up every shard of the batch
          for (auto& it : *items)
            if (!it.session.empty()) gone.insert(shard(it.session));
        }
        refuse(*items, gone, "its lease was taken over");
        return send_again(*items);
      }
    } catch (const std::exception& x) {
      why = x.what();
    }
    if (state.size() == 5 && state.compare(0, 2, "53") == 0) {
      // Insufficient resources (53100 disk full, 53200 out of memory, 53300 too many
      // connections): nothing is wrong with the rows, the server has no room for them now.
      // They wait at the front of the queue and go again every second; recording calls wait
      // once db.max_queued statements do. Nothing is dropped.
      if (!stalled_reported)
        PARLEY_LOG(error, "db: PostgreSQL at " << where << " cannot store rows now: " << why << " ("
                             << (state == "53100" ? "its disk is full: free space on the database server"
                                                  : "it is out of resources: see the server's log")
                             << "); the rows stay queued and are sent again every second");
      stalled_reported = true;
      stalled = true;
      send_again(*items);
      stall_timer.expires_after(std::chrono::seconds(1));
      stall_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec) return;
        self->stalled = false;
        self->pump();
      });
      return;
    }
    if (state == "26000") {  // invalid_sql_statement_name
      // A batch pipelined behind one that failed used a statement that one was to prepare:
      // nothing is wrong with its rows. Sent again (prepared anew), ahead of what is queued.
      return send_again(*items);
    }
    if (lost) {
      // Sent again once the connection is back (in order: batches fail in the order sent).
      for (auto& it : *items) retry_items.push_back(std::move(it));
      return connection_lost(why);
    }
    if (items->size() == 1) {
      // The row the server refuses: dropped alone, said once per row.
      dropped += 1;
      PARLEY_LOG(error, "db: PostgreSQL refused a row" << (items->front().session.empty() ? "" : " of session ")
                         << (items->front().session.empty() ? std::string() : session_tag(items->front().session))
                         << ": " << why << " (the row is dropped; the others are kept)");
      // Not stored, so a reply in it is not delivered (a second owner's reply number, say).
      items->front().committed = nullptr;
      if (items->front().refused) items->front().refused("PostgreSQL refused it: " + why);
      finished(*items);
      return pump();
    }
    // Find the row: send this batch's items one by one, ahead of what is queued.
    {
      std::lock_guard lock(mu);
      for (auto it = items->rbegin(); it != items->rend(); ++it) {
        queued_statements += it->size();
        queue.push_front(std::move(*it));
      }
      solo += items->size();
    }
    pump();
  }

  void finished(std::vector<item>& items) {
    {
      std::lock_guard lock(mu);
      unsent_total -= items.size();
      for (auto& it : items) outstanding.erase(it.order);
    }
    for (auto& it : items)
      if (it.committed) ready.emplace(it.order, std::move(it.committed));
    cv.notify_all();
    deliver_in_order();
  }

  // io thread: runs the `committed` of every item no earlier item is still waiting before.
  void deliver_in_order() {
    std::uint64_t first_waiting = 0;
    {
      std::lock_guard lock(mu);
      first_waiting = outstanding.empty() ? UINT64_MAX : *outstanding.begin();
    }
    while (!ready.empty() && ready.begin()->first < first_waiting) {
      auto f = std::move(ready.begin()->second);
      ready.erase(ready.begin());
      f();
    }
  }

  void connection_lost(const std::string& why) {
    if (!connected || closing) return;
    connected = false;
    if (!reported_down)
      PARLEY_LOG(error, "db: lost PostgreSQL at " << where << ": " << why
                                                  << "; reconnecting, rows stay queued");
    reported_down = true;
    reconnect_later();
  }

  void reconnect_later() {
    if (closing) return;
    retry.expires_after(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    retry.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->closing) self->connect([self](std::exception_ptr e) {
        if (e) return self->reconnect_later();
        PARLEY_LOG(warn, "db: PostgreSQL at " << self->where << " is back; sending the queued rows");
        self->reported_down = false;
      });
    });
  }

  // io thread: a new connection; on success the rows to retry go first.
  void connect(std::function<void(std::exception_ptr)> done) {
    if (conn) conn->close();
    conn = pg::connection::create(io.get_executor());
    conn->on_lost([w = weak_from_this()](const pg::pg_error& e) {
      if (auto self = w.lock()) self->connection_lost(e.what());
    });
    conn->async_connect(options.url, options.connect_timeout,
                        [self = shared_from_this(), done = std::move(done)](std::exception_ptr e) {
                          std::vector<item> again;
                          if (!e) {
                            self->connected = true;
                            self->backoff = std::chrono::milliseconds(100);
                            again = std::exchange(self->retry_items, {});
                            self->name_connection();
                          }
                          if (!again.empty()) self->recover(std::move(again));  // before anything else is sent
                          done(e);
                          if (!e) self->pump();
                        });
  }

  // io thread, first on a new connection: it is named "parley/<node>" (application_name), so a
  // node taking over this node's lapsed shards can end it (parley_claim): a node frozen in the
  // middle of sending a batch (SIGSTOP, a stalled VM) leaves its transaction open, holding the
  // node row its fence locked, and the server waits for the rest of the batch without end.
  void name_connection() {
    conn->async_batch({{"SELECT set_config('application_name', $1, false)", {"parley/" + node}}},
                      [](std::exception_ptr e, std::vector<pg::result>) {
                        if (e)
                          PARLEY_LOG(warn, "db: cannot name this node's PostgreSQL connection (" << error_text(e)
                                                << "); a node frozen mid-batch would delay takeovers");
                      });
  }

  // io thread, on a new connection: `items` were in flight when the old one broke, so some may
  // have committed (only the answer was lost). An item's rows commit together, so its first
  // row's id, found or not, says which: those found are finished (their replies delivered),
  // the others are sent again, before anything queued. (The INSERTs have no ON CONFLICT: an
  // id check per row cost a tenth of the server's time.) Items without rows write nothing
  // that a second run would change (session touches, timer upserts, deletes), so go again.
  void recover(std::vector<item> items) {
    std::vector<std::optional<std::string>> ids_by_table[pg::table_count];
    for (auto& it : items)
      if (!it.rows.empty() && it.rows.front().id != 0)
        ids_by_table[static_cast<std::size_t>(it.rows.front().t)].emplace_back(std::to_string(it.rows.front().id));
    std::vector<query> checks;
    for (std::size_t t = 0; t < pg::table_count; ++t)
      if (!ids_by_table[t].empty())
        checks.push_back({std::string("SELECT id FROM ") + pg::table_name(static_cast<pg::table>(t)) +
                              " WHERE id = ANY ($1::bigint[])",
                          {pg::text_array(ids_by_table[t])}});
    if (checks.empty()) {
      std::lock_guard lock(mu);
      for (auto it = items.rbegin(); it != items.rend(); ++it) {
        queued_statements += it->size();
        queue.push_front(std::move(*it));
      }
      return;
    }
    conn->async_batch(std::move(checks), [self = shared_from_this(), resume = hold(std::move(items))](
                                             std::exception_ptr e, std::vector<pg::result> rs) {
      resume(e, [&](std::vector<item>& batch) {
        std::set<std::int64_t> found;  // ids are unique across tables (one sequence)
        for (auto& r : rs)
          for (int i = 0; i < r.rows(); ++i) found.insert(r.integer(i, 0));
        std::vector<item> stored, again;
        for (auto& it : batch)
          (!it.rows.empty() && found.contains(it.rows.front().id) ? stored : again).push_back(std::move(it));
        batch = std::move(again);
        if (!stored.empty()) self->finished(stored);
      });
    });
  }

  // Any thread: a read, after every write queued before it (same connection, in order).
  void read(std::vector<query> qs, batch_done done) {
    net::post(io, [self = shared_from_this(), qs = std::move(qs), done = std::move(done)]() mutable {
      if (!self->connected) {
        return done(std::make_exception_ptr(db_error(
                        "PostgreSQL at " + self->where +
                        " is unreachable; the read fails (the handler keeps reconnecting)")),
                    {});
      }
      self->read_now(std::move(qs), std::move(done));
    });
  }

  // io thread: sends what is queued, then the read; while a batch waits for ids or shards,
  // the read waits too and then tries again (so it follows every write queued before it).
  void read_now(std::vector<query> qs, batch_done done) {
    pump(true);
    if (preparing) {
      after_prepare.push_back([self = shared_from_this(), qs = std::move(qs), done = std::move(done)]() mutable {
        self->read_now(std::move(qs), std::move(done));
      });
      return;
    }
    conn->async_batch(std::move(qs), std::move(done));
  }

  template <class T>
  T read_sync(std::vector<query> qs, std::function<T(std::vector<pg::result>&)> convert) {
    std::promise<T> p;
    read(std::move(qs), [&](std::exception_ptr e, std::vector<pg::result> rs) {
      if (e) return p.set_exception(as_db_error(e, "PostgreSQL read"));
      try {
        p.set_value(convert(rs));
      } catch (...) {
        p.set_exception(std::current_exception());
      }
    });
    return p.get_future().get();
  }

  template <class T>
  using read_callback_t = db_handler::read_callback<T>;

  template <class T>
  void read_async(std::vector<query> qs, std::function<T(std::vector<pg::result>&)> convert,
                  read_callback_t<T> done);
};

template <class T>
void postgres_db_handler::impl::read_async(std::vector<query> qs,
                                           std::function<T(std::vector<pg::result>&)> convert,
                                           read_callback_t<T> done) {
  read(std::move(qs), [convert = std::move(convert), done = std::move(done)](
                          std::exception_ptr e, std::vector<pg::result> rs) {
    T out{};
    if (!e) {
      try {
        out = convert(rs);
      } catch (...) {
        e = std::current_exception();
      }
    } else {
      e = as_db_error(e, "PostgreSQL read");
    }
    try {
      done(std::move(out), e);
    } catch (const std::exception& x) {
      PARLEY_LOG(error, "db: a read callback threw: " << x.what());
    }
  });
}

// ---- opening and closing -------------------------------------------------------------------

postgres_db_handler::postgres_db_handler(postgres_options options) : options_(std::move(options)) {}

postgres_db_handler::~postgres_db_handler() {
  try {
    close();
  } catch (...) {
  }
}

void postgres_db_handler::open(const agent& owner) {
  open(owner.name());
  impl::item it;
  it.statements.push_back({"INSERT INTO agent_definition (agent_name, definition, timestamp) "
                           "VALUES ($1, $2, $3) ON CONFLICT (agent_name) DO UPDATE SET "
                           "definition = excluded.definition, timestamp = excluded.timestamp",
                           {owner.name(), pg_text(to_text(owner.definition())),
                            format_timestamp(wall_clock::now())}});
  impl_->push(std::move(it));
}

void postgres_db_handler::open(std::string agent_name) {
  if (impl_) throw db_error("the PostgreSQL handler is already open");
  if (options_.url.empty())
    throw db_error("no PostgreSQL URI: set db.url (or --db) to e.g. postgresql://user@host/dbname");
  agent_name_ = std::move(agent_name);
  auto d = std::make_shared<impl>(options_);
  d->agent = agent_name_;
  d->thread = std::thread([d] {
    name_this_thread("parley-pg");
    d->io.run();
  });
  auto fail = [&](const std::string& what) {
    d->guard.reset();
    net::post(d->io, [d] {
      if (d->conn) d->conn->close();
      d->retry.cancel();
      d->stall_timer.cancel();
    });
    d->thread.join();
    throw db_error(what);
  };
  // Connect, read the schema version, migrate: all on the connection's thread.
  std::promise<void> connected;
  net::post(d->io, [d, &connected] {
    d->connect([&connected](std::exception_ptr e) {
      if (e) connected.set_exception(e);
      else connected.set_value();
    });
  });
  try {
    connected.get_future().get();
  } catch (const std::exception& e) {
    fail(std::string(e.what()) + " (start the server, or fix db.url / --db)");
  }
  int version = 0;
  try {
    version = d->read_sync<int>(pg::version_queries(), [](std::vector<pg::result>& rs) {
      return static_cast<int>(rs.back().integer(0, 0));
    });
  } catch (const std::exception& e) {
    fail("cannot read the schema version of PostgreSQL at " + d->where + ": " + e.what());
  }
  if (version > pg::schema_version)
    fail("the PostgreSQL database at " + d->where + " has schema version " + std::to_string(version) +
         ", newer than this Parley's " + std::to_string(pg::schema_version) +
         "; run a newer Parley against it, or point db.url at another database");
  if (version < pg::schema_version) {
    try {
      d->read_sync<int>(pg::migration(version), [](std::vector<pg::result>&) { return 0; });
    } catch (const std::exception& e) {
      fail("cannot create Parley's tables in PostgreSQL at " + d->where + ": " + e.what() +
           " (the user needs CREATE rights on the database)");
    }
  }
  // The node's row before its first batch: every batch's fence locks it (and a batch of a node
  // without one is refused).
  try {
    // A fresh node holds no lease: its generation is seen as it is.
    d->seen_generation = d->read_sync<std::int64_t>({{upsert_node_sql, {d->agent, d->node, d->options.address}}},
                                                    [](std::vector<pg::result>& rs) { return rs.at(0).integer(0, 0); });
  } catch (const std::exception& e) {
    fail("cannot register this node in PostgreSQL at " + d->where + ": " + e.what());
  }
  impl_ = std::move(d);
  net::post(impl_->io, [d = impl_] { d->schedule_renew(); });  // leases, heartbeat, orphans
  PARLEY_LOG(info, "db: recording to PostgreSQL at " << impl_->where);
}

void postgres_db_handler::close() {
  if (!impl_) return;
  auto d = std::move(impl_);
  {
    std::unique_lock lock(d->mu);
    // Everything queued goes out; a server that stays away gets close_timeout.
    net::post(d->io, [d] { d->pump(true); });
    // However long the server takes while it takes rows; given up only when nothing went out
    // for close_timeout (a server that stays away).
    for (;;) {
      const auto before = d->unsent_total;
      if (d->cv.wait_for(lock, options_.close_timeout, [&] { return d->unsent_total == 0; })) break;
      if (d->unsent_total < before) continue;
      PARLEY_LOG(error, "db: PostgreSQL at " << d->where << " took none of the " << d->unsent_total
                                             << " queued row(s) in " << options_.close_timeout.count()
                                             << " ms; they are lost");
      d->dropped += d->unsent_total;
      break;
    }
    d->stopping = true;
  }
  d->cv.notify_all();
  // Graceful: the leases end now (their epochs stay, so the next owner's is higher), so other
  // nodes take these sessions over at once rather than after lease_ttl.
  // Bounded by close_timeout: a server that stopped answering must not hold the process.
  auto released = std::make_shared<std::promise<void>>();
  d->read({{"UPDATE shard_lease SET lease_until = now() - interval '1 millisecond' "
            "WHERE agent_name = $1 AND owner = $2",
            {d->agent, d->node}},
           {"DELETE FROM parley_node WHERE node = $1", {d->node}}},
          [released](std::exception_ptr e, std::vector<pg::result>) {
            if (e) released->set_exception(e);
            else released->set_value();
          });
  try {
    auto f = released->get_future();
    if (f.wait_for(options_.close_timeout) != std::future_status::ready)
      throw db_error("no answer in " + std::to_string(options_.close_timeout.count()) + " ms");
    f.get();
  } catch (const std::exception& e) {
    PARLEY_LOG(info, "db: could not release this node's leases (" << e.what() << "); they lapse in "
                                                                   << options_.lease_ttl.count() << " ms");
  }
  d->guard.reset();
  net::post(d->io, [d] {
    d->closing = true;  // no reconnecting from here on
    d->retry.cancel();
    d->stall_timer.cancel();
    d->renew_timer.cancel();
    if (d->conn) d->conn->close();
  });
  d->thread.join();
  if (d->dropped) PARLEY_LOG(warn, "db: " << d->where << ": " << d->dropped.load() << " row(s) lost");
}

std::uint64_t postgres_db_handler::rows_dropped() const { return impl_ ? impl_->dropped.load() : 0; }

const std::string& postgres_db_handler::node_id() const {
  static const std::string none;
  return impl_ ? impl_->node : none;
}

bool postgres_db_handler::owns(std::string_view session_id) const {
  if (!impl_) return false;
  const int sh = shard_of(agent_name_, session_id);
  std::lock_guard lock(impl_->mu);
  return impl_->holds(sh, std::chrono::steady_clock::now());
}

void postgres_db_handler::async_claim(std::string session_id,
                                      std::function<void(ownership, std::exception_ptr)> done) {
  if (!impl_) return done({false, {}, {}}, std::make_exception_ptr(db_error("the PostgreSQL handler is not open")));
  if (owns(session_id)) return done({}, nullptr);
  const int sh = shard_of(agent_name_, session_id);
  net::post(impl_->io, [d = impl_, sh, done = std::move(done)]() mutable {
    if (!d->connected)
      return done({false, {}, {}}, std::make_exception_ptr(db_error(
                                       "PostgreSQL at " + d->where +
                                       " is unreachable, so this node cannot claim the session; try again")));
    // Sessions of one shard claimed at once (clients arriving together) share one claim: a
    // second claim would move the shard to a new epoch and refuse the first one's batches.
    auto& waiting = d->claiming[sh];
    waiting.push_back(std::move(done));
    if (waiting.size() > 1) return;
    d->claim({sh}, [d, sh](std::exception_ptr e, std::vector<impl::claim_answer> as) {
      auto waiters = std::move(d->claiming[sh]);
      d->claiming.erase(sh);
      for (auto& w : waiters) {
        if (e) w({false, {}, {}}, as_db_error(e, "claiming a session"));
        else if (as.empty() || as.front().epoch) w({}, nullptr);
        else w({false, as.front().owner, as.front().address}, nullptr);
      }
    });
  });
}

void postgres_db_handler::on_orphaned_sessions(std::function<void(std::vector<std::string>)> wake) {
  if (!impl_) return;
  std::lock_guard lock(impl_->mu);
  impl_->orphans_handler = std::move(wake);
}

void postgres_db_handler::set_node_address(std::string address) {
  if (!impl_) return;
  net::post(impl_->io, [d = impl_, address = std::move(address)] {
    d->options.address = address;  // the heartbeat writes it from now on
    if (d->connected && d->conn)
      d->conn->async_batch({{upsert_node_sql, {d->agent, d->node, address}}},
                           [](std::exception_ptr, std::vector<pg::result>) {});
  });
}

void postgres_db_handler::on_ownership_lost(std::function<void(std::function<bool(std::string_view)>)> lost) {
  if (!impl_) return;
  std::lock_guard lock(impl_->mu);
  impl_->lost_handler = std::move(lost);
}

// ---- recording -------------------------------------------------------------------------------

void postgres_db_handler::session_started(const session& s) {
  if (!impl_) return;
  const auto ts = format_timestamp(wall_clock::now());
  {
    std::lock_guard lock(impl_->mu);
    impl_->reasoning_turns.erase(s.id());
  }
  impl::item it;
  it.session = s.id();
  it.timestamp = ts;
  it.statements.push_back(
      {"INSERT INTO session (agent_name, session_id, session_name, username, platform_name, "
       "timestamp, variables, current_state, closed_reason, last_activity, shard) "
       "VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, NULL, $6, $8::int) "
       "ON CONFLICT (agent_name, session_id) DO UPDATE SET session_name = excluded.session_name, "
       "username = excluded.username, platform_name = excluded.platform_name, variables = '{}', "
       "current_state = excluded.current_state, closed_reason = NULL, "
       "last_activity = excluded.last_activity",
       {agent_name_, s.id(), pg_text(s.session_name()), pg_text(s.username()),
        s.platform() ? std::string(s.platform()->name()) : std::string(),
        ts, s.agent().initial_state().name(), std::to_string(shard_of(agent_name_, s.id()))}});
  // A session that starts afresh has no pending timers from an earlier life.
  it.statements.push_back({sql_with_row("DELETE FROM timer WHERE session_id = ", ""), {agent_name_, s.id()}});
  impl_->push(std::move(it));
}

void postgres_db_handler::session_closed(const session& s, std::string_view reason) {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->reasoning_turns.erase(s.id());
  }
  impl::item it;
  const auto ts = format_timestamp(wall_clock::now());
  it.session = s.id();
  it.timestamp = ts;
  it.statements.push_back({"UPDATE session SET closed_reason = $3 WHERE agent_name = $1 AND session_id = $2",
                           {agent_name_, s.id(), pg_text(reason)}});
  // A row with a reserved id, not an INSERT of its own: sent again after a lost answer, the
  // item is found by it (recover) and the event is not written twice.
  it.rows.push_back({pg::table::event, 0, it.session, {agent_name_, "close", pg_text(reason), ts}});
  impl_->push(std::move(it));
}

void postgres_db_handler::save_message(const session& s, const reply& message, bool is_user,
                                       std::function<void()> committed) {
  if (!impl_) {
    if (committed) committed();
    return;
  }
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(message.timestamp);
  it.committed = std::move(committed);
  it.rows.push_back({pg::table::chat, 0, s.id(),
                     {std::string(to_string(message.kind)), pg_text(message.content()), is_user ? "1" : "0",
                      it.timestamp, reply_seq_param(message, is_user)}});
  {
    // A reply that closes a turn with reasoning steps: they point at it (a later reply of the
    // same turn links them again, so they end on the last).
    std::lock_guard lock(impl_->mu);
    if (is_user)
      impl_->reasoning_turns.erase(s.id());
    else if (closes_turn(message.kind))
      it.link = impl_->reasoning_turns.contains(s.id());
  }
  impl_->push(std::move(it));
}

void postgres_db_handler::save_transition(const session& s, const transition& t, const event* e) {
  if (!impl_) return;
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(wall_clock::now());
  it.state = t.dest().name();
  it.rows.push_back({pg::table::transition, 0, s.id(),
                     {s.current_state().name(), t.dest().name(), e ? pg_text(e->name()) : std::string(),
                      pg_text(describe(t)), it.timestamp}});
  impl_->push(std::move(it));
}

void postgres_db_handler::save_prediction(const session& s, std::string_view message,
                                          const intent_prediction& p) {
  if (!impl_) return;
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(wall_clock::now());
  it.rows.push_back({pg::table::intent_prediction, 0, s.id(),
                     {pg_text(message), it.timestamp, pg_text(p.classifier),
                      p.matched() ? std::optional<std::string>(pg_text(p.intent_name)) : std::nullopt,
                      exact(p.score)}});
  for (const auto& x : p.parameters)  // the prediction's id is filled in when ids are given
    it.rows.push_back({pg::table::parameter, 0, {}, {std::string(), pg_text(x.name), pg_text(x.value), pg_text(to_text(x.info))}});
  impl_->push(std::move(it));
}

void postgres_db_handler::save_event(const session* s, std::string_view event, std::string_view info) {
  if (!impl_) return;
  impl::item it;
  it.timestamp = format_timestamp(wall_clock::now());
  if (s) it.session = s->id();
  it.rows.push_back({pg::table::event, 0, it.session, {agent_name_, pg_text(event), pg_text(info), it.timestamp}});
  impl_->push(std::move(it));
}

void postgres_db_handler::save_variables(const session& s) {
  if (!impl_) return;
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(wall_clock::now());
  it.variables = pg_text(s.dictionary().is_null() ? std::string("{}") : to_text(s.dictionary()));
  impl_->push(std::move(it));
}

void postgres_db_handler::save_reasoning_event(const session& s, std::string_view kind,
                                               const json& payload) {
  if (!impl_) return;
  std::string step_kind = field(payload, "kind");
  if (step_kind.empty()) step_kind = field(payload, "step_kind");
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(wall_clock::now());
  it.rows.push_back({pg::table::reasoning_step, 0, s.id(),
                     {std::string(kind), pg_text(step_kind), pg_text(field(payload, "step")),
                      pg_text(field(payload, "summary")), pg_text(to_text(payload)), it.timestamp,
                      pg_text(field(payload, "run_id")), number(payload, "step_number", true),
                      number(payload, "prompt_tokens", true), number(payload, "completion_tokens", true),
                      number(payload, "latency_ms", false)}});
  {
    std::lock_guard lock(impl_->mu);
    impl_->reasoning_turns.insert(s.id());
  }
  impl_->push(std::move(it));
}

void postgres_db_handler::save_agent_message(const session& s, const agent_message_record& m) {
  if (!impl_) return;
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(m.timestamp);
  it.rows.push_back({pg::table::agent_message, 0, s.id(),
                     {m.direction, m.protocol, pg_text(m.peer), pg_text(m.lineage.id),
                      pg_text(m.lineage.causation_id), pg_text(m.lineage.correlation_id),
                      pg_text(m.lineage.sender_agent), pg_text(m.lineage.sender_session),
                      std::to_string(m.lineage.depth), pg_text(m.content), pg_text(m.status), it.timestamp}});
  impl_->push(std::move(it));
}

void postgres_db_handler::save_timer(const session& s, const pending_timer& t) {
  if (!impl_) return;
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(wall_clock::now());
  it.timers.push_back({pg_text(t.key), format_timestamp(t.due), pg_text(to_text(t.event))});
  impl_->push(std::move(it));
}

void postgres_db_handler::delete_timer(const session& s, std::string_view key) {
  if (!impl_) return;
  impl::item it;
  it.session = s.id();
  it.timestamp = format_timestamp(wall_clock::now());
  it.timers.push_back({pg_text(key), std::nullopt, std::nullopt});
  impl_->push(std::move(it));
}

void postgres_db_handler::delete_session(std::string_view agent_name, std::string_view session_id) {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    if (agent_name == agent_name_) impl_->reasoning_turns.erase(std::string(session_id));
  }
  impl::item it;
  // Its rows go with it, by hand: the schema enforces no foreign keys (pg_schema.cpp, version 4).
  it.statements.push_back({"WITH s AS (DELETE FROM session WHERE agent_name = $1 AND session_id = $2 RETURNING id), "
                           "p AS (DELETE FROM intent_prediction WHERE session_id IN (SELECT id FROM s) RETURNING id), "
                           "pa AS (DELETE FROM parameter WHERE intent_prediction_id IN (SELECT id FROM p)), "
                           "c AS (DELETE FROM chat WHERE session_id IN (SELECT id FROM s)), "
                           "t AS (DELETE FROM transition WHERE session_id IN (SELECT id FROM s)), "
                           "e AS (DELETE FROM event WHERE session_id IN (SELECT id FROM s)), "
                           "r AS (DELETE FROM reasoning_step WHERE session_id IN (SELECT id FROM s)), "
                           "ti AS (DELETE FROM timer WHERE session_id IN (SELECT id FROM s)), "
                           "m AS (DELETE FROM agent_message WHERE session_id IN (SELECT id FROM s)) "
                           "SELECT count(*) FROM s",
                           {std::string(agent_name), std::string(session_id)}});
  impl_->push(std::move(it));
}

// ---- reading ---------------------------------------------------------------------------------

namespace {

std::optional<std::string> until_param(std::optional<wall_clock::time_point> until) {
  if (!until) return std::nullopt;
  return format_timestamp(*until);
}

std::vector<chat_message> chat_rows(const pg::result& r) {
  std::vector<chat_message> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    chat_message m;
    m.id = r.integer(i, 0);
    m.type = std::string(r.text(i, 1));
    m.content = std::string(r.text(i, 2));
    m.is_user = r.text(i, 3) != "0";
    m.timestamp = parse_timestamp(r.text(i, 4)).value_or(wall_clock::time_point{});
    if (!r.is_null(i, 5)) m.seq = r.integer(i, 5);
    out.push_back(std::move(m));
  }
  return out;
}

query chat_query(const std::string& agent, const std::string& sid, std::optional<std::size_t> n,
                 std::optional<wall_clock::time_point> until) {
  return {"SELECT * FROM (SELECT c.id, c.type, c.content, c.is_user, c.timestamp, c.seq FROM chat c "
          "JOIN session s ON s.id = c.session_id WHERE s.agent_name = $1 AND s.session_id = $2 "
          "AND ($3::text IS NULL OR c.timestamp <= $3) ORDER BY c.id DESC LIMIT $4::bigint) t ORDER BY id",
          {agent, sid, until_param(until), n ? std::optional<std::string>(std::to_string(*n)) : std::nullopt}};
}

query reasoning_query(const std::string& agent, const std::string& sid,
                      std::optional<wall_clock::time_point> until) {
  return {"SELECT r.id, r.kind, r.step_kind, r.step, r.summary, r.payload, r.timestamp, r.chat_id, "
          "r.run_id, r.step_number, r.prompt_tokens, r.completion_tokens, r.latency_ms "
          "FROM reasoning_step r JOIN session s ON s.id = r.session_id "
          "WHERE s.agent_name = $1 AND s.session_id = $2 AND ($3::text IS NULL OR r.timestamp <= $3) "
          "ORDER BY r.id",
          {agent, sid, until_param(until)}};
}

std::vector<reasoning_event> reasoning_rows(const pg::result& r) {
  std::vector<reasoning_event> out;
  for (int i = 0; i < r.rows(); ++i) {
    reasoning_event e;
    e.id = r.integer(i, 0);
    e.kind = std::string(r.text(i, 1));
    e.step_kind = std::string(r.text(i, 2));
    e.step = std::string(r.text(i, 3));
    e.summary = std::string(r.text(i, 4));
    e.payload = detail::payload_from_text(r.text(i, 5));
    e.timestamp = parse_timestamp(r.text(i, 6)).value_or(wall_clock::time_point{});
    if (!r.is_null(i, 7)) e.chat_id = r.integer(i, 7);
    e.run_id = std::string(r.text(i, 8));
    if (!r.is_null(i, 9)) e.step_number = r.integer(i, 9);
    if (!r.is_null(i, 10)) e.prompt_tokens = r.integer(i, 10);
    if (!r.is_null(i, 11)) e.completion_tokens = r.integer(i, 11);
    if (!r.is_null(i, 12)) e.latency_ms = std::stod(std::string(r.text(i, 12)));
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<query> session_queries(const std::string& agent, const std::string& sid) {
  return {{"SELECT id, session_name, username, platform_name, variables, current_state, closed_reason "
           "FROM session WHERE agent_name = $1 AND session_id = $2",
           {agent, sid}},
          {sql_with_row("SELECT key, due, event FROM timer WHERE session_id = ", " ORDER BY id"), {agent, sid}},
          {sql_with_row("SELECT message_id FROM (SELECT id, message_id FROM agent_message WHERE session_id = ",
                        " AND direction = 'in' AND status = 'handled' ORDER BY id DESC LIMIT 4096) t ORDER BY id"),
           {agent, sid}},
          {sql_with_row("SELECT max(seq) FROM chat WHERE seq IS NOT NULL AND session_id = ", ""), {agent, sid}}};
}

std::optional<session_snapshot> session_from(std::vector<pg::result>& rs, const std::string& sid) {
  const auto& s = rs.at(0);
  if (s.rows() == 0) return std::nullopt;
  session_snapshot snap;
  snap.session_id = sid;
  snap.session_name = std::string(s.text(0, 1));
  snap.username = std::string(s.text(0, 2));
  snap.platform = std::string(s.text(0, 3));
  snap.variables = json::parse(s.text(0, 4), nullptr, false);
  if (!snap.variables.is_object()) snap.variables = json::object();
  snap.state = std::string(s.text(0, 5));
  snap.closed_reason = std::string(s.text(0, 6));
  const auto& t = rs.at(1);
  for (int i = 0; i < t.rows(); ++i)
    if (auto p = detail::timer_from_row(sid, std::string(t.text(i, 0)), t.text(i, 1), t.text(i, 2)))
      snap.timers.push_back(std::move(*p));
  const auto& a = rs.at(2);
  for (int i = 0; i < a.rows(); ++i) snap.handled_agent_ids.emplace_back(a.text(i, 0));
  if (const auto& n = rs.at(3); n.rows() > 0 && !n.is_null(0, 0)) snap.last_reply_seq = n.integer(0, 0);
  return snap;
}

}  // namespace

std::vector<chat_message> postgres_db_handler::chat_history(const session& s, std::optional<std::size_t> n,
                                                            std::optional<wall_clock::time_point> until) {
  if (!impl_) throw db_error("chat_history: the PostgreSQL handler is not open; call open() first");
  return impl_->read_sync<std::vector<chat_message>>({chat_query(agent_name_, s.id(), n, until)},
                                                     [](std::vector<pg::result>& rs) { return chat_rows(rs.at(0)); });
}

std::vector<reasoning_event> postgres_db_handler::reasoning_events(const session& s,
                                                                   std::optional<wall_clock::time_point> until) {
  if (!impl_) throw db_error("reasoning_events: the PostgreSQL handler is not open; call open() first");
  return impl_->read_sync<std::vector<reasoning_event>>(
      {reasoning_query(agent_name_, s.id(), until)},
      [](std::vector<pg::result>& rs) { return reasoning_rows(rs.at(0)); });
}

std::optional<session_snapshot> postgres_db_handler::load_session(std::string_view agent_name,
                                                                  std::string_view session_id) {
  if (!impl_) throw db_error("load_session: the PostgreSQL handler is not open; call open() first");
  const std::string sid(session_id);
  return impl_->read_sync<std::optional<session_snapshot>>(
      session_queries(std::string(agent_name), sid),
      [sid](std::vector<pg::result>& rs) { return session_from(rs, sid); });
}

void postgres_db_handler::async_load_session(std::string agent_name, std::string session_id,
                                             read_callback<std::optional<session_snapshot>> done) {
  if (!impl_) return done(std::nullopt, std::make_exception_ptr(db_error("the PostgreSQL handler is not open")));
  auto qs = session_queries(agent_name, session_id);
  impl_->read_async<std::optional<session_snapshot>>(
      std::move(qs), [sid = std::move(session_id)](std::vector<pg::result>& rs) { return session_from(rs, sid); },
      std::move(done));
}

void postgres_db_handler::async_chat_history(const session& s, std::optional<std::size_t> n,
                                             std::optional<wall_clock::time_point> until,
                                             read_callback<std::vector<chat_message>> done) {
  if (!impl_) return done({}, std::make_exception_ptr(db_error("the PostgreSQL handler is not open")));
  impl_->read_async<std::vector<chat_message>>({chat_query(agent_name_, s.id(), n, until)},
                                               [](std::vector<pg::result>& rs) { return chat_rows(rs.at(0)); },
                                               std::move(done));
}

void postgres_db_handler::async_chat_page(const session& s, std::int64_t after_id, std::size_t limit,
                                          std::optional<wall_clock::time_point> until,
                                          read_callback<std::vector<chat_message>> done) {
  if (!impl_) return done({}, std::make_exception_ptr(db_error("the PostgreSQL handler is not open")));
  query q{"SELECT c.id, c.type, c.content, c.is_user, c.timestamp, c.seq FROM chat c "
          "JOIN session s ON s.id = c.session_id WHERE s.agent_name = $1 AND s.session_id = $2 "
          "AND c.id > $3::bigint AND ($4::text IS NULL OR c.timestamp <= $4) ORDER BY c.id LIMIT $5::bigint",
          {agent_name_, s.id(), std::to_string(after_id), until_param(until),
           limit ? std::optional<std::string>(std::to_string(limit)) : std::nullopt}};
  impl_->read_async<std::vector<chat_message>>({std::move(q)},
                                               [](std::vector<pg::result>& rs) { return chat_rows(rs.at(0)); },
                                               std::move(done));
}

void postgres_db_handler::async_replies_since(const session& s, std::int64_t after_seq, std::size_t limit,
                                              read_callback<std::vector<chat_message>> done) {
  if (!impl_) return done({}, std::make_exception_ptr(db_error("the PostgreSQL handler is not open")));
  query q{"SELECT c.id, c.type, c.content, c.is_user, c.timestamp, c.seq FROM chat c "
          "JOIN session s ON s.id = c.session_id WHERE s.agent_name = $1 AND s.session_id = $2 "
          "AND c.seq IS NOT NULL AND c.seq > $3::bigint ORDER BY c.seq LIMIT $4::bigint",
          {agent_name_, s.id(), std::to_string(after_seq),
           limit ? std::optional<std::string>(std::to_string(limit)) : std::nullopt}};
  impl_->read_async<std::vector<chat_message>>({std::move(q)},
                                               [](std::vector<pg::result>& rs) { return chat_rows(rs.at(0)); },
                                               std::move(done));
}

void postgres_db_handler::async_reasoning_events(const session& s, std::optional<wall_clock::time_point> until,
                                                 read_callback<std::vector<reasoning_event>> done) {
  if (!impl_) return done({}, std::make_exception_ptr(db_error("the PostgreSQL handler is not open")));
  impl_->read_async<std::vector<reasoning_event>>(
      {reasoning_query(agent_name_, s.id(), until)},
      [](std::vector<pg::result>& rs) { return reasoning_rows(rs.at(0)); }, std::move(done));
}

}  // namespace parley::db

namespace parley::db {

// ---- session management -------------------------------------------------------------------

// A reader of its own on the database, once every write queued before has been answered (a
// read through the handler's connection follows them).
std::unique_ptr<reader> postgres_db_handler::caught_up(const char* what) {
  if (!impl_) throw db_error(std::string(what) + ": the PostgreSQL handler is not open; call open() first");
  impl_->read_sync<int>({{"SELECT 1", {}}}, [](std::vector<pg::result>&) { return 0; });
  return pg::open_reader(options_.url);
}

std::vector<stored_session> postgres_db_handler::list_sessions(std::string_view agent_name,
                                                               std::string_view username, std::size_t limit,
                                                               std::size_t offset) {
  auto r = caught_up("list_sessions");
  return detail::list_rows(*r, std::string(agent_name), std::string(username), limit, offset);
}

json postgres_db_handler::export_session(std::string_view agent_name, std::string_view session_id) {
  auto r = caught_up("export_session");
  snapshot one_moment(*r);  // the document is one consistent moment of the session
  return detail::export_rows(*r, std::string(agent_name), std::string(session_id), pg::schema_version);
}

void postgres_db_handler::import_session(std::string_view agent_name, const json& data,
                                         std::string_view new_session_id) {
  store_import(std::string(agent_name), data, std::string(new_session_id));
}

void postgres_db_handler::fork_session(std::string_view agent_name, std::string_view session_id,
                                       std::string_view new_session_id) {
  if (new_session_id.empty() || new_session_id == session_id)
    throw db_error("fork_session needs a new session id, different from '" + std::string(session_id) + "'");
  store_import(std::string(agent_name), export_session(agent_name, session_id), std::string(new_session_id));
}

// The new session is claimed (this node writes it, fenced like any other), checked free, and
// written as one batch: its row (through the batch's own session insert, which gives it its
// shard), its columns, then its rows with ids reserved from the sequence.
void postgres_db_handler::store_import(const std::string& agent, const json& data, const std::string& new_id) {
  if (!impl_) throw db_error("import_session: the PostgreSQL handler is not open; call open() first");
  if (agent != agent_name_)
    throw db_error("this PostgreSQL handler records agent '" + agent_name_ + "', not '" + agent +
                   "'; import through that agent");
  const auto plan = detail::plan_import(data, new_id);
  const auto& id = plan.session_id;
  const auto wait_limit = std::chrono::seconds(30);
  {
    auto claimed = std::make_shared<std::promise<ownership>>();
    auto answer = claimed->get_future();
    async_claim(id, [claimed](ownership o, std::exception_ptr e) {
      if (e) return claimed->set_exception(e);
      claimed->set_value(std::move(o));
    });
    if (answer.wait_for(wait_limit) != std::future_status::ready)
      throw db_error("the database did not answer a claim for session " + session_tag(id) + " within 30 s; try again");
    const auto o = answer.get();
    if (!o.owned)
      throw db_error("session " + session_tag(id) + " falls in a shard another node owns (" +
                     (o.address.empty() ? "node " + o.owner.substr(0, 8) : o.address) +
                     "); import it there, or under another id");
  }
  const bool taken = impl_->read_sync<bool>(
      {{"SELECT 1 FROM session WHERE agent_name = $1 AND session_id = $2", {agent, id}}},
      [](std::vector<pg::result>& rs) { return rs.at(0).rows() > 0; });
  if (taken)
    throw db_error("agent '" + agent + "' already has a session '" + id + "' in database " + impl_->where +
                   "; delete it first, or import under another id");
  std::vector<std::int64_t> ids;
  if (plan.ids_needed > 0)
    ids = impl_->read_sync<std::vector<std::int64_t>>(
        {pg::reserve_ids_query(plan.ids_needed)},
        [](std::vector<pg::result>& rs) { return pg::reserved_ids(rs.at(0)); });
  impl::item it;
  it.session = id;
  it.timestamp = plan.last_activity;
  it.state = plan.current_state;
  it.variables = plan.variables;
  it.statements.push_back({"UPDATE session SET session_name = $3, username = $4, platform_name = $5, "
                           "timestamp = $6, closed_reason = NULL WHERE agent_name = $1 AND session_id = $2",
                           {agent, id, plan.session_name, plan.username, plan.platform_name, plan.timestamp}});
  for (auto& st : detail::import_rows(plan, agent, ids)) it.statements.push_back({std::move(st.sql), std::move(st.params)});
  auto stored = std::make_shared<std::promise<void>>();
  auto done = stored->get_future();
  it.committed = [stored] { stored->set_value(); };
  it.refused = [stored, id](const std::string& why) {
    stored->set_exception(std::make_exception_ptr(
        db_error("the import of session " + session_tag(id) + " was not stored: " + why)));
  };
  impl_->push(std::move(it));
  if (done.wait_for(wait_limit) != std::future_status::ready)
    throw db_error("the import of session " + session_tag(id) +
                   " was not stored within 30 s (the database is away or slow); retry once it is back");
  done.get();
}

}  // namespace parley::db
