#pragma once
/// Exception types. Synchronous APIs throw these; messages name the input, the problem and
/// the fix.
#include <stdexcept>

namespace parley {

/// A bot definition mistake (no initial state, duplicate names, conflicting auto
/// transitions, ...), thrown at definition or at run().
struct definition_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A configuration mistake: unreadable file, wrong type for a key, bad flag.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A database handler could not start (path, format, schema version, lock).
struct db_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A limit was reached: agent::get_or_create_session throws it for a new session once
/// agent.max_sessions sessions are live (the message names the key).
struct capacity_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Several nodes on one database: another node owns the session (agent::get_or_create_session
/// throws it rather than act for a session this process does not own).
struct not_owner_error : std::runtime_error {
  not_owner_error(const std::string& what, std::string owner_node, std::string owner_address)
      : std::runtime_error(what), owner(std::move(owner_node)), address(std::move(owner_address)) {}
  std::string owner;    ///< the owning node's id
  std::string address;  ///< where it serves ("" when it published none)
};

}  // namespace parley
