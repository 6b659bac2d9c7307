// The libpq + Asio connection against a real PostgreSQL (./dev test starts a throwaway one):
// connect without blocking, pipelined batches with parameters, a failing statement that
// aborts its batch only, LISTEN/NOTIFY, a backend killed under it, bad URIs, passwords kept out
// of messages.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <parley/agent_link.hpp>

#include "postgres/pg_batch.hpp"
#include "postgres/pg_connection.hpp"
#include "pg_support.hpp"

using namespace std::chrono_literals;
namespace pg = parley::db::pg;
namespace net = boost::asio;

using fixture = test::pg_fixture;

TEST_CASE_FIXTURE(fixture, "pg connection: pipelined batches with parameters, in order") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  auto c = connect(fresh_database(url));
  auto made = batch(*c, {{"CREATE TABLE t (id bigint PRIMARY KEY, body text)", {}}});
  REQUIRE_MESSAGE(made.error.empty(), made.error);

  // Several batches in flight at once come back in order.
  std::vector<int> order;
  for (int b = 0; b < 5; ++b) {
    std::vector<pg::query> qs;
    for (int i = 0; i < 12; ++i)
      qs.push_back({"INSERT INTO t VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    {std::to_string(b * 10 + std::min(i, 9)), std::nullopt}});
    c->async_batch(std::move(qs), [&order, b](std::exception_ptr e, std::vector<pg::result> rs) {
      CHECK(!e);
      CHECK(rs.size() == 12);
      order.push_back(b);
    });
  }
  run_until([&] { return order.size() == 5; });
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});

  const auto q = batch(*c, {{"SELECT count(*), count(body), max(id) FROM t WHERE id >= $1", {"0"}}});
  REQUIRE(q.error.empty());
  REQUIRE(q.results.size() == 1);
  CHECK(q.results[0].integer(0, 0) == 50);
  CHECK(q.results[0].integer(0, 1) == 0);
  CHECK(q.results[0].text(0, 2) == "49");
  c->close();
}

TEST_CASE_FIXTURE(fixture, "pg connection: a failing statement rolls its whole batch back, not the next") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  auto c = connect(fresh_database(url));
  REQUIRE(batch(*c, {{"CREATE TABLE t (id bigint PRIMARY KEY)", {}}}).error.empty());
  const auto bad = batch(*c, {{"INSERT INTO t VALUES (1)", {}},
                              {"INSERT INTO t VALUES (3)", {}},
                              {"INSERT INTO t VALUES (1)", {}},
                              {"INSERT INTO t VALUES (2)", {}}});
  CHECK(bad.sqlstate == "23505");
  CHECK(bad.error.find("duplicate key") != std::string::npos);
  // The batch is one implicit transaction: all of it rolled back; the connection goes on.
  const auto n = batch(*c, {{"SELECT count(*) FROM t", {}}});
  REQUIRE(n.error.empty());
  CHECK(n.results[0].integer(0, 0) == 0);
  // A statement first prepared in a batch that failed before it is prepared again later.
  const auto skipped = batch(*c, {{"SELECT 1 / 0", {}}, {"SELECT $1::int + 1", {"41"}}});
  CHECK(skipped.sqlstate == "22012");
  const auto again = batch(*c, {{"SELECT $1::int + 1", {"41"}}, {"SELECT $1::int + 1", {"1"}}});
  REQUIRE_MESSAGE(again.error.empty(), again.error);
  REQUIRE(again.results.size() == 2);
  CHECK(again.results[0].integer(0, 0) == 42);
  CHECK(again.results[1].integer(0, 0) == 2);
  const auto wrong = batch(*c, {{"SELEC 1", {}}});
  CHECK(wrong.sqlstate == "42601");
  CHECK(batch(*c, {{"SELECT 1", {}}}).error.empty());
  c->close();
}

TEST_CASE_FIXTURE(fixture, "pg connection: LISTEN gets NOTIFY payloads from another connection") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  auto listener = connect(url);
  auto sender = connect(url);
  std::vector<std::string> got;
  listener->on_notification([&](pg::notification n) {
    CHECK(n.channel == "parley_test");
    got.push_back(n.payload);
  });
  REQUIRE(batch(*listener, {{"LISTEN parley_test", {}}}).error.empty());
  REQUIRE(batch(*sender, {{"SELECT pg_notify('parley_test', $1)", {"one"}},
                          {"SELECT pg_notify('parley_test', $1)", {"two"}}})
              .error.empty());
  run_until([&] { return got.size() == 2; });
  CHECK(got == std::vector<std::string>{"one", "two"});
  listener->close();
  sender->close();
}

TEST_CASE_FIXTURE(fixture, "pg connection: a killed backend fails what is pending and reports the loss") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  auto victim = connect(url);
  auto admin = connect(url);
  std::optional<std::string> lost;
  victim->on_lost([&](const pg::pg_error& e) { lost = e.what(); });
  const auto pid = batch(*victim, {{"SELECT pg_backend_pid()", {}}});
  REQUIRE(pid.error.empty());
  // A statement in flight when the backend dies.
  std::optional<std::string> pending_error;
  victim->async_batch({{"SELECT pg_sleep(30)", {}}}, [&](std::exception_ptr e, std::vector<pg::result>) {
    try {
      if (e) std::rethrow_exception(e);
      pending_error = "";
    } catch (const std::exception& x) {
      pending_error = x.what();
    }
  });
  REQUIRE(batch(*admin, {{"SELECT pg_terminate_backend($1)", {std::string(pid.results[0].text(0, 0))}}})
              .error.empty());
  run_until([&] { return pending_error.has_value() && lost.has_value(); });
  CHECK(!pending_error->empty());
  CHECK(!victim->connected());
  // Later batches fail at once with a clear error.
  CHECK(batch(*victim, {{"SELECT 1", {}}}).error.find("not connected") != std::string::npos);
  admin->close();
}

TEST_CASE_FIXTURE(fixture, "pg connection: bad URIs and unreachable servers name the problem, not the password") {
  auto c = pg::connection::create(net::make_strand(io));
  std::optional<std::string> why;
  auto on = [&](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
      why = "";
    } catch (const std::exception& x) {
      why = x.what();
    }
  };
  c->async_connect("postgresql://me:hunter2@[broken", 2s, on);
  run_until([&] { return why.has_value(); });
  CHECK(why->find("cannot connect") != std::string::npos);
  CHECK(why->find("hunter2") == std::string::npos);

  // Nothing listens on this socket folder.
  why.reset();
  const auto dir = std::filesystem::temp_directory_path() / ("parley-pgnone-" + parley::random_id().substr(0, 8));
  std::filesystem::create_directories(dir);
  auto c2 = pg::connection::create(net::make_strand(io));
  c2->async_connect("postgresql://me:hunter2@/x?host=" + dir.string() + "&port=1", 5s, on);
  run_until([&] { return why.has_value(); });
  CHECK(why->find("cannot connect") != std::string::npos);
  CHECK(why->find("hunter2") == std::string::npos);
  std::filesystem::remove_all(dir);

  CHECK(pg::connection::redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db");
  CHECK(pg::connection::redact("host=h password=secret user=u") == "host=h password=*** user=u");
  CHECK(pg::connection::redact("postgresql://h/db?password=secret&x=1") == "postgresql://h/db?password=***&x=1");
}

// The array literals every batch's rows travel in: what the server unpacks is what was given,
// quotes, backslashes, braces, commas, NULL, empty and non-ASCII text included.
TEST_CASE_FIXTURE(fixture, "pg batch: text array literals come back from unnest as given") {
  CHECK(pg::text_array({}) == "{}");
  CHECK(pg::text_array({std::string("a"), std::nullopt, std::string("b\"c\\d")}) == R"({"a",NULL,"b\"c\\d"})");
  const auto url = test::pg_url();
  if (url.empty()) return;
  auto c = connect(fresh_database(url));
  const std::vector<std::optional<std::string>> given{
      std::string("plain"), std::string("q\"uo\"te"), std::string("back\\slash\\"), std::nullopt,
      std::string(""), std::string("{brace},comma NULL"), std::string("NULL"), std::string("h\xc3\xa9llo \xe2\x9c\x93"),
      std::string("\\\"")};
  auto r = batch(*c, {{"SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n) ORDER BY n", {pg::text_array(given)}}});
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  REQUIRE(r.results[0].rows() == static_cast<int>(given.size()));
  for (int i = 0; i < r.results[0].rows(); ++i) {
    INFO(i);
    CHECK(r.results[0].optional_text(i, 0) == given[static_cast<std::size_t>(i)]);
  }
  c->close();
}
