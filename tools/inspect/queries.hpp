#pragma once
// What parley-inspect reads: one source per table, rows turned into text cells and JSON.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <parley/db/inspect.hpp>
#include <parley/db/reader.hpp>

#include "table.hpp"

namespace parley::inspect {

/// A failure to report in one line (unknown session, bad flag value); exit code 1.
using inspect_error = parley::db::inspect_error;

enum class command { sessions, chat, transitions, reasoning, events, timeline };

struct query_options {
  std::string agent;                  ///< "" = any agent
  std::string user;                   ///< sessions --user
  std::optional<std::size_t> last;    ///< the last N rows
  std::optional<std::string> until;   ///< timestamp bound (stored form)
  std::size_t limit = 100;            ///< sessions listing
};

struct session_ref {
  std::int64_t row = 0;
  std::string agent;
  std::string id;
};

/// The session `id` (of `agent`, when given). @throws inspect_error naming what to do.
session_ref find_session(db::reader& db, const std::string& id,
                         const std::string& agent);

std::vector<std::string> headers(command c);

/// Rows after the ones already returned (tracked in `seen`: last id per table), in display
/// order. The first call honours --last/--until; later calls (--follow) return new rows only.
std::vector<row> fetch(db::reader& db, command c, const session_ref* s,
                       const query_options& o, std::map<std::string, std::int64_t>& seen);

}  // namespace parley::inspect
