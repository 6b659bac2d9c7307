#pragma once
/// A tool the model may call, in its plainest form: a name, a description, the JSON Schema
/// of its arguments and a coroutine that runs it. C++ tools with typed parameters (whose
/// schema Parley derives), the task tools and MCP servers' tools all become these; the
/// reasoning state offers them to the model and runs the calls it asks for.
#include <chrono>
#include <functional>
#include <string>

#include <parley/net.hpp>

namespace parley::llm {

struct tool {
  std::string name;  ///< as offered to the model: ^[a-zA-Z0-9_-]{1,64}$
  std::string description;
  json parameters = json{{"type", "object"}, {"properties", json::object()}};  ///< JSON Schema
  /// Pauses the reasoning loop and asks the user (Yes/No) before each call.
  bool needs_approval = false;
  /// A call still running after this ends as a tool error the model sees.
  std::chrono::milliseconds timeout{30'000};
  /// Runs one call with arguments already checked against `parameters`, on the calling
  /// session's strand. Returns what the model reads (a string is given as it is, anything
  /// else as JSON text). A throw becomes a tool error the model sees, never a crash.
  std::function<net::awaitable<json>(json arguments)> run;
};

}  // namespace parley::llm
