#pragma once
/// The read queries of the inspectors: `parley-inspect` and the web inspector (served on the
/// WebSocket platform's port) both read a Parley database (a SQLite file or PostgreSQL)
/// through these, so the two never disagree. Sessions are named by their row id and their tag (session_tag(id)); a session id is
/// a bearer secret and never appears in what these return. See docs/inspector.md.
///
/// Each function runs a few short read statements on the reader it is given (open it with
/// open_reader, reader.hpp). One thread at a time per reader; reader errors are db_error.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <parley/db/reader.hpp>
#include <parley/diagram.hpp>
#include <parley/net.hpp>

namespace parley::db {

/// A request the database cannot answer as asked (a bad parameter, a missing definition); the
/// message names the problem and the fix.
struct inspect_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// No session with the row id asked for.
struct no_such_session : inspect_error {
  using inspect_error::inspect_error;
};

/// What the sessions list is filtered by; empty strings filter nothing.
struct session_query {
  /// A session's exact id (matched, never echoed), its tag ("#1a2b3c4d" or without '#'), or a
  /// substring of its user.
  std::string q;
  std::string user;   ///< exactly this user
  std::string state;  ///< sessions now in this state
  std::string agent;  ///< sessions of this agent
  std::string since;  ///< active at or after this time (stored form or a prefix: 2026-11-29)
  std::string until;  ///< started at or before this time (same forms; a prefix covers its span)
  std::int64_t offset = 0;
  std::int64_t limit = 50;  ///< 1..1000
};

/// Normalises a time bound of the sessions list ("2026-11-29 09:00" -> "2026-11-29T09:00").
/// @throws inspect_error naming `name` when `text` is not a time or a prefix of one.
std::string time_bound(const std::string& name, const std::string& text);

/// `{"total","offset","limit","agents":[...],"sessions":[S...]}`, newest activity first; S is
/// described by session_summary. @throws inspect_error for a bad limit or offset.
json list_sessions(reader& db, const session_query& q);

/// The session at `row` as `{"row","agent","tag","user","name","platform","started",
/// "last_activity","state","closed","turns","errors","tokens"}`, or nullopt.
std::optional<json> session_summary(reader& db, std::int64_t row);

/// The largest id `session_rows` may ask for at once.
constexpr std::size_t max_session_rows = 20000;

/// `{"session":S,"rows":[R...],"last_id":ID,"more":bool}`: the session's chat, intent,
/// transition, event, reasoning and agent_message rows with id > `after`, in id order (all ids
/// come from one counter, so this is write order), at most `limit`. `last_id` is the id of the
/// last row returned (`after` when none). @throws no_such_session, inspect_error (bad limit).
json session_rows(reader& db, std::int64_t row, std::int64_t after, std::size_t limit);

/// The largest row id in the database's session-row tables (for a live follower starting "now").
std::int64_t last_row_id(reader& db);

/// What a diagram is drawn for: one session (its agent, path and current state), or every
/// session of an agent ("" = the only agent in the file) with visit counts over them all.
struct diagram_request {
  std::optional<std::int64_t> session_row;
  std::string agent;
  diagram_format format = diagram_format::dot;
};

/// The agent's state diagram from the definition the DB handler stored, with per-state visit
/// counts and, for one session, the transitions it took and its current state. Messages name
/// the database by db.where(). @throws no_such_session, inspect_error (no definition, several agents and
/// none chosen, a damaged definition).
std::string draw_diagram(reader& db, const diagram_request& r);

}  // namespace parley::db
