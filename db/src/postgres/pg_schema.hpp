#pragma once
// The PostgreSQL schema: the same tables and columns as SQLite's (db/src/schema.cpp), so
// parley-inspect's queries and BAF users' queries read either. Timestamps are stored as the
// same fixed-width text. Every row id comes from one sequence, so ids order rows across
// tables (the inspector's "rows after id N").
#include <vector>

#include "pg_connection.hpp"

namespace parley::db::pg {

/// The schema version this build writes (parley_schema.version).
inline constexpr int schema_version = 4;

/// The statements that take a database from `from` to schema_version, in one batch (one
/// transaction, serialised against other nodes migrating at once by a transaction-scoped
/// advisory lock). `from` 0 = an empty database.
std::vector<query> migration(int from);

/// Reads the version: the last statement's single row holds it (0 for an empty database).
std::vector<query> version_queries();

}  // namespace parley::db::pg
