#pragma once
// parley-inspect DB diagram [SESSION]: the agent's state diagram from the definition the DB
// handler stored, with per-state visit counts and, for one session, its path and current state.
#include <string>

#include <SQLiteCpp/Database.h>

#include <parley/diagram.hpp>

#include "queries.hpp"

namespace parley::inspect {

/// @throws inspect_error when the file holds no definition (or several agents and no --agent).
std::string draw_diagram(SQLite::Database& db, const std::string& path, const session_ref* s,
                         const std::string& agent, diagram_format format);

}  // namespace parley::inspect
