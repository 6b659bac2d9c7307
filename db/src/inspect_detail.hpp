#pragma once
// What the inspectors' query files share (inspect_sessions.cpp, inspect_rows.cpp,
// inspect_diagram.cpp). Private to parley_db.
#include <string>

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/net.hpp>

namespace parley::db::detail {

/// A column as text; NULL as "".
std::string col(const SQLite::Column& c);
/// A column as an integer, NULL as JSON null.
json nullable_int(const SQLite::Column& c);

/// The columns of a session summary, for `SELECT <these> FROM session s ...`.
extern const char* const summary_columns;
/// The summary (S of docs/inspector.md) from a statement over summary_columns.
json summary_from(SQLite::Statement& q);

/// One read transaction for the life of the object, so that what several statements read
/// agrees (a WAL reader sees one snapshot). Not nested.
class read_transaction {
 public:
  explicit read_transaction(SQLite::Database& db) : db_(db) { db_.exec("BEGIN"); }
  ~read_transaction() {
    try {
      db_.exec("COMMIT");
    } catch (...) {
    }
  }
  read_transaction(const read_transaction&) = delete;
  read_transaction& operator=(const read_transaction&) = delete;

 private:
  SQLite::Database& db_;
};

}  // namespace parley::db::detail
