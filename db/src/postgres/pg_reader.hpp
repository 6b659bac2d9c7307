#pragma once
// The inspectors' reader on PostgreSQL (parley/db/reader.hpp). Private to parley_db.
#include <memory>
#include <string>

#include <parley/db/reader.hpp>

namespace parley::db::pg {

/// A blocking libpq connection to `url`, read-only, after checking the schema.
/// @throws db_error naming the server (never its password), the problem and the fix.
std::unique_ptr<reader> open_reader(const std::string& url);

}  // namespace parley::db::pg
