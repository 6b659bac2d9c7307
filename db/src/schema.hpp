#pragma once
// Opening a Parley SQLite file: checks that it is one, migrates its schema, sets the pragmas.
// Every failure a person can fix becomes a db_error naming the path and the fix.
#include <chrono>
#include <memory>
#include <string>

#include <SQLiteCpp/Database.h>

namespace parley::db::detail {

/// `PRAGMA application_id` of Parley files ("Prly").
constexpr int application_id = 0x50726C79;

/// The connection the writer owns: created when missing, checked, WAL, migrated. Also proves
/// no other process holds the write lock. @throws db_error.
std::unique_ptr<SQLite::Database> open_for_writing(const std::string& path,
                                                   std::chrono::milliseconds busy_timeout,
                                                   bool durable);

/// A reading connection to an existing Parley file (the writer's readers, parley-inspect).
/// @throws db_error when it is missing, not SQLite, not Parley, or of a newer schema.
std::unique_ptr<SQLite::Database> open_for_reading(const std::string& path,
                                                   std::chrono::milliseconds busy_timeout);

/// Turns an SQLite failure while opening `path` into a db_error saying what to do.
[[noreturn]] void rethrow_open_error(const std::string& path, const std::exception& e,
                                     const char* doing);

}  // namespace parley::db::detail
