#pragma once
// The throwaway PostgreSQL that ./dev test starts (PARLEY_PG_URL, a libpq URI whose database
// is "postgres"), and a fresh database in it for each test.
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <doctest/doctest.h>

#include <parley/agent_link.hpp>

#include "postgres/pg_connection.hpp"


namespace test {


/// The server's URI, or "" (the case is then skipped with a message, or fails when
/// PARLEY_REQUIRE_PG=1, which ./dev test sets).
inline std::string pg_url() {
  if (const char* u = std::getenv("PARLEY_PG_URL"); u && *u) return u;
  const char* require = std::getenv("PARLEY_REQUIRE_PG");
  if (require && std::string(require) == "1")
    FAIL("PARLEY_PG_URL is not set: run the tests with ./dev test (it starts a throwaway PostgreSQL)");
  MESSAGE("skipped: no PostgreSQL (PARLEY_PG_URL is not set; ./dev test starts one)");
  return {};
}

/// `url` with its database replaced by `name` (the URI's path, "/postgres").
inline std::string pg_url_for(const std::string& url, const std::string& name) {
  const auto slash = url.find("/postgres");
  if (slash == std::string::npos) FAIL("PARLEY_PG_URL must name the database /postgres: " << url);
  return url.substr(0, slash) + "/" + name + url.substr(slash + 9);
}

/// Waits until `done()` (checked every 10 ms) or the limit (the case fails then).
template <class Pred>
void wait_for(Pred done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "timed out");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// An io_context to drive connections from a test, and a fresh database per case.
struct pg_fixture {
  boost::asio::io_context io;

  // Runs the io_context until `done` or the limit (the case fails then).
  template <class Pred>
  void run_until(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(std::chrono::milliseconds(10));
    }
    REQUIRE_MESSAGE(done(), "timed out");
  }

  std::shared_ptr<parley::db::pg::connection> connect(const std::string& url) {
    auto c = parley::db::pg::connection::create(boost::asio::make_strand(io));
    std::optional<std::exception_ptr> r;
    c->async_connect(url, std::chrono::seconds(5), [&](std::exception_ptr e) { r = e; });
    run_until([&] { return r.has_value(); });
    if (*r) {
      try {
        std::rethrow_exception(*r);
      } catch (const std::exception& e) {
        FAIL("connect: " << e.what());
      }
    }
    return c;
  }

  struct outcome {
    std::string error;  // "" on success
    std::string sqlstate;
    std::vector<parley::db::pg::result> results;
  };

  outcome batch(parley::db::pg::connection& c, std::vector<parley::db::pg::query> qs) {
    std::optional<outcome> out;
    c.async_batch(std::move(qs), [&](std::exception_ptr e, std::vector<parley::db::pg::result> rs) {
      outcome o;
      o.results = std::move(rs);
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const parley::db::pg::pg_error& x) {
          o.error = x.what();
          o.sqlstate = x.sqlstate;
        }
      }
      out = std::move(o);
    });
    run_until([&] { return out.has_value(); });
    return std::move(*out);
  }

  // A fresh database for the case.
  std::string fresh_database(const std::string& url) {
    auto admin = connect(url);
    const std::string name = "t_" + parley::random_id().substr(0, 8);
    const auto o = batch(*admin, {{"CREATE DATABASE " + name, {}}});
    REQUIRE_MESSAGE(o.error.empty(), o.error);
    admin->close();
    return pg_url_for(url, name);
  }
};


}  // namespace test
