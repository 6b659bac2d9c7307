#pragma once
// The database a shared behaviour case runs on. The same source files are built into
// parley_db_tests (SQLite: a file in a temp folder) and parley_pg_tests (PostgreSQL: a fresh
// database on the server ./dev test starts; PARLEY_TEST_PG is defined there), so a case
// written with BACKEND_CASE runs on both and asserts the same things, read back through the
// inspectors' reader (parley/db/reader.hpp) in the SQL both dialects share.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <parley/db/reader.hpp>
#include <parley/db_handler.hpp>

#include "support.hpp"

#if PARLEY_TEST_PG
#define PARLEY_BACKEND_NAME "postgres: "
#else
#define PARLEY_BACKEND_NAME ""
#endif
/// A case that runs on the backend of the binary it is built into.
#define BACKEND_CASE(name) TEST_CASE(PARLEY_BACKEND_NAME name)

namespace test {

class backend {
 public:
  /// A fresh, empty database. When PostgreSQL is not there, skipped() is true (the case
  /// returns; it fails instead under PARLEY_REQUIRE_PG=1).
  backend();
  ~backend();
  backend(const backend&) = delete;
  backend& operator=(const backend&) = delete;

  bool skipped() const { return where_.empty(); }
  bool postgres() const { return PARLEY_TEST_PG != 0; }
  /// The file's path or the database's URI (what --db takes).
  const std::string& where() const { return where_; }
  /// PostgreSQL: the server's own database "postgres" (not a Parley database); SQLite: "".
  const std::string& server_url() const { return server_url_; }
  /// A new handler on the database (not yet open: the agent opens it).
  std::shared_ptr<parley::db_handler> handler() const;

  /// The first column of the first row of `sql` (placeholders $1...), on a fresh reader.
  std::int64_t count(const std::string& sql, const std::vector<parley::db::read_param>& params = {}) const;
  std::string text(const std::string& sql, const std::vector<parley::db::read_param>& params = {}) const;
  std::vector<parley::db::read_row> rows(const std::string& sql,
                                         const std::vector<parley::db::read_param>& params = {}) const;

 private:
  std::optional<temp_dir> dir_;
  std::string where_, server_url_;
};

}  // namespace test
