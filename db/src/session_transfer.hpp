#pragma once
// Sessions as JSON documents (export/import, and fork = import(export)), and the listing.
// Run on any connection: the readers for export and listing, the writer for import and fork.
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include <parley/db_handler.hpp>

namespace parley::db::detail {

/// The format tag and version of exported documents.
inline constexpr const char* export_format = "parley-session";
inline constexpr int export_version = 1;

/// @throws db_error when the session does not exist.
json export_rows(SQLite::Database& db, const std::string& agent_name,
                 const std::string& session_id, const std::string& path);
/// Inserts the document's rows as session `new_id` ("" = the document's id); returns the id.
/// Row ids come from `next_id` (the writer's one sequence), in the order of the exported ids,
/// so the copy keeps the original's write order across tables.
/// @throws db_error when the document is not an export or the id is taken.
std::string import_rows(SQLite::Database& db, const std::string& agent_name, const json& data,
                        const std::string& new_id, const std::string& path,
                        std::int64_t& next_id);

std::vector<stored_session> list_rows(SQLite::Database& db, const std::string& agent_name,
                                      const std::string& username, std::size_t limit,
                                      std::size_t offset);

}  // namespace parley::db::detail
