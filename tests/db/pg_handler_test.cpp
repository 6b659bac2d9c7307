// The PostgreSQL handler against a real server (./dev test starts a throwaway one): a connection
// killed under load losing nothing, and the errors that name the fix. What it records and
// resumes is checked by the shared behaviour cases (behaviour_test.cpp, persistence_test.cpp),
// which this binary runs on PostgreSQL.
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
