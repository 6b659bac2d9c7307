#pragma once
// What the inspectors' query files share (inspect_sessions.cpp, inspect_rows.cpp,
// inspect_diagram.cpp). Private to parley_db.
#include <parley/db/reader.hpp>
#include <parley/net.hpp>

namespace parley::db::detail {

/// The columns of a session summary, for `SELECT <these> FROM session s ...`.
extern const char* const summary_columns;
/// The summary (S of docs/inspector.md) from a row over summary_columns.
json summary_from(const read_row& r);

}  // namespace parley::db::detail
