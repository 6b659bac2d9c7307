// Reply numbers and the resend from a cursor (?since=N) on PostgreSQL: the WebSocket cases the
// SQLite tests run (tests/platforms/ws_resume_cases.hpp), against a fresh database per case,
// and the schema's refusal of a second row under one number.
#include <doctest/doctest.h>

#include <parley/db/postgres_db_handler.hpp>

#include "pg_support.hpp"
#include "ws_resume_cases.hpp"

namespace {

// A handler on `url` per call: a restart reconnects to the same database.
wstest::resume::make_db on(const std::string& url) {
  return [url] {
    parley::db::postgres_options o;
    o.url = url;
    return std::make_shared<parley::db::postgres_db_handler>(std::move(o));
  };
}

}  // namespace

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: every reply frame carries its session's next number") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  wstest::resume::numbers_every_reply(on(fresh_database(url)));
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a returning session numbers on after a restart") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  SUBCASE("resumed (agent.persist_sessions)") {
    wstest::resume::numbers_on_after_restart(on(fresh_database(url)), true);
  }
  SUBCASE("started afresh under the same id") {
    wstest::resume::numbers_on_after_restart(on(fresh_database(url)), false);
  }
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: ?since=N resends exactly the replies after N, then live ones") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  wstest::resume::resends_after_the_cursor(on(fresh_database(url)));
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: replies sent during a resend arrive once, in order") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  wstest::resume::live_replies_during_the_resend(on(fresh_database(url)));
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: the number is stored with the reply's row, unique per session") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  {
    wstest::server srv(wstest::test_options(), on(db_url)());
    wstest::net::io_context io;
    wstest::client c(io);
    REQUIRE(!c.connect(srv.port(), wstest::resume::at("u1")));
    wstest::resume::replies(c, 1, 1);
    c.say("x");
    wstest::resume::replies(c, 2, 2);
  }
  auto c = connect(db_url);
  auto rows = batch(*c, {{"SELECT is_user, coalesce(seq, 0) FROM chat ORDER BY id", {}}});
  REQUIRE_MESSAGE(rows.error.empty(), rows.error);
  const auto& r = rows.results.at(0);
  REQUIRE(r.rows() == 3);
  CHECK(r.integer(0, 1) == 1);
  CHECK(r.integer(1, 0) == 1);  // the user's row: not numbered
  CHECK(r.integer(1, 1) == 0);
  CHECK(r.integer(2, 1) == 2);
  // A second owner writing the same number is refused by the database.
  auto dup = batch(*c, {{"INSERT INTO chat (session_id, type, content, is_user, timestamp, seq) "
                         "SELECT session_id, 'text', 'again', 0, timestamp, 2 FROM chat LIMIT 1",
                         {}}});
  CHECK(dup.sqlstate == "23505");  // unique_violation
  c->close();
}
