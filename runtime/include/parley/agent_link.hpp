#pragma once
/// Agent-to-agent messaging (issue 13): the lineage every message between agents carries, and
/// the one interface through which a session reaches other agents. The transports (BAF's
/// WebSocket way, A2A) live in platforms/ and register with the agent; the runtime knows only
/// this header.
#include <optional>
#include <string>

#include <parley/net.hpp>

namespace parley {

class session;

/// Where an agent-to-agent message comes from. Sent as extra fields BAF ignores (WebSocket)
/// or in the message's metadata (A2A).
struct lineage {
  std::string id;              ///< this message's unique id
  std::string causation_id;    ///< the message that caused it; "" when a human's did
  std::string correlation_id;  ///< the conversation it belongs to, kept across hops
  std::string sender_agent;    ///< the sending agent's name
  std::string sender_session;  ///< the sending session's id
  int depth = 0;               ///< agent hops since a human spoke

  json to_json() const;
  /// Reads the fields from a frame or metadata object; nullopt (and `error` says why) when
  /// they are missing or of the wrong type.
  static std::optional<lineage> from_json(const json& j, std::string* error = nullptr);
};

/// A way to reach other agents ("websocket" for BAF's frames, "a2a"), registered with
/// agent::set_agent_transport. All calls come on the sending session's strand and must not
/// block. What comes back (replies, and failures: unreachable, refused, dropped, timed out)
/// reaches the session as events posted to it, each carrying the peer's URL as its sender and
/// a lineage whose causation_id is the message it answers.
class agent_transport {
 public:
  virtual ~agent_transport() = default;
  /// Sends `message` (a string, or a JSON object) from `from` to the agent at `url`.
  virtual void send(session& from, const std::string& url, const json& message,
                    const lineage& l) = 0;
  /// Opens the way to `url` early (the first send opens it otherwise).
  virtual void open(session& /*from*/, const std::string& /*url*/) {}
  /// The session `session_id` reset or closed: close and forget what it holds.
  virtual void forget(const std::string& /*session_id*/) {}
};

}  // namespace parley
