// The PostgreSQL handler against a real server (./dev test starts a throwaway one): a greetings
// conversation recorded in the same tables as SQLite's, a persisted session resumed after a
// restart, a connection killed under load losing nothing, and the errors that name the fix.
#include <doctest/doctest.h>

#include <parley/db/postgres_db_handler.hpp>

#include "greetings_bot.hpp"
#include "pg_support.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

namespace {

std::shared_ptr<parley::db::postgres_db_handler> handler(const std::string& url) {
  parley::db::postgres_options o;
  o.url = url;
  return std::make_shared<parley::db::postgres_db_handler>(std::move(o));
}

std::int64_t count(test::pg_fixture& f, parley::db::pg::connection& c, const std::string& sql) {
  auto o = f.batch(c, {{sql, {}}});
  REQUIRE_MESSAGE(o.error.empty(), o.error);
  return o.results.at(0).integer(0, 0);
}

}  // namespace

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a greetings conversation is recorded as with SQLite") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  {
    test::harness h(handler(db_url), greetings::define);
    auto s = h.session("s1", "alice");
    REQUIRE(h.got.wait("s1", 1));
    h.say("s1", "hello");
    REQUIRE(h.got.wait("s1", 3));
    h.say("s1", "good");
    REQUIRE(h.got.wait("s1", 4));
    h.say("s1", "what?");
    REQUIRE(h.got.wait("s1", 5));
    // Read-your-writes: the history holds every message recorded before the read.
    std::vector<parley::chat_message> hist;
    test::on_strand(*s, [&] { hist = s->get_chat_history(); });
    REQUIRE(hist.size() == 8);
    CHECK(hist[1].content == "hello");
    CHECK(hist[1].is_user);
    CHECK(hist[3].content == R"(["Good","Bad"])");
    std::vector<parley::chat_message> last2;
    test::on_strand(*s, [&] { last2 = s->get_chat_history(2); });
    REQUIRE(last2.size() == 2);
    CHECK(last2[0].content == "what?");
  }
  auto c = connect(db_url);
  CHECK(count(*this, *c, "SELECT count(*) FROM chat") == 8);
  CHECK(count(*this, *c, "SELECT count(*) FROM chat WHERE is_user = 1") == 3);
  CHECK(count(*this, *c, "SELECT count(*) FROM transition") == 3);
  CHECK(count(*this, *c, "SELECT count(*) FROM transition WHERE condition = 'intent hello'") == 1);
  CHECK(count(*this, *c, "SELECT count(*) FROM session WHERE current_state = 'ready'") == 1);
  CHECK(count(*this, *c, "SELECT count(*) FROM intent_prediction") == 3);
  CHECK(count(*this, *c, "SELECT count(*) FROM intent_prediction WHERE intent IS NULL") == 1);
  CHECK(count(*this, *c, "SELECT count(*) FROM agent_definition WHERE agent_name = 'testbot'") == 1);
  CHECK(count(*this, *c, "SELECT count(*) FROM session WHERE username = 'alice' AND "
                         "last_activity >= timestamp AND current_state IS NOT NULL") == 1);
  // One sequence: chat ids and transition ids interleave in the order they were written.
  auto order = batch(*c, {{"SELECT max(id) FROM chat WHERE is_user = 1 AND content = 'hello'", {}},
                          {"SELECT min(id) FROM transition", {}}});
  REQUIRE(order.error.empty());
  CHECK(order.results[0].integer(0, 0) < order.results[1].integer(0, 0));
  c->close();
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a persisted session resumes in its state with its dictionary") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto define = [](parley::agent& a) {
    auto& start = a.new_state("start", true);
    auto& waiting = a.new_state("waiting");
    start.set_body([](session& s) { s.reply("welcome"); });
    start.when_event(parley::event_kind::text).go_to(waiting);
    waiting.set_body([](session& s) {
      s.set("x", 42);
      s.reply("waiting");
    });
    waiting.set_fallback_body([](session& s) { s.reply("still waiting x=" + s.get("x").dump()); });
  };
  {
    test::harness h(handler(db_url), define, /*persist=*/true);
    h.session("p1");
    REQUIRE(h.got.wait("p1", 1));
    h.say("p1", "go");
    REQUIRE(h.got.wait("p1", 2));
    auto snap = h.agent.db()->load_session("testbot", "p1");
    REQUIRE(snap);
    CHECK(snap->state == "waiting");
    CHECK(snap->variables == parley::json{{"x", 42}});
  }
  test::harness h(handler(db_url), define, /*persist=*/true);
  h.session("p1");
  h.say("p1", "anything");
  REQUIRE(h.got.wait("p1", 1, 5s));
  CHECK(h.got.of("p1")[0] == "still waiting x=42");  // resumed: not welcomed again
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: rows written while the connection is killed are not lost") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto admin = connect(db_url);
  constexpr int messages = 40;
  {
    test::harness h(handler(db_url), greetings::define);
    h.session("k1");
    REQUIRE(h.got.wait("k1", 1));
    for (int i = 0; i < messages; ++i) {
      if (i == messages / 2) {
        // Every backend of this database but the admin's own.
        auto o = batch(*admin, {{"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                                 {}}});
        REQUIRE_MESSAGE(o.error.empty(), o.error);
      }
      h.say("k1", "what?");
      REQUIRE(h.got.wait("k1", static_cast<std::size_t>(i + 2), 10s));
    }
  }  // close: everything queued reaches the server (reconnected)
  CHECK(count(*this, *admin, "SELECT count(*) FROM chat") == 1 + 2 * messages);
  admin->close();
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a newer schema, a bad URI and a server that is down name the fix") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  {
    auto h = handler(db_url);
    h->open(std::string("agent"));
    h->close();
  }
  auto admin = connect(db_url);
  REQUIRE(batch(*admin, {{"INSERT INTO parley_schema (version) VALUES (99)", {}}}).error.empty());
  admin->close();
  auto newer = handler(db_url);
  try {
    newer->open(std::string("agent"));
    FAIL("a newer schema was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("schema version 99") != std::string::npos);
    CHECK(std::string(e.what()).find("newer") != std::string::npos);
  }
  auto bad = handler("postgresql://me:hunter2@[broken");
  try {
    bad->open(std::string("agent"));
    FAIL("a bad URI was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("db.url") != std::string::npos);
  }
  auto down = handler("postgresql://me:hunter2@127.0.0.1:1/x?connect_timeout=2");
  try {
    down->open(std::string("agent"));
    FAIL("a server that is down was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("start the server") != std::string::npos);
  }
}
