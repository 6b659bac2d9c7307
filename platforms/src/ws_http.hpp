#pragma once
// The HTTP side of the WebSocket platform, without sockets: who a handshake speaks for, whether
// it may upgrade, and the answers to plain GETs (the page, /health, 404).
#include <cstdint>
#include <optional>
#include <string>

#include <parley/double_texting.hpp>

#include "beast.hpp"
#include "ws_hub.hpp"

namespace parley::platforms::detail {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// The session key, user and session name a handshake asks for.
struct client_identity {
  std::string session_id;
  std::string user;
  std::string session_name;
  /// ?since=N: the seq of the last reply the client has; it is sent the stored replies after
  /// it, then live ones. Empty: no cursor (only live replies, and history when asked for).
  std::optional<std::int64_t> since;
  /// ?double_texting=enqueue|reject|interrupt: set as the session's policy when this
  /// connection joins it (the last connection to ask wins, and it stays after the connection
  /// leaves); nothing: the session keeps its own, by default agent.double_texting.
  std::optional<parley::double_texting> double_texting;
};

/// X-Session-ID, else ?session_id=, else fresh_session_id(); X-User-ID or ?user_id=;
/// ?session_name=; ?since= and ?double_texting= (both checked by admit first).
/// @throws std::system_error when the kernel gives no random bytes.
client_identity identify(const request& req);

/// A new session id: 128 bits from the kernel's CSPRNG as 36 characters, 8-4-4-4-12 lowercase
/// hex digits. Any thread. @throws std::system_error when getrandom(2) fails.
std::string fresh_session_id();

/// The value of query parameter `key` in `target` (percent-decoded), or "".
std::string query_param(std::string_view target, std::string_view key);
/// The same, or nothing when `target` has no such parameter.
std::optional<std::string> find_query_param(std::string_view target, std::string_view key);

/// The cursor of ?since= in `target`: nothing when absent; a whole number >= 0 when given;
/// else `why` names the parameter, the value and the fix, and the result is -1.
std::optional<std::int64_t> parse_since(std::string_view target, std::string& why);

/// Whether `req` carries `token` (Authorization: Bearer, else ?token=); an empty token lets
/// everyone in. `why` says what is wrong.
bool token_ok(const request& req, const std::string& token, std::string& why);

/// The path part of a request target (before '?').
std::string_view path_of(std::string_view target);

/// 101 when the upgrade may go ahead (and then a connection slot is reserved), else the
/// refusal: 503 (stopping or max_connections), 403 (Origin), 401 (token), 400 (bad id or
/// ?since=, double_texting); `why` says what and how to fix it.
http::status admit(const request& req, ws_hub& hub, std::string& why);

/// GET / (the page), GET /health, the A2A agent card (when A2A is on), else 404 (405 for
/// other methods).
response handle_http(const request& req, ws_hub& hub);

/// A small text response, e.g. for a refused handshake.
response text_response(http::status status, unsigned version, std::string body, bool keep_alive);

}  // namespace parley::platforms::detail
