#pragma once
/// Traces of what an agent does, in OpenTelemetry's shape. With a trace sink set
/// (agent::set_trace_sink; the OTLP exporter of parley::platforms is one), each turn of a
/// session (one event handled: a user message, an agent message, a timeout, ...) becomes one
/// trace: a root span `invoke_agent {agent}` with children for intent recognition and each
/// transition, to which the reasoning layer (parley::llm) adds `chat {model}` and
/// `execute_tool {tool}` spans. Names and attributes follow the OpenTelemetry GenAI semantic
/// conventions (gen_ai.*); Parley's own attributes are parley.*. Without a sink nothing is
/// built: the cost is a null check.
///
/// Spans never carry the session id (a bearer secret: gen_ai.conversation.id is
/// parley::session_tag of it), API keys or tokens; message text, tool arguments and tool
/// results only when the sink says capture_content().
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <parley/net.hpp>

namespace parley {

class agent;

/// OpenTelemetry's SpanKind; the numbers are OTLP's.
enum class span_kind : int { internal = 1, server = 2, client = 3, producer = 4, consumer = 5 };
/// OpenTelemetry's status code; the numbers are OTLP's.
enum class span_status : int { unset = 0, ok = 1, error = 2 };

/// An attribute's value: OTLP's string, int, double, bool, or an array of strings.
using attribute_value =
    std::variant<std::string, std::int64_t, double, bool, std::vector<std::string>>;

struct span_attribute {
  std::string key;
  attribute_value value;
};

/// One span: a named, timed piece of work in a trace. Ids are lowercase hex (a trace id 32
/// digits, a span id 16); a root span has no parent (""). A plain value: not thread-safe, it
/// belongs to whoever builds it until it is given to a sink.
struct span {
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;
  std::string name;
  span_kind kind = span_kind::internal;
  wall_clock::time_point start{};
  wall_clock::time_point end{};
  std::vector<span_attribute> attributes;
  span_status status = span_status::unset;
  std::string status_message;

  /// A root span of a new trace (fresh random ids), started now.
  static span root(std::string name, span_kind kind = span_kind::internal);
  /// A child of this span: the same trace, a fresh span id, this span as parent, started now.
  span child(std::string name, span_kind kind = span_kind::internal) const;

  /// Sets attribute `key` (replacing a value set before).
  span& put(std::string key, attribute_value value);
  span& set(std::string key, std::string value) { return put(std::move(key), std::move(value)); }
  span& set(std::string key, const char* value) { return put(std::move(key), std::string(value)); }
  span& set(std::string key, double value) { return put(std::move(key), value); }
  span& set(std::string key, bool value) { return put(std::move(key), value); }
  span& set(std::string key, std::vector<std::string> value) {
    return put(std::move(key), std::move(value));
  }
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  span& set(std::string key, T value) {
    return put(std::move(key), static_cast<std::int64_t>(value));
  }
  /// The value of attribute `key`, or null.
  const attribute_value* find(std::string_view key) const;
  /// Marks the span failed: status error, `error.type` = `type` (a short, low-cardinality
  /// name such as "timeout"), and `message` as the status message.
  span& fail(std::string type, std::string message = {});
  /// Ends the span now (end time), unless it has ended already.
  span& finish();
};

/// Where finished spans go. The agent calls start() from agent::start() and stop() from
/// agent::stop() once its sessions have finished what they had queued.
class trace_sink {
 public:
  virtual ~trace_sink() = default;
  /// Called by agent::start() before any session runs.
  virtual void start(const agent& owner) { (void)owner; }
  /// Any thread, from session strands: takes a finished span. Must not block: queue it, or
  /// drop it and count it.
  virtual void export_span(span s) = 0;
  /// Called by agent::stop(): export what is queued within a short deadline, then stop.
  virtual void stop() {}
  /// Whether spans may carry message text, tool arguments and tool results (which may be
  /// personal data). Off unless the sink's owner opts in. Any thread.
  virtual bool capture_content() const { return false; }
  /// Counters for /health (e.g. exported, dropped). Any thread.
  virtual json stats() const { return json::object(); }
};

}  // namespace parley
