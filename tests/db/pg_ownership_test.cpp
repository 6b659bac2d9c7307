// Several nodes on one PostgreSQL database (issue 16): each session has one owner at a time,
// a node that lost its lease has its late writes refused by the database (the fence runs in
// the batch's own transaction), and a node that stops gracefully hands its sessions over at
// once. Two handlers in one process stand for two nodes; the lease's lapse is made on the
// server's clock (the lease row), which is the only clock ownership is decided by.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include <libpq-fe.h>

#include <parley/db/postgres_db_handler.hpp>

#include "greetings_bot.hpp"
#include "postgres/pg_schema.hpp"
#include "pg_support.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

std::shared_ptr<parley::db::postgres_db_handler> node(const std::string& url,
                                                      std::chrono::milliseconds ttl = 10s) {
  parley::db::postgres_options o;
  o.url = url;
  o.lease_ttl = ttl;
  return std::make_shared<parley::db::postgres_db_handler>(std::move(o));
}

parley::db_handler::ownership claim(parley::db_handler& h, const std::string& sid) {
  std::promise<parley::db_handler::ownership> p;
  h.async_claim(sid, [&](parley::db_handler::ownership o, std::exception_ptr e) {
    if (e) return p.set_exception(e);
    p.set_value(std::move(o));
  });
  auto f = p.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

// A blocking libpq connection, to hold a transaction open between statements (the handler's
// connections never do: a batch is one pipelined transaction).
struct raw_pg {
  PGconn* c;
  explicit raw_pg(const std::string& url) : c(PQconnectdb(url.c_str())) {
    REQUIRE_MESSAGE(PQstatus(c) == CONNECTION_OK, PQerrorMessage(c));
  }
  ~raw_pg() { PQfinish(c); }
  // The first column of the first row, or "error: SQLSTATE message".
  std::string run(const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    std::string out;
    const auto st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
      out = PQgetvalue(r, 0, 0);
    else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
      out = std::string("error: ") + (PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "") +
            " " + PQresultErrorMessage(r);
    PQclear(r);
    return out;
  }
};

}  // namespace

// The fence's protocol (schema 5), on the server alone: a node's batch locks only its node row,
// so a claim taking one of its lapsed shards must wait on that row for the batch in flight to
// commit, and the node's next batch must then find the shard gone, although its lease row was
// never locked.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: a takeover waits for the old owner's batch in flight, whose next batch is refused") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto c = connect(db_url);
  REQUIRE(batch(*c, parley::db::pg::migration(0)).error.empty());
  REQUIRE(batch(*c, {{"INSERT INTO parley_node (node, agent_name) VALUES ('na', 'ag'), ('nb', 'ag')", {}}}).error.empty());
  raw_pg a(db_url), b(db_url);
  CHECK(a.run("SELECT r_epoch FROM parley_claim('ag', 'na', '{7}', 60000)") == "1");
  CHECK(a.run("SELECT generation FROM parley_node WHERE node = 'na'") == "0");  // a free shard: nobody's lease moved
  REQUIRE(a.run("UPDATE shard_lease SET lease_until = now() - interval '1 second'").empty());

  // A's batch is in flight (fenced, not committed) when B claims the lapsed shard.
  REQUIRE(a.run("BEGIN").empty());
  REQUIRE(a.run("SELECT parley_fence('ag', 'na', '{7}', '{1}', 0)").empty());
  std::string b_epoch;
  std::thread claimer([&] { b_epoch = b.run("SELECT r_epoch FROM parley_claim('ag', 'nb', '{7}', 60000)"); });
  // B waits for a lock (on A's node row) until A commits.
  test::wait_for(
      [&] {
        auto r = batch(*c, {{"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                             "AND query LIKE '%parley_claim%'", {}}});
        return r.error.empty() && r.results[0].integer(0, 0) == 1;
      },
      10s);
  CHECK(b_epoch.empty());
  REQUIRE(a.run("COMMIT").empty());
  claimer.join();
  CHECK(b_epoch == "2");
  // A's generation moved with the lease: its next batch, fenced with the generation it knew,
  // checks its shards and is refused, naming the shard.
  CHECK(a.run("SELECT generation FROM parley_node WHERE node = 'na'") == "1");
  const auto refused = a.run("SELECT parley_fence('ag', 'na', '{7}', '{1}', 0)");
  CHECK(refused.find("error: PF001") == 0);
  CHECK(refused.find("no longer owns shards 7") != std::string::npos);
  // B's batches go (fast: its generation has not moved); a node whose row is gone is refused.
  CHECK(b.run("SELECT parley_fence('ag', 'nb', '{7}', '{2}', 0)").empty());
  REQUIRE(a.run("DELETE FROM parley_node WHERE node = 'nb'").empty());
  CHECK(b.run("SELECT parley_fence('ag', 'nb', '{7}', '{2}', 0)").find("no longer registered") != std::string::npos);
  c->close();
}

// A node's row deleted while the node runs (by hand, or a restore): its next batch is refused
// by the fence, then the node registers again and the batch goes, nothing dropped.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: a node whose row was deleted registers again and loses nothing") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto a = node(db_url);
  test::harness ha(a, greetings::define);
  ha.session("r1");
  REQUIRE(ha.got.wait("r1", 1));
  auto c = connect(db_url);
  REQUIRE(batch(*c, {{"DELETE FROM parley_node", {}}}).error.empty());
  ha.say("r1", "hello");
  REQUIRE(ha.got.wait("r1", 3));
  CHECK(a->rows_dropped() == 0);
  CHECK(a->owns("r1"));
  auto r = batch(*c, {{"SELECT count(*) FROM parley_node WHERE node = $1", {a->node_id()}},
                      {"SELECT count(*) FROM chat WHERE content = 'hello'", {}}});
  REQUIRE(r.error.empty());
  CHECK(r.results[0].integer(0, 0) == 1);
  CHECK(r.results[1].integer(0, 0) == 1);
  c->close();
}

// Clients of two sessions in one shard arriving together: one claim, one epoch. Two claims
// would give the shard epoch 2 while the first session's batches were fenced with 1.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: sessions of one shard claimed at once share one claim") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto a = node(db_url);
  test::harness ha(a, greetings::define);
  const std::string agent = ha.agent.name();
  std::map<int, std::string> first;
  std::string s1, s2;
  for (int i = 0; s2.empty(); ++i) {
    const auto id = "c" + std::to_string(i);
    const int sh = parley::db::shard_of(agent, id);
    if (auto it = first.find(sh); it != first.end()) {
      s1 = it->second;
      s2 = id;
    } else {
      first.emplace(sh, id);
    }
  }
  std::promise<void> p1, p2;
  a->async_claim(s1, [&](parley::db_handler::ownership o, std::exception_ptr e) {
    CHECK((!e && o.owned));
    p1.set_value();
  });
  a->async_claim(s2, [&](parley::db_handler::ownership o, std::exception_ptr e) {
    CHECK((!e && o.owned));
    p2.set_value();
  });
  REQUIRE(p1.get_future().wait_for(10s) == std::future_status::ready);
  REQUIRE(p2.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(a->owns(s1));
  CHECK(a->owns(s2));
  auto c = connect(db_url);
  auto r = batch(*c, {{"SELECT epoch FROM shard_lease WHERE shard = $1::int",
                       {std::to_string(parley::db::shard_of(agent, s1))}}});
  REQUIRE(r.error.empty());
  REQUIRE(r.results[0].rows() == 1);
  CHECK(r.results[0].integer(0, 0) == 1);
  c->close();
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: one owner per session, and a stale owner's writes are refused") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto a = node(db_url);
  test::harness ha(a, greetings::define);
  std::atomic<int> lost_calls{0};
  std::atomic<bool> lost_s1{false};
  a->on_ownership_lost([&](std::function<bool(std::string_view)> lost) {
    lost_s1 = lost("s1");
    ++lost_calls;
  });
  auto s = ha.session("s1", "alice");
  REQUIRE(ha.got.wait("s1", 1));
  ha.say("s1", "hello");
  REQUIRE(ha.got.wait("s1", 3));
  CHECK(a->owns("s1"));

  auto b = node(db_url);
  test::harness hb(b, greetings::define);
  CHECK_FALSE(b->owns("s1"));
  // A holds the shard: B is told who owns it, and does not take it; B's agent refuses to act
  // for the session, naming the owner.
  auto o = claim(*b, "s1");
  CHECK_FALSE(o.owned);
  CHECK(o.owner == a->node_id());
  CHECK_FALSE(b->owns("s1"));
  try {
    hb.session("s1", "mallory");
    FAIL("B made a session A owns");
  } catch (const parley::not_owner_error& e) {
    CHECK(e.owner == a->node_id());
    CHECK(std::string(e.what()).find("owned by another node") != std::string::npos);
  }

  // A pauses past its lease (made here on the server's clock), B takes the shard over.
  auto c = connect(db_url);
  auto lapse = batch(*c, {{"UPDATE shard_lease SET lease_until = now() - interval '1 second'", {}}});
  REQUIRE(lapse.error.empty());
  auto taken = claim(*b, "s1");
  CHECK(taken.owned);
  CHECK(b->owns("s1"));

  // A wakes up still believing it owns s1 and answers: the database refuses every row of it.
  const auto before = batch(*c, {{"SELECT count(*) FROM chat", {}}});
  REQUIRE(before.error.empty());
  ha.say("s1", "good");
  test::wait_for([&] { return lost_calls.load() > 0; }, 10s);
  // Its answer was refused, so it never reached the client (replies go after their commit).
  CHECK(ha.got.of("s1").size() == 3);
  CHECK(lost_s1.load());
  CHECK_FALSE(a->owns("s1"));
  CHECK(a->rows_dropped() > 0);
  const auto after = batch(*c, {{"SELECT count(*) FROM chat WHERE content = 'good'", {}},
                                {"SELECT count(*) FROM chat", {}}});
  REQUIRE(after.error.empty());
  CHECK(after.results[0].integer(0, 0) == 0);
  CHECK(after.results[1].integer(0, 0) == before.results[0].integer(0, 0));
  // The epoch moved on with the owner.
  auto lease = batch(*c, {{"SELECT owner, epoch FROM shard_lease", {}}});
  REQUIRE(lease.error.empty());
  REQUIRE(lease.results[0].rows() == 1);
  CHECK(lease.results[0].text(0, 0) == b->node_id());
  CHECK(lease.results[0].integer(0, 1) == 2);
  c->close();
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: leases are renewed, and a node that stops hands its sessions over at once") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto b = node(db_url);
  b->open(std::string("testbot"));
  auto c = connect(db_url);
  {
    auto a = node(db_url, 900ms);
    test::harness ha(a, greetings::define);
    auto s = ha.session("s1", "alice");
    REQUIRE(ha.got.wait("s1", 1));
    auto first = batch(*c, {{"SELECT lease_until FROM shard_lease", {}}});
    REQUIRE(first.error.empty());
    REQUIRE(first.results[0].rows() == 1);
    const std::string until(first.results[0].text(0, 0));
    // Renewed every third of the lease: the row's end moves on while A lives, past 2 leases.
    test::wait_for(
        [&] {
          auto r = batch(*c, {{"SELECT count(*) FROM shard_lease WHERE lease_until > $1::timestamptz + interval '1800 milliseconds'", {until}}});
          return r.error.empty() && r.results[0].integer(0, 0) == 1;
        },
        10s);
    CHECK(a->owns("s1"));
    CHECK_FALSE(claim(*b, "s1").owned);
  }  // A closes: it ends its leases
  CHECK(claim(*b, "s1").owned);
  b->close();
  c->close();
}

namespace {
// start --"wait"--> waiting --after(600ms)--> done; waiting also schedules "ping" in 1500 ms.
void timers_bot(parley::agent& a) {
  auto& start = a.new_state("start", true);
  auto& waiting = a.new_state("waiting");
  auto& done = a.new_state("done");
  start.set_body([](parley::session& s) { s.reply("welcome"); });
  start.when_event(parley::event_kind::text)
      .when_condition([](parley::session& s) { return s.event().text() == "wait"; })
      .go_to(waiting);
  waiting.set_body([](parley::session& s) {
    s.set("x", 42);
    s.schedule(1500ms, parley::event::custom("ping"));
    s.reply("waiting");
  });
  waiting.after(600ms).go_to(done);
  done.set_body([](parley::session& s) { s.reply("done x=" + s.get("x").dump()); });
  done.when_event(std::string("ping")).go_to(done);
}
}  // namespace

TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: a dead node's timers fire on another node, late but once") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  // B runs first, with nothing of its own; it checks for orphaned sessions every 300 ms.
  auto b = node(db_url, 900ms);
  test::harness hb(b, timers_bot, /*persist=*/true);
  {
    auto a = node(db_url, 900ms);
    test::harness ha(a, timers_bot, /*persist=*/true);
    ha.session("t1");
    REQUIRE(ha.got.wait("t1", 1));
    ha.say("t1", "wait");
    REQUIRE(ha.got.wait("t1", 2));
    CHECK(ha.got.of("t1")[1] == "waiting");
  }  // A stops before either timer is due (its leases end with it)
  // B finds the session (its timers are pending, no node owns it), restores it, and both timers
  // fire there: the overdue timeout once, then the ping at its original time.
  REQUIRE(hb.got.wait("t1", 2, 10s));
  CHECK(hb.got.of("t1")[0] == "done x=42");
  CHECK(hb.got.of("t1")[1] == "done x=42");
  CHECK(b->owns("t1"));
  auto c = connect(db_url);
  test::wait_for(
      [&] {
        auto r = batch(*c, {{"SELECT count(*) FROM chat WHERE content = 'done x=42'", {}},
                            {"SELECT count(*) FROM timer", {}}});
        return r.error.empty() && r.results[0].integer(0, 0) == 2 && r.results[1].integer(0, 0) == 0;
      },
      10s);
  auto t = batch(*c, {{"SELECT count(*) FROM transition WHERE source_state = 'waiting' AND dest_state = 'done'", {}}});
  REQUIRE(t.error.empty());
  CHECK(t.results[0].integer(0, 0) == 1);
  c->close();
}
