#pragma once
/// Agent-to-agent messaging (issue 13): the lineage every message between agents carries, and
/// the one interface through which a session reaches other agents. The transports (BAF's
/// WebSocket way, A2A) live in platforms/ and register with the agent; the runtime knows only
/// this header.
#include <optional>
#include <string>
#include <string_view>

#include <parley/net.hpp>

namespace parley {

class session;

/// The custom event a session gets when a message to another agent fails or is refused
/// (unreachable, refused handshake, dropped connection, queue full, loop guard, no transport).
/// Payload: {"url", "reason", "message_id"}; its sender() is the URL. See
/// state::when_agent_error().
inline constexpr std::string_view agent_error_event = "agent_error";

/// Where an agent-to-agent message comes from. Sent as extra fields BAF ignores (WebSocket)
/// or in the message's metadata (A2A).
struct lineage {
  std::string id;              ///< this message's unique id
  std::string causation_id;    ///< the message that caused it; "" when a human's did
  std::string correlation_id;  ///< the conversation it belongs to, kept across hops
  std::string sender_agent;    ///< the sending agent's name
  std::string sender_session;  ///< the sending session's tag (session_tag: a hash, never the id)
  int depth = 0;               ///< agent hops since a human spoke

  /// {"id","causation_id","correlation_id","sender":{"agent","session"},"depth"}
  json to_json() const;
  /// Reads the fields above from a frame or metadata object. "id" is required (a non-empty
  /// string); the others are optional but must have their type when present: strings, an
  /// object "sender" of strings, an integer "depth" (clamped to 0..1000000: a negative or huge
  /// depth cannot turn the loop guard off). nullopt (and `error` says which field and why)
  /// when one is missing or of the wrong type.
  static std::optional<lineage> from_json(const json& j, std::string* error = nullptr);
  /// Whether `j` carries lineage at all (an "id" key): frames without it are plain BAF.
  static bool present_in(const json& j) { return j.is_object() && j.contains("id"); }
};

/// One agent-to-agent message as recorded (db_handler::save_agent_message).
struct agent_message_record {
  std::string direction;  ///< "out" (sent, or refused before sending) or "in"
  std::string protocol;   ///< "websocket", "a2a"
  std::string peer;       ///< the other agent: its URL (out), or its sender/URL (in)
  parley::lineage lineage;
  std::string content;    ///< the message: text, or JSON serialised
  std::string status;     ///< out: "sent", "refused"; in: "handled", "duplicate"
  std::string reason;     ///< why, for "refused" (not stored in a column of its own yet)
  wall_clock::time_point timestamp = wall_clock::now();
};

/// A new unique id: 128 random bits from the kernel's CSPRNG as 36 characters (8-4-4-4-12
/// lowercase hex digits, as a UUID is written). Any thread.
/// @throws std::system_error when getrandom(2) fails.
std::string random_id();

/// `url` with any user info and query removed (they may hold a token): for logs and the DB.
std::string redact_url(std::string_view url);

/// A way to reach other agents ("websocket" for BAF's frames, "a2a"), registered with
/// agent::set_agent_transport. All calls come on the sending session's strand and must not
/// block. What comes back (replies, and failures: unreachable, refused, dropped, timed out)
/// reaches the session as events posted to it (agent::receive_event), each carrying the
/// peer's URL as its sender (event::from_agent) and a lineage whose causation_id is the
/// message it answers; failures are `agent_error_event`s (see make_agent_error).
class agent_transport {
 public:
  virtual ~agent_transport() = default;
  /// Sends `message` (a string, or a JSON object) from `from` to the agent at `url`.
  virtual void send(session& from, const std::string& url, const json& message,
                    const lineage& l) = 0;
  /// Opens the way to `url` early (the first send opens it otherwise).
  virtual void open(session& /*from*/, const std::string& /*url*/) {}
  /// The session `session_id` reset or closed: close and forget what it holds. Any thread.
  virtual void forget(const std::string& /*session_id*/) {}
};

}  // namespace parley
