#pragma once
/// What goes to an OpenAI-compatible chat completions endpoint and what comes back, as
/// plain values (no Beast types): chat_request, chat_result, tool_call, usage, and the
/// llm::error every failed call ends with.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <parley/net.hpp>

namespace parley::llm {

/// One request. `messages` and `tools` are sent as they are (OpenAI Chat Completions shapes);
/// `extra` is merged into the body last (temperature, max_tokens, ...).
struct chat_request {
  json messages = json::array();
  json tools;           ///< null or empty: no tools are offered
  std::string model;    ///< empty: the client's (llm.model)
  bool stream = false;  ///< SSE; the result is the same, usage is asked for
  json extra = json::object();
  /// Per-attempt time limit; unset: the client's (llm.timeout).
  std::optional<std::chrono::milliseconds> timeout;
};

/// A tool call the model asked for. `arguments` is the text the server sent (an object sent
/// as JSON is serialised; a doubly encoded string is decoded once; none at all becomes "{}";
/// invalid JSON is kept as sent, with parse_error saying why, never replaced by "{}").
struct tool_call {
  std::string id;  ///< the server's, verbatim; "call_<n>" when it sent none
  std::string name;
  std::string arguments;    ///< JSON text
  json parsed;              ///< the parsed arguments; null when they are not valid JSON
  std::string parse_error;  ///< why `arguments` is not valid JSON; empty when it is
  bool arguments_valid() const { return parse_error.empty(); }
};

struct usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
};

struct chat_result {
  std::string text;       ///< the assistant's content (may be empty with tool calls)
  std::string reasoning;  ///< reasoning_content / reasoning, when the server sends it
  std::vector<tool_call> tool_calls;
  std::string finish_reason;             ///< stop | length | tool_calls | content_filter | ...
  std::optional<llm::usage> usage;       ///< absent when the server sent none
  std::string model;                     ///< as the server named it
  std::chrono::milliseconds latency{0};  ///< from the call to the result, retries included
  int attempts = 0;                      ///< HTTP exchanges made (1 + retries)
};

enum class error_kind {
  config,              ///< bad llm.* settings (base_url, api key variable)
  connect,             ///< name resolution, TCP or TLS failed
  timeout,             ///< no complete answer within llm.timeout
  cancelled,           ///< the cancel_handle fired
  unauthorized,        ///< HTTP 401/403: the API key
  http_status,         ///< another non-2xx status
  server_error,        ///< an error object in a 200 answer or stream
  malformed_response,  ///< the server's JSON or SSE could not be read
  closed_mid_stream,   ///< the connection ended before the answer did
};
std::string_view to_string(error_kind k);

/// Every failed chat ends with this. what() names the URL, the problem and the fix.
class error : public std::runtime_error {
 public:
  error(error_kind kind, std::string message, int status = 0)
      : std::runtime_error(std::move(message)), kind_(kind), status_(status) {}
  error_kind kind() const { return kind_; }
  int status() const { return status_; }  ///< the HTTP status, 0 when none came

 private:
  error_kind kind_;
  int status_;
};

}  // namespace parley::llm
