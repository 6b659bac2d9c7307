#pragma once
// Sessions as JSON documents (export/import, and fork = import(export)), and the listing,
// written once for both backends: reads go through a db::reader (SQL in the dialect both
// share, $N placeholders), and an import is planned as statements each backend runs in one
// transaction (SQLite on its writer, PostgreSQL as one batch).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include <parley/db/reader.hpp>
#include <parley/db_handler.hpp>

namespace parley::db::detail {

/// The format tag and version of exported documents.
inline constexpr const char* export_format = "parley-session";
inline constexpr int export_version = 1;

/// `schema_version`: the database's, written into the document. @throws db_error when the
/// session does not exist.
json export_rows(reader& r, const std::string& agent_name, const std::string& session_id,
                 int schema_version);

std::vector<stored_session> list_rows(reader& r, const std::string& agent_name,
                                      const std::string& username, std::size_t limit,
                                      std::size_t offset);

/// One statement of an import: $N placeholders, text parameters (NULL = nullopt); numbers are
/// CAST in the SQL, which both dialects read.
struct import_statement {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};

/// A checked document, ready to store.
struct import_plan {
  std::string session_id;  // the new session's id
  // The session row's columns (each backend writes the row its own way: PostgreSQL's has a shard).
  std::string session_name, username, platform_name, timestamp, variables, last_activity;
  std::optional<std::string> current_state;
  /// How many row ids the rows need (the caller reserves them, ascending).
  std::size_t ids_needed = 0;
  const json* data = nullptr;
};

/// Checks the document and reads its session row. @throws db_error when it is not an export.
import_plan plan_import(const json& data, const std::string& new_id);

/// The statements that insert the plan's rows, after its session row exists; `ids` (ascending,
/// ids_needed of them) keep the exported rows' order across tables.
std::vector<import_statement> import_rows(const import_plan& plan, const std::string& agent_name,
                                          const std::vector<std::int64_t>& ids);

/// A reader on a SQLite connection someone else owns (the writer's, or a pooled reader's).
/// (reader.cpp)
std::unique_ptr<reader> borrow_reader(SQLite::Database& db, std::string path);
/// Runs an import statement on a SQLite connection. (reader.cpp)
void run_sqlite(SQLite::Database& db, const import_statement& s);

}  // namespace parley::db::detail
