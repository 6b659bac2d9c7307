#pragma once
// Runs tool calls for the reasoning loop: each on the session's strand, limited by its
// tool's timeout, its exception turned into an error result. Concurrently or one by one.
#include <chrono>
#include <string>
#include <vector>

#include <parley/llm/tool.hpp>
#include <parley/net.hpp>

namespace parley::llm::detail {

struct tool_job {
  const tool* t = nullptr;
  json arguments;
};

struct tool_outcome {
  std::string content;  // what the model reads; "ERROR: ..." on failure
  bool is_error = false;
  double latency_ms = 0;
  wall_clock::time_point started{};  // when the call began (for its trace span)
};

// What a tool's result reads as: a string as is, null as "OK", anything else as JSON text.
std::string result_text(const json& r);

// Runs `jobs` on the awaiting coroutine's executor (a session strand). With `parallel` they
// all start at once, else each after the previous one ends. A job running past its tool's
// timeout ends as an error (its coroutine gets a terminal cancellation; its late result is
// dropped). When the awaiting coroutine is cancelled every job still running is cancelled and
// this throws.
net::awaitable<std::vector<tool_outcome>> run_tools(std::vector<tool_job> jobs, bool parallel);

}  // namespace parley::llm::detail
