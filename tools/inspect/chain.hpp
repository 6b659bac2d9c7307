#pragma once
// parley-inspect chain: an agent message's causes and effects, across sessions, agents and
// database files (issue 13).
#include <string>
#include <vector>

#include "table.hpp"

namespace parley::inspect {

std::vector<std::string> chain_headers();

/// Every recorded copy (sent, received, refused, duplicate) of every message in the chain of
/// `message_id`: the messages that caused it, back to the first, and everything they caused,
/// read from each file in `paths`; in time order. @throws inspect_error when no file has the
/// id, db_error for a file that is not a Parley database.
std::vector<row> chain(const std::vector<std::string>& paths, const std::string& message_id);

}  // namespace parley::inspect
