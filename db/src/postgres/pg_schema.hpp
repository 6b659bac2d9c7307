#pragma once
// The PostgreSQL schema: the same tables and columns as SQLite's (db/src/schema.cpp), so
// parley-inspect's queries and BAF users' queries read either. Timestamps are stored as the
// same fixed-width text. Every row id comes from one sequence, so ids order rows across
// tables (the inspector's "rows after id N").
#include <cstdint>
#include <vector>

#include "pg_connection.hpp"

namespace parley::db::pg {

/// The schema version this build writes (parley_schema.version).
inline constexpr int schema_version = 5;

/// parley_row_id steps by this much (schema 5): one nextval reserves the block [v, v + id_block),
/// so a node takes thousands of row ids per call instead of one call per id (a thirtieth of the
/// server's time per message with the greetings bot). Rows given their id by the column default
/// (a session's) take a whole block each: gaps, never overlaps.
inline constexpr std::int64_t id_block = 4096;

/// A query reserving at least `n` row ids, and its answer unpacked, ascending.
query reserve_ids_query(std::size_t n);
std::vector<std::int64_t> reserved_ids(const result& r);

/// The statements that take a database from `from` to schema_version, in one batch (one
/// transaction, serialised against other nodes migrating at once by a transaction-scoped
/// advisory lock). `from` 0 = an empty database.
std::vector<query> migration(int from);

/// Reads the version: the last statement's single row holds it (0 for an empty database).
std::vector<query> version_queries();

}  // namespace parley::db::pg
