#pragma once
// Reading what OpenAI-compatible servers answer, without sockets: a whole completion, an SSE
// stream fed in pieces, error bodies and retry-after headers. Tolerant of the quirks of
// llama.cpp, Ollama and vLLM (missing ids, object arguments, whole calls in one chunk, an
// index reused for a new call, usage in its own chunk with no choices).
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <parley/llm/chat.hpp>

namespace parley::llm::detail {

/// A non-streaming body. @throws llm::error (malformed_response, server_error).
chat_result parse_completion(std::string_view body, std::string_view source);

/// `error.message` of an error body (wrapped or, as old vLLM, at top level); nullopt if none.
std::optional<std::string> error_message(std::string_view body);

/// The delay a 429/503 asks for: retry-after-ms, then retry-after as seconds, then as an
/// HTTP date. nullopt when absent or unreadable.
std::optional<std::chrono::milliseconds> retry_after(std::string_view retry_after_ms,
                                                     std::string_view retry_after,
                                                     std::chrono::system_clock::time_point now);

/// Normalises finished tool calls: ids for calls that had none, arguments parsed.
void finish_tool_calls(std::vector<tool_call>& calls);

/// An SSE body, fed as it arrives.
class stream_reader {
 public:
  explicit stream_reader(std::string source) : source_(std::move(source)) {}
  /// @throws llm::error on an error event or object, or a data line that is not JSON.
  void feed(std::string_view bytes);
  bool done() const { return done_; }  ///< [DONE] seen
  bool any_data() const { return chunks_ > 0; }
  /// The result so far (call at the end of the body). @throws llm::error.
  chat_result finish();

 private:
  void line(std::string_view l);
  void dispatch();
  void chunk(const json& j);
  tool_call& slot_for(const json& tc);

  std::string source_;
  std::string pending_;  // bytes not yet ending a line
  std::string data_;     // data: lines of the current event
  std::string event_;
  bool done_ = false;
  int chunks_ = 0;
  chat_result result_;
  std::vector<int> indexes_;  // the stream index of each result_.tool_calls entry
};

}  // namespace parley::llm::detail
