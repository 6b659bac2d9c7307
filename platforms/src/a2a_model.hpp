#pragma once
// A2A v1.0 (the protocol @a2a-js/sdk 1.3.0 speaks) in JSON, without sockets: JSON-RPC
// envelopes and the spec's error codes, task states, replies as Parts, and incoming Messages
// as events. ProtoJSON conventions: camelCase fields, enums as their proto names
// ("TASK_STATE_COMPLETED", "ROLE_USER"), fields at their default left out. Pure functions,
// any thread.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <parley/agent_link.hpp>
#include <parley/event.hpp>
#include <parley/net.hpp>
#include <parley/reply.hpp>

namespace parley::platforms::detail::a2a {

inline constexpr std::string_view protocol_version = "1.0";
inline constexpr std::string_view card_path = "/.well-known/agent-card.json";
/// The key of Message.metadata that carries Parley's lineage (an extension URI, as the spec
/// wants extension data keyed).
inline constexpr std::string_view lineage_key = "https://parley.dev/a2a/lineage/v1";

/// JSON-RPC and A2A error codes (spec v1.0 §5.4, §9.5).
enum class error_code : int {
  parse_error = -32700,
  invalid_request = -32600,
  method_not_found = -32601,
  invalid_params = -32602,
  internal_error = -32603,
  task_not_found = -32001,
  task_not_cancelable = -32002,
  push_notification_not_supported = -32003,
  unsupported_operation = -32004,
  content_type_not_supported = -32005,
  invalid_agent_response = -32006,
  extended_card_not_configured = -32007,
  version_not_supported = -32009,
};

/// An error to answer a request with; thrown by the request handlers.
struct rpc_error {
  error_code code;
  std::string message;
};

/// {"jsonrpc":"2.0","id":id,"error":{code,message,data:[ErrorInfo]}} (the ErrorInfo's reason
/// is the spec's, e.g. TASK_NOT_FOUND).
json error_response(const json& id, const rpc_error& e);
json result_response(const json& id, json result);

enum class task_state {
  submitted,
  working,
  input_required,
  completed,
  failed,
  canceled,
  rejected,
  auth_required,
};
std::string_view to_string(task_state s);  ///< "TASK_STATE_..."
std::optional<task_state> task_state_from(std::string_view s);
/// Completed, failed, canceled, rejected: the task takes no more messages.
bool terminal(task_state s);
/// Input or auth required: a blocking send returns and a stream closes, the task stays open.
bool interrupted(task_state s);

/// ISO-8601 UTC with milliseconds and 'Z'.
std::string timestamp(wall_clock::time_point t);

/// One reply as a Part: text kinds as {"text", mediaType text/plain|markdown|html}, JSON as
/// {"data", application/json}, files and images as {"raw" (base64), mediaType, filename}, the
/// other structured kinds (options, location, ...) as data parts whose metadata names the kind.
json reply_part(const reply& r);

/// What one incoming Message asks of a session.
struct incoming_message {
  std::vector<parley::event> events;  ///< one per part, in order
  /// metadata[lineage_key] when another agent sent it: its events are then that agent's
  /// (event::from_agent, inbound), so the session's replies carry lineage and the depth rule
  /// holds across A2A.
  std::optional<parley::lineage> lineage;
  std::string message_id, context_id, task_id;
};

/// Reads and checks a Message (messageId, role ROLE_USER, parts). Text parts become text
/// events, data parts JSON events, raw parts file events (checked base64, at most
/// `max_file_size` bytes decoded), url parts JSON events {"url","mediaType","filename"}. The
/// events are from a human unless the metadata carries a lineage (another agent).
/// @throws rpc_error (invalid_params) naming the field and the fix.
incoming_message read_message(const json& message, std::size_t max_file_size);

/// A task's id names its context: "<uuid>:<contextId>". Any node can then tell which session a
/// GetTask, CancelTask or SubscribeToTask is about, and relay it to the node that owns that
/// session, where the task lives (several nodes on one database).
std::string make_task_id(const std::string& context_id);
/// The context a task id names ("" for an id this server did not make).
std::string context_of_task(std::string_view task_id);

}  // namespace parley::platforms::detail::a2a
