#pragma once
/// Opening a Parley SQLite file for reading, outside the handler (parley-inspect and other
/// tools). Needs SQLiteCpp: link parley::sqlitecpp too.
#include <chrono>
#include <memory>
#include <string>

#include <SQLiteCpp/Database.h>

namespace parley::db {

/// A read-only connection (PRAGMA query_only) to an existing Parley database; safe on a live
/// WAL database while an agent writes it. Use it from one thread at a time (it is opened
/// without SQLite's per-connection mutex). @throws db_error when the file is missing, not
/// SQLite, not Parley, or of a newer schema, naming the path and the fix.
std::unique_ptr<SQLite::Database> open_for_reading(
    const std::string& path, std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));

}  // namespace parley::db
