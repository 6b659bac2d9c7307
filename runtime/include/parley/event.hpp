#pragma once
/// Events: what reaches a session. Inputs become these small typed values at the platform
/// edge; nothing deeper in the runtime sees raw frames.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <parley/agent_link.hpp>
#include <parley/net.hpp>

namespace parley {

class intent;

enum class event_kind : std::uint8_t {
  text,     ///< a text message, from a human or from another agent
  json,     ///< a JSON payload (a dictionary sent by a client or another agent)
  file,     ///< a file (name, MIME type, base64 content)
  timeout,  ///< a state's `after(d)` timeout (made by the runtime)
  custom,   ///< a named event with a JSON payload
};

std::string_view to_string(event_kind kind);

/// A file carried by an event or a reply. `base64` holds the content, encoded.
struct file_data {
  std::string name;
  std::string type;  ///< MIME type, e.g. "application/pdf"
  std::string base64;
};

/// One parameter of a matched intent, extracted from the message by an entity.
struct intent_parameter {
  std::string name;
  std::string value;
  json info;  ///< entity details (entity name, original text, ...)
};

/// The intent classifier's answer for one message in one state.
struct intent_prediction {
  const parley::intent* intent = nullptr;  ///< nullptr: no intent reached the threshold
  std::string intent_name;                 ///< "" when no intent matched
  double score = 0.0;                      ///< calibrated to 0..1
  std::vector<intent_parameter> parameters;
  std::string classifier;  ///< name of the classifier that produced it
  bool matched() const { return intent != nullptr; }
};

/// An event. Cheap to move; copy shares nothing mutable.
class event {
 public:
  event() = default;

  /// A text message; `human` is false for messages from other agents.
  static event text(std::string message, bool human = true);
  /// A JSON payload. If it holds a string "message", `text()` returns it (as BAF does).
  static event json_payload(json payload, bool human = true);
  static event file(file_data file, bool human = true);
  /// A custom named event, e.g. event::custom("order_paid", {{"id", 7}}).
  static event custom(std::string name, json payload = {});
  /// A timeout (made by the runtime; `generation` ties it to one entry into a state).
  static event timeout(std::uint64_t generation, clock::duration after);
  /// The `agent_error_event` for a message to `url` that failed or was refused: payload
  /// {"url","reason","message_id"}, sender() = `url`. Made by the runtime and transports.
  static event agent_error(std::string url, std::string reason, std::string message_id);

  /// Marks this event as coming from another agent: `sender` (the peer's URL, or its agent
  /// name), the `lineage` it carried and the `protocol` ("websocket", "a2a"). Platforms and
  /// transports call it at the edge. `inbound`: the peer called us (a platform got it), so the
  /// session's replies go back to that peer and carry lineage; false for what a transport
  /// brings back to the session that called (its replies go to its own user).
  event& from_agent(std::string sender, parley::lineage l, std::string protocol,
                    bool inbound = false);

  event_kind kind() const { return kind_; }
  /// True for a person's message; false for another agent's, and for runtime events.
  bool human() const { return human_; }
  /// Who sent it: the peer's URL or agent name for agent messages and agent errors, else "".
  const std::string& sender() const;
  /// The lineage an agent message carried (null for humans, timeouts, BAF peers without it).
  const parley::lineage* lineage() const {
    return origin_ && !origin_->lineage.id.empty() ? &origin_->lineage : nullptr;
  }
  /// "websocket", "a2a" for agent messages that came by a transport, else "".
  const std::string& agent_protocol() const;
  /// Whether the peer called this session (see from_agent): its replies answer that peer.
  bool inbound_agent_message() const { return origin_ && origin_->inbound; }
  /// A non-human text, JSON or file event: a message from another agent.
  bool is_agent_message() const {
    return !human_ && (kind_ == event_kind::text || kind_ == event_kind::json ||
                       kind_ == event_kind::file);
  }
  /// BAF-style name: "receive_message_text", "receive_message_json", "receive_file",
  /// "timeout", or the custom name.
  std::string_view name() const;
  /// The text of a text event, or the "message" string of a JSON event, else "".
  const std::string& text() const { return text_; }
  const json& payload() const { return payload_; }
  const file_data* file() const { return file_.get(); }
  wall_clock::time_point timestamp() const { return timestamp_; }
  std::uint64_t generation() const { return generation_; }
  clock::duration timeout_after() const { return after_; }

  /// The intent prediction made for this event in the state that handled it, if any.
  const intent_prediction* prediction() const { return prediction_.get(); }
  void set_prediction(intent_prediction p);
  void clear_prediction() { prediction_.reset(); }
  /// Shorthand: the matched intent's name, or "" (no prediction or no match).
  const std::string& intent_name() const;
  /// Shorthand: a parameter of the matched intent, or nullptr.
  const intent_parameter* parameter(std::string_view name) const;

  /// A short description for logs and the DB ("text 'hello'", "custom order_paid").
  std::string describe() const;

 private:
  event_kind kind_ = event_kind::custom;
  bool human_ = false;
  std::uint64_t generation_ = 0;
  clock::duration after_{};
  wall_clock::time_point timestamp_ = wall_clock::now();
  std::string name_;
  std::string text_;
  json payload_;
  std::shared_ptr<const file_data> file_;
  std::shared_ptr<const intent_prediction> prediction_;
  struct agent_origin {
    std::string sender;
    parley::lineage lineage;
    std::string protocol;
    bool inbound = false;
  };
  std::shared_ptr<const agent_origin> origin_;
  bool reset_ = false;  // the session's own reset marker (see session::reset)
  // A user message's number among those its session accepted (session::post); 0 otherwise.
  std::uint64_t user_seq_ = 0;
  friend class session;
};

}  // namespace parley
