#pragma once
// The reasoning layer's trace spans, named and attributed per the OpenTelemetry GenAI
// conventions: `chat {model}` per model call, `execute_tool {tool}` per tool call, children of
// the session's turn span. Strand-only (they read the session's turn span). Without a trace
// sink, or outside a turn, nothing is built.
#include <optional>
#include <string>

#include <parley/llm/chat.hpp>
#include <parley/llm/client.hpp>
#include <parley/session.hpp>
#include <parley/trace.hpp>

namespace parley::llm::detail {

// A started `chat {model}` span for `req` to `model`, or nullopt (no turn span).
std::optional<span> start_chat_span(const session& s, const client& model, const chat_request& req);
// Ends the chat span with the result's model, usage and finish reason.
void end_chat_span(const session& s, std::optional<span>& sp, const chat_result& res);
// Ends the chat span as failed (error.type is the llm::error_kind).
void fail_chat_span(const session& s, std::optional<span>& sp, const error& e);

// One `execute_tool {name}` span, from `started` for `latency_ms`. `error_type` empty: the
// call succeeded. Arguments and result only with the sink's capture_content().
struct tool_trace {
  const tool_call& call;
  wall_clock::time_point started;
  double latency_ms = 0;
  const std::string& result;
  std::string error_type;
};
void trace_tool_call(const session& s, const tool_trace& t);

}  // namespace parley::llm::detail
