#include <parley/db/sqlite_db_handler.hpp>

#include <algorithm>
#include <future>

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include <parley/agent.hpp>
#include <parley/db/timestamp.hpp>
#include <parley/log.hpp>
#include <parley/session.hpp>
#include <parley/state.hpp>
#include <parley/transition.hpp>

#include "reader_pool.hpp"
#include "reads.hpp"
#include "schema.hpp"
#include "row_text.hpp"
#include "session_transfer.hpp"
#include "writer.hpp"

namespace parley::db {

using detail::closes_turn;
using detail::describe;
using detail::field;
using detail::to_text;

sqlite_db_handler::sqlite_db_handler(sqlite_options options) : options_(std::move(options)) {}

sqlite_db_handler::~sqlite_db_handler() {
  try {
    close();
  } catch (...) {
  }
}

void sqlite_db_handler::open(const agent& owner) {
  open(owner.name());
  // The definition, for diagrams drawn from the file alone (parley-inspect DB diagram).
  writer_->push([name = owner.name(), def = to_text(owner.definition()),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    auto& q = c.stmt(
        "INSERT INTO agent_definition (agent_name, definition, timestamp) VALUES (?, ?, ?) "
        "ON CONFLICT (agent_name) DO UPDATE SET definition = excluded.definition, "
        "timestamp = excluded.timestamp");
    q.bindNoCopy(1, name);
    q.bindNoCopy(2, def);
    q.bindNoCopy(3, ts);
    q.exec();
  });
}

void sqlite_db_handler::open(std::string agent_name) {
  if (writer_) throw db_error("database '" + options_.path + "' is already open");
  agent_name_ = std::move(agent_name);
  auto db = detail::open_for_writing(options_.path, options_.busy_timeout, options_.sync_commit);
  db->exec("PRAGMA cache_size=-" + std::to_string(options_.cache_mib * 1024));
  writer_ = std::make_unique<detail::writer>(std::move(db), agent_name_, options_);
  readers_ = std::make_unique<detail::reader_pool>(options_.path, options_.busy_timeout,
                                                   options_.readers, *writer_);
  PARLEY_LOG(info, "db: recording to " << options_.path
                                       << (options_.sync_commit ? " (sync_commit)" : ""));
}

void sqlite_db_handler::close() {
  if (!writer_) return;
  // Readers first, while the writer still commits what they wait for: every read accepted
  // runs and calls back; later ones are refused. Then the writer writes everything queued.
  readers_->stop();
  writer_->stop();
  const auto st = writer_->stats();
  if (st.rows_dropped || st.write_failures)
    PARLEY_LOG(warn, "db: " << options_.path << ": " << st.write_failures
                            << " failed write attempt(s), " << st.rows_dropped
                            << " row(s) lost");
}

void sqlite_db_handler::require_open(const char* what) const {
  if (!writer_)
    throw db_error(std::string(what) + ": the database '" + options_.path +
                   "' is not open; call open() (agent.start() does) first");
}

void sqlite_db_handler::flush() {
  if (writer_) writer_->sync();
}

writer_stats sqlite_db_handler::stats() const { return writer_ ? writer_->stats() : writer_stats{}; }

// ---- recording -------------------------------------------------------------------------------
// Each method copies what it needs on the caller's strand (the session is only safe there) and
// queues the rest for the writer. Timestamps are formatted here too: cheap, and it keeps the
// writer thread, the bottleneck, doing only SQL.

void sqlite_db_handler::session_started(const session& s) {
  if (!writer_) return;
  writer_->push_for(s.id(), [id = s.id(), user = s.username(), name = s.session_name(),
                 platform = s.platform() ? std::string(s.platform()->name()) : std::string(),
                 state = s.agent().initial_state().name(),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    auto& q = c.stmt(
        "INSERT INTO session (agent_name, session_id, session_name, username, platform_name, "
        "timestamp, variables, current_state, closed_reason, last_activity) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, '{}', ?7, NULL, ?6) "
        "ON CONFLICT (agent_name, session_id) DO UPDATE SET session_name = excluded.session_name, "
        "username = excluded.username, platform_name = excluded.platform_name, "
        "variables = '{}', current_state = excluded.current_state, closed_reason = NULL, "
        "last_activity = excluded.last_activity RETURNING id");
    q.bindNoCopy(1, c.agent_name());
    q.bindNoCopy(2, id);
    q.bindNoCopy(3, name);
    q.bindNoCopy(4, user);
    q.bindNoCopy(5, platform);
    q.bindNoCopy(6, ts);
    q.bindNoCopy(7, state);
    q.executeStep();
    const auto row = q.getColumn(0).getInt64();
    q.tryReset();
    // A session that starts afresh has no pending timers from an earlier life.
    auto& d = c.stmt("DELETE FROM timer WHERE session_id = ?");
    d.bind(1, row);
    d.exec();
    c.set_slot(id, {row, 0});
    c.row_written(row, ts);
  });
}

void sqlite_db_handler::session_closed(const session& s, std::string_view reason) {
  if (!writer_) return;
  writer_->push_for(s.id(), [id = s.id(), reason = std::string(reason),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    const auto* slot = c.find_slot(id);
    if (!slot) return;  // deleted already
    auto& u = c.stmt("UPDATE session SET closed_reason = ? WHERE id = ?");
    u.bindNoCopy(1, reason);
    u.bind(2, slot->row);
    u.exec();
    auto& e = c.stmt(
        "INSERT INTO event (session_id, agent_name, event, info, timestamp, id) "
        "VALUES (?, ?, 'close', ?, ?, ?)");
    e.bind(1, slot->row);
    e.bindNoCopy(2, c.agent_name());
    e.bindNoCopy(3, reason);
    e.bindNoCopy(4, ts);
    e.bind(5, c.next_id());
    e.exec();
  });
}

namespace {
// The rows of every message are queued as bytes (detail::row_writer), read back here in the
// order they were written.

void write_chat(detail::write_context& c, detail::row_reader& r) {
  const auto id = r.str();
  const auto type = r.str();
  const auto content = r.str();
  const bool is_user = r.flag();
  const bool closes = r.flag();
  const auto seq = r.i64();
  const auto& ts = c.timestamp(r.time());
  const auto slot = c.slot(id, ts);
  auto& q = c.stmt(
      "INSERT INTO chat (session_id, type, content, is_user, timestamp, id, seq) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  const auto chat_id = c.next_id();
  q.bind(1, slot.row);
  detail::bind_text(q, 2, type);
  detail::bind_text(q, 3, content);
  q.bind(4, is_user ? 1 : 0);
  q.bindNoCopy(5, ts);
  q.bind(6, chat_id);
  if (seq > 0)
    q.bind(7, seq);
  else
    q.bind(7);  // the user's rows, and replies not sent through a session
  q.exec();
  if (is_user) {
    // A human message opens a new turn: later reasoning belongs to the next reply.
    if (slot.turn_from) c.set_slot(id, {slot.row, 0});
  } else if (closes && slot.turn_from) {
    // Link this turn's reasoning to this reply. A later reply of the same turn links them
    // again, so they end on the reply that closes the turn. Done here, by the one writer, in
    // write order: no other update can race it.
    auto& u = c.stmt("UPDATE reasoning_step SET chat_id = ? WHERE session_id = ? AND id >= ?");
    u.bind(1, chat_id);
    u.bind(2, slot.row);
    u.bind(3, slot.turn_from);
    u.exec();
  }
  c.touch(slot.row, ts);
}

void write_transition(detail::write_context& c, detail::row_reader& r) {
  const auto id = r.str();
  const auto from = r.str();
  const auto to = r.str();
  const auto ev = r.str();
  const auto cond = r.str();
  const auto& ts = c.timestamp(r.time());
  const auto slot = c.slot(id, ts);
  auto& q = c.stmt(
      "INSERT INTO transition (session_id, source_state, dest_state, event, condition, "
      "timestamp, id) VALUES (?, ?, ?, ?, ?, ?, ?)");
  q.bind(7, c.next_id());
  q.bind(1, slot.row);
  detail::bind_text(q, 2, from);
  detail::bind_text(q, 3, to);
  detail::bind_text(q, 4, ev);
  detail::bind_text(q, 5, cond);
  q.bindNoCopy(6, ts);
  q.exec();
  c.set_state(slot.row, std::string(to));
  c.touch(slot.row, ts);
}

void write_prediction(detail::write_context& c, detail::row_reader& r) {
  const auto id = r.str();
  const auto msg = r.str();
  const auto classifier = r.str();
  const bool matched = r.flag();
  const auto intent = r.str();
  const double score = r.f64();
  const auto& ts = c.timestamp(r.time());
  const auto params = r.u32();
  const auto slot = c.slot(id, ts);
  auto& q = c.stmt(
      "INSERT INTO intent_prediction (session_id, message, timestamp, intent_classifier, "
      "intent, score, id) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const auto pid = c.next_id();
  q.bind(7, pid);
  q.bind(1, slot.row);
  detail::bind_text(q, 2, msg);
  q.bindNoCopy(3, ts);
  detail::bind_text(q, 4, classifier);
  if (matched)
    detail::bind_text(q, 5, intent);
  else
    q.bind(5);
  q.bind(6, score);
  q.exec();
  for (std::uint32_t i = 0; i < params; ++i) {
    auto& pq = c.stmt(
        "INSERT INTO parameter (intent_prediction_id, name, value, info) VALUES (?, ?, ?, ?)");
    pq.bind(1, pid);
    detail::bind_text(pq, 2, r.str());
    detail::bind_text(pq, 3, r.str());
    detail::bind_text(pq, 4, r.str());
    pq.exec();
  }
}
}  // namespace

void sqlite_db_handler::save_message(const session& s, const reply& message, bool is_user,
                                     std::function<void()> committed) {
  if (!writer_) {
    if (committed) committed();
    return;
  }
  detail::write_done done;
  if (committed)
    // Run even when the row could not be written: the client still gets its reply.
    done = [committed = std::move(committed)](std::exception_ptr) { committed(); };
  // Serialised before the writer's lock is taken (encoding runs under it: copies only).
  const std::string content = message.content();
  writer_->push_row(
      s.id(), &write_chat,
      [&](detail::row_writer& w) {
        w.str(s.id())
            .str(to_string(message.kind))
            .str(content)
            .flag(is_user)
            .flag(!is_user && closes_turn(message.kind))
            .i64(is_user ? 0 : message.seq)
            .time(message.timestamp);
      },
      std::move(done));
}

void sqlite_db_handler::save_transition(const session& s, const transition& t, const event* e) {
  if (!writer_) return;
  const std::string condition = describe(t);
  writer_->push_row(s.id(), &write_transition, [&](detail::row_writer& w) {
    w.str(s.id())
        .str(s.current_state().name())
        .str(t.dest().name())
        .str(e ? e->name() : std::string_view())
        .str(condition)
        .time(wall_clock::now());
  });
}

void sqlite_db_handler::save_prediction(const session& s, std::string_view message,
                                        const intent_prediction& p) {
  if (!writer_) return;
  std::vector<std::string> infos;
  infos.reserve(p.parameters.size());
  for (const auto& x : p.parameters) infos.push_back(to_text(x.info));
  writer_->push_row(s.id(), &write_prediction, [&](detail::row_writer& w) {
    w.str(s.id())
        .str(message)
        .str(p.classifier)
        .flag(p.matched())
        .str(p.matched() ? std::string_view(p.intent_name) : std::string_view())
        .f64(p.score)
        .time(wall_clock::now())
        .u32(static_cast<std::uint32_t>(p.parameters.size()));
    for (std::size_t i = 0; i < infos.size(); ++i)
      w.str(p.parameters[i].name).str(p.parameters[i].value).str(infos[i]);
  });
}

void sqlite_db_handler::save_event(const session* s, std::string_view event,
                                   std::string_view info) {
  if (!writer_) return;
  writer_->push_for(s ? std::string_view(s->id()) : std::string_view(),
                    [id = s ? std::optional<std::string>(s->id()) : std::nullopt,
                 ev = std::string(event), info = std::string(info),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    auto& q = c.stmt(
        "INSERT INTO event (session_id, agent_name, event, info, timestamp, id) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    q.bind(6, c.next_id());
    if (id) {
      const auto slot = c.slot(*id, ts);
      q.bind(1, slot.row);
      c.touch(slot.row, ts);
    } else {
      q.bind(1);
    }
    q.bindNoCopy(2, c.agent_name());
    q.bindNoCopy(3, ev);
    q.bindNoCopy(4, info);
    q.bindNoCopy(5, ts);
    q.exec();
  });
}

void sqlite_db_handler::save_variables(const session& s) {
  if (!writer_) return;
  // Serialised here, on the strand: the dictionary may change as soon as we return.
  writer_->push_for(s.id(), [id = s.id(), vars = s.dictionary().is_null() ? std::string("{}")
                                                             : to_text(s.dictionary()),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    const auto slot = c.slot(id, ts);
    auto& u = c.stmt("UPDATE session SET variables = ? WHERE id = ?");
    u.bindNoCopy(1, vars);
    u.bind(2, slot.row);
    u.exec();
  });
}

void sqlite_db_handler::save_reasoning_event(const session& s, std::string_view kind,
                                             const json& payload) {
  if (!writer_) return;
  std::string step_kind = field(payload, "kind");
  if (step_kind.empty()) step_kind = field(payload, "step_kind");
  // The run's columns (issue 14): null when the payload has no such number.
  struct run_columns {
    std::optional<double> step_number, prompt_tokens, completion_tokens, latency_ms;
  } run{detail::number_field(payload, "step_number"), detail::number_field(payload, "prompt_tokens"),
        detail::number_field(payload, "completion_tokens"), detail::number_field(payload, "latency_ms")};
  writer_->push_for(s.id(), [id = s.id(), kind = std::string(kind), step_kind = std::move(step_kind),
                 step = field(payload, "step"), summary = field(payload, "summary"),
                 run_id = field(payload, "run_id"), run, body = to_text(payload),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    const auto slot = c.slot(id, ts);
    auto& q = c.stmt(
        "INSERT INTO reasoning_step (session_id, chat_id, kind, step_kind, step, summary, "
        "payload, timestamp, id, run_id, step_number, prompt_tokens, completion_tokens, "
        "latency_ms) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const auto rid = c.next_id();
    q.bind(8, rid);
    q.bind(1, slot.row);
    q.bindNoCopy(2, kind);
    q.bindNoCopy(3, step_kind);
    q.bindNoCopy(4, step);
    q.bindNoCopy(5, summary);
    q.bindNoCopy(6, body);
    q.bindNoCopy(7, ts);
    q.bindNoCopy(9, run_id);
    int col = 10;
    for (const auto& v : {run.step_number, run.prompt_tokens, run.completion_tokens}) {
      if (v)
        q.bind(col, static_cast<std::int64_t>(*v));
      else
        q.bind(col);
      ++col;
    }
    if (run.latency_ms)
      q.bind(13, *run.latency_ms);
    else
      q.bind(13);
    q.exec();
    if (!slot.turn_from) c.set_slot(id, {slot.row, rid});
    c.touch(slot.row, ts);
  });
}

void sqlite_db_handler::save_agent_message(const session& s, const agent_message_record& m) {
  if (!writer_) return;
  writer_->push_for(s.id(), [id = s.id(), m, ts = format_timestamp(m.timestamp)](
                                detail::write_context& c) {
    const auto slot = c.slot(id, ts);
    auto& q = c.stmt(
        "INSERT INTO agent_message (session_id, direction, protocol, peer, message_id, "
        "causation_id, correlation_id, sender_agent, sender_session, depth, content, status, "
        "timestamp, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind(14, c.next_id());
    q.bind(1, slot.row);
    q.bindNoCopy(2, m.direction);
    q.bindNoCopy(3, m.protocol);
    q.bindNoCopy(4, m.peer);
    q.bindNoCopy(5, m.lineage.id);
    q.bindNoCopy(6, m.lineage.causation_id);
    q.bindNoCopy(7, m.lineage.correlation_id);
    q.bindNoCopy(8, m.lineage.sender_agent);
    q.bindNoCopy(9, m.lineage.sender_session);
    q.bind(10, m.lineage.depth);
    detail::bind_text(q, 11, m.content);
    q.bindNoCopy(12, m.status);
    q.bindNoCopy(13, ts);
    q.exec();
    c.touch(slot.row, ts);
  });
}

void sqlite_db_handler::save_timer(const session& s, const pending_timer& t) {
  if (!writer_) return;
  writer_->push_for(s.id(), [id = s.id(), key = t.key, due = format_timestamp(t.due), ev = to_text(t.event),
                 ts = format_timestamp(wall_clock::now())](detail::write_context& c) {
    const auto slot = c.slot(id, ts);
    auto& q = c.stmt(
        "INSERT INTO timer (session_id, key, due, event) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (session_id, key) DO UPDATE SET due = excluded.due, event = excluded.event");
    q.bind(1, slot.row);
    q.bindNoCopy(2, key);
    q.bindNoCopy(3, due);
    q.bindNoCopy(4, ev);
    q.exec();
  });
}

void sqlite_db_handler::delete_timer(const session& s, std::string_view key) {
  if (!writer_) return;
  writer_->push_for(s.id(), [id = s.id(), key = std::string(key)](detail::write_context& c) {
    const auto* slot = c.find_slot(id);
    if (!slot) return;
    auto& q = c.stmt("DELETE FROM timer WHERE session_id = ? AND key = ?");
    q.bind(1, slot->row);
    q.bindNoCopy(2, key);
    q.exec();
  });
}

void sqlite_db_handler::delete_session(std::string_view agent_name, std::string_view session_id) {
  if (!writer_) return;
  writer_->push_for(agent_name == agent_name_ ? session_id : std::string_view(),
                    [agent = std::string(agent_name), id = std::string(session_id)](
                    detail::write_context& c) {
    if (agent == c.agent_name()) c.erase_slot(id);
    auto& q = c.stmt("SELECT id FROM session WHERE agent_name = ? AND session_id = ?");
    q.bindNoCopy(1, agent);
    q.bindNoCopy(2, id);
    if (!q.executeStep()) return;
    const auto row = q.getColumn(0).getInt64();
    q.tryReset();
    // The writer's connection does not enforce foreign keys (see open_for_writing): the
    // cascade the schema declares is done here, children first.
    static constexpr const char* cascade[] = {
        "DELETE FROM parameter WHERE intent_prediction_id IN "
        "(SELECT id FROM intent_prediction WHERE session_id = ?)",
        "DELETE FROM intent_prediction WHERE session_id = ?",
        "DELETE FROM reasoning_step WHERE session_id = ?",
        "DELETE FROM agent_message WHERE session_id = ?",
        "DELETE FROM chat WHERE session_id = ?",
        "DELETE FROM transition WHERE session_id = ?",
        "DELETE FROM event WHERE session_id = ?",
        "DELETE FROM timer WHERE session_id = ?",
        "DELETE FROM session WHERE id = ?",
    };
    for (const char* sql : cascade) {
      auto& d = c.stmt(sql);
      d.bind(1, row);
      d.exec();
    }
  });
}

// ---- reading ---------------------------------------------------------------------------------
// Read-your-writes: wait until the writer has committed everything queued before the call,
// then read on a separate connection (WAL: it sees the latest commit and blocks nobody).

std::vector<chat_message> sqlite_db_handler::chat_history(
    const session& s, std::optional<std::size_t> n, std::optional<wall_clock::time_point> until) {
  return chat_history(s.id(), n, until);
}

std::vector<chat_message> sqlite_db_handler::chat_history(
    std::string_view session_id, std::optional<std::size_t> n,
    std::optional<wall_clock::time_point> until) {
  require_open("chat_history");
  writer_->wait_processed(writer_->mark(session_id));
  auto r = readers_->take();
  return detail::read_chat(*r, agent_name_, std::string(session_id), n, until);
}

std::vector<reasoning_event> sqlite_db_handler::reasoning_events(
    const session& s, std::optional<wall_clock::time_point> until) {
  require_open("reasoning_events");
  writer_->wait_processed(writer_->mark(s.id()));
  auto r = readers_->take();
  return detail::read_reasoning(*r, agent_name_, s.id(), until);
}

std::optional<session_snapshot> sqlite_db_handler::load_session(std::string_view agent_name,
                                                                std::string_view session_id) {
  require_open("load_session");
  writer_->wait_processed(writer_->mark(agent_name == agent_name_ ? session_id : ""));
  auto r = readers_->take();
  return detail::read_session(*r, std::string(agent_name), std::string(session_id));
}

// ---- reading off the caller's thread ---------------------------------------------------------
// The caller only notes how far the writer must get for this session (mark) and queues the
// job: it never waits. A reader thread waits for that commit, reads on its own connection, and
// calls back. A session with no rows pending (a resuming one) is read at once, however far
// behind the writer is with the others.

template <class T, class Read>
void sqlite_db_handler::read_async(const char* what, std::string_view session,
                                   read_callback<T> done, Read read) {
  auto call = [](read_callback<T>& cb, T result, std::exception_ptr error) {
    // `done` is the caller's: whatever it throws stays here (the reader thread goes on).
    try {
      cb(std::move(result), error);
    } catch (const std::exception& e) {
      PARLEY_LOG(error, "db: a read callback threw: " << e.what());
    } catch (...) {
      PARLEY_LOG(error, "db: a read callback threw");
    }
  };
  if (!writer_) {
    call(done, T{}, std::make_exception_ptr(db_error(
                        std::string(what) + ": the database '" + options_.path +
                        "' is not open; call open() (agent.start() does) first")));
    return;
  }
  const auto after = writer_->mark(session);
  auto job = std::make_shared<read_callback<T>>(std::move(done));
  const bool queued = readers_->submit(
      after, [job, call, read = std::move(read)](detail::reader_conn* c, std::exception_ptr error) {
        T result{};
        if (!error) {
          try {
            result = read(*c);
          } catch (...) {
            error = std::current_exception();
          }
        }
        call(*job, std::move(result), error);
      });
  if (!queued)
    call(*job, T{}, std::make_exception_ptr(db_error(std::string(what) + ": the database '" +
                                                     options_.path + "' is closed")));
}

void sqlite_db_handler::async_load_session(std::string agent_name, std::string session_id,
                                           read_callback<std::optional<session_snapshot>> done) {
  // The session to wait for is worked out before the strings move into the read (argument
  // order is unspecified). Another agent's rows are not ours to track: wait for all.
  const std::string wait_for = agent_name == agent_name_ ? session_id : std::string();
  read_async<std::optional<session_snapshot>>(
      "async_load_session", wait_for, std::move(done),
      [agent = std::move(agent_name), id = std::move(session_id)](detail::reader_conn& c) {
        return detail::read_session(c, agent, id);
      });
}

void sqlite_db_handler::async_chat_history(const session& s, std::optional<std::size_t> n,
                                           std::optional<wall_clock::time_point> until,
                                           read_callback<std::vector<chat_message>> done) {
  read_async<std::vector<chat_message>>(
      "async_chat_history", s.id(), std::move(done),
      [this, id = s.id(), n, until](detail::reader_conn& c) {
        return detail::read_chat(c, agent_name_, id, n, until);
      });
}

void sqlite_db_handler::async_chat_page(const session& s, std::int64_t after_id,
                                        std::size_t limit,
                                        std::optional<wall_clock::time_point> until,
                                        read_callback<std::vector<chat_message>> done) {
  read_async<std::vector<chat_message>>(
      "async_chat_page", s.id(), std::move(done),
      [this, id = s.id(), after_id, limit, until](detail::reader_conn& c) {
        return detail::read_chat_page(c, agent_name_, id, after_id, limit, until);
      });
}

void sqlite_db_handler::async_replies_since(const session& s, std::int64_t after_seq,
                                            std::size_t limit,
                                            read_callback<std::vector<chat_message>> done) {
  read_async<std::vector<chat_message>>(
      "async_replies_since", s.id(), std::move(done),
      [this, id = s.id(), after_seq, limit](detail::reader_conn& c) {
        return detail::read_replies_since(c, agent_name_, id, after_seq, limit);
      });
}

void sqlite_db_handler::async_reasoning_events(const session& s,
                                               std::optional<wall_clock::time_point> until,
                                               read_callback<std::vector<reasoning_event>> done) {
  read_async<std::vector<reasoning_event>>(
      "async_reasoning_events", s.id(), std::move(done),
      [this, id = s.id(), until](detail::reader_conn& c) {
        return detail::read_reasoning(c, agent_name_, id, until);
      });
}

// ---- session management ----------------------------------------------------------------------

std::vector<stored_session> sqlite_db_handler::list_sessions(std::string_view agent_name,
                                                             std::string_view username,
                                                             std::size_t limit,
                                                             std::size_t offset) {
  require_open("list_sessions");
  flush();
  auto r = readers_->take();
  return detail::list_rows(*detail::borrow_reader(*r->db, options_.path), std::string(agent_name),
                           std::string(username), limit, offset);
}

json sqlite_db_handler::export_session(std::string_view agent_name, std::string_view session_id) {
  require_open("export_session");
  flush();
  auto r = readers_->take();
  // One read transaction, so the document is one consistent moment of the session.
  r->db->exec("BEGIN");
  try {
    auto out = detail::export_rows(*detail::borrow_reader(*r->db, options_.path), std::string(agent_name),
                                   std::string(session_id), schema_version());
    r->db->exec("COMMIT");
    return out;
  } catch (...) {
    r->db->exec("ROLLBACK");
    throw;
  }
}

namespace {
// Runs a checked op on the writer and waits for its outcome; rethrows its error.
void run_checked(detail::writer& w, detail::write_op op) {
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  w.push(std::move(op),
         [done](std::exception_ptr e) {
           if (e)
             done->set_exception(e);
           else
             done->set_value();
         },
         /*checked=*/true);
  f.get();
}

// On the writer: the plan's session row, then its rows, with ids from the writer's counter.
void store_import(detail::write_context& c, const std::string& agent, const detail::import_plan& plan,
                  const std::string& path) {
  auto& db = c.db();
  SQLite::Statement taken(db, "SELECT 1 FROM session WHERE agent_name = ? AND session_id = ?");
  taken.bind(1, agent);
  taken.bind(2, plan.session_id);
  if (taken.executeStep())
    throw db_error("agent '" + agent + "' already has a session '" + plan.session_id + "' in database '" +
                   path + "'; delete it first, or import under another id");
  SQLite::Statement ins(db,
                        "INSERT INTO session (agent_name, session_id, session_name, username, "
                        "platform_name, timestamp, variables, current_state, closed_reason, "
                        "last_activity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)");
  ins.bind(1, agent);
  ins.bind(2, plan.session_id);
  ins.bind(3, plan.session_name);
  ins.bind(4, plan.username);
  ins.bind(5, plan.platform_name);
  ins.bind(6, plan.timestamp);
  ins.bind(7, plan.variables);
  if (plan.current_state)
    ins.bind(8, *plan.current_state);
  else
    ins.bind(8);
  ins.bind(9, plan.last_activity);
  ins.exec();
  std::vector<std::int64_t> ids(plan.ids_needed);
  for (auto& id : ids) id = ++c.id_counter();
  for (const auto& st : detail::import_rows(plan, agent, ids)) detail::run_sqlite(db, st);
}
}  // namespace

void sqlite_db_handler::import_session(std::string_view agent_name, const json& data,
                                       std::string_view new_session_id) {
  require_open("import_session");
  // Through the writer: ordered after every write queued before, and atomic.
  run_checked(*writer_, [agent = std::string(agent_name), data, id = std::string(new_session_id),
                         path = options_.path](detail::write_context& c) {
    store_import(c, agent, detail::plan_import(data, id), path);
  });
}

void sqlite_db_handler::fork_session(std::string_view agent_name, std::string_view session_id,
                                     std::string_view new_session_id) {
  require_open("fork_session");
  if (new_session_id.empty() || new_session_id == session_id)
    throw db_error("fork_session needs a new session id, different from '" +
                   std::string(session_id) + "'");
  run_checked(*writer_, [agent = std::string(agent_name), from = std::string(session_id),
                         to = std::string(new_session_id),
                         path = options_.path](detail::write_context& c) {
    const auto doc = detail::export_rows(*detail::borrow_reader(c.db(), path), agent, from, schema_version());
    store_import(c, agent, detail::plan_import(doc, to), path);
  });
}

}  // namespace parley::db
