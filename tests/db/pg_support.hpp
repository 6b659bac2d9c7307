#pragma once
// The throwaway PostgreSQL that ./dev test starts (PARLEY_PG_URL, a libpq URI whose database
// is "postgres"), and a fresh database in it for each test.
#include <cstdlib>
#include <string>

#include <doctest/doctest.h>


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

}  // namespace test
