#pragma once
// BAF's WebSocket frames, both ways, without sockets: client frames become small typed inputs
// at the edge; replies and stored chat rows become frames. Pure functions, any thread.
#include <string>
#include <string_view>
#include <variant>

#include <parley/db_handler.hpp>
#include <parley/event.hpp>
#include <parley/net.hpp>
#include <parley/reply.hpp>

namespace parley::platforms::detail {

/// user_message, user_file, agent_reply_str: an event for the session.
struct input_event {
  parley::event ev;
};
/// reset: delete the session's data and start again.
struct input_reset {};
/// user_set_variable: {var: value} into the dictionary.
struct input_set_variables {
  json values;  // an object
};
/// fetch_user_messages: replay the stored chat.
struct input_fetch_history {};
/// user_update_ui and friends: accepted and ignored (BAF logs them).
struct input_ignored {
  std::string action;
};
/// A frame Parley cannot use; `message` names the problem and the fix.
struct input_error {
  std::string message;
};

using client_input = std::variant<input_event, input_reset, input_set_variables,
                                  input_fetch_history, input_ignored, input_error>;

/// Parses one text frame. Never throws.
client_input parse_client_frame(std::string_view text, std::size_t max_file_size);

/// "YYYY-MM-DD HH:MM:SS" in local time, as BAF's frames carry.
std::string format_timestamp(wall_clock::time_point t);

/// The frame for a reply: agent_reply_str, _markdown, _html, _options (a JSON string
/// {"0":"A",...} as BAF sends it), _file, _image (base64, with Parley's extra "name" and
/// "type" fields), _json, _location, _reasoning_step, _task_list_update. A numbered reply
/// (r.seq > 0) carries Parley's extra "seq" field.
std::string encode_reply(const reply& r, bool history = false);
/// The frame replaying one stored chat row (history: true by default; a reply resent for a
/// cursor, ?since=N, goes as it went live): user_message for the user's. A numbered reply
/// carries its "seq".
std::string encode_history(const chat_message& m, bool history = true);
/// {"action":"error","message":...}
std::string encode_error(std::string_view message);

/// Deepest JSON nesting a frame or request may have.
constexpr int max_json_nesting = 64;
/// Whether `text` nests arrays/objects more than max_json_nesting deep (checked before parsing:
/// building the tree recurses once per level).
bool nests_too_deep(std::string_view text);

/// Decoded size of a base64 string, or npos if it is not base64.
std::size_t base64_decoded_size(std::string_view b64);

}  // namespace parley::platforms::detail
