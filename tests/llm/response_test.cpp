// Reading servers' answers without sockets: SSE fed in pieces, the quirks of llama.cpp, Ollama
// and vLLM, error bodies and retry-after.
#include <doctest/doctest.h>

#include "response.hpp"

using parley::json;
using namespace parley::llm;
using detail::stream_reader;

namespace {

std::string chunk(const json& delta, const json& finish = nullptr) {
  return json{
      {"id", "c1"},
      {"model", "m"},
      {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}}
      .dump();
}

std::string sse(const std::vector<std::string>& events) {
  std::string s;
  for (auto& e : events) s += "data: " + e + "\n\n";
  return s;
}

chat_result read_stream(const std::string& body, std::size_t piece = 1) {
  stream_reader r("test");
  for (std::size_t i = 0; i < body.size(); i += piece)
    r.feed(std::string_view(body).substr(i, piece));
  return r.finish();
}

}  // namespace

TEST_CASE(
    "an SSE stream fed a byte at a time joins text and tool-call deltas by index, with the usage "
    "chunk") {
  std::string body =
      sse({chunk({{"role", "assistant"}, {"content", "Let me "}}), chunk({{"content", "check."}}),
           chunk({{"tool_calls",
                   json::array({{{"index", 0},
                                 {"id", "call_a"},
                                 {"type", "function"},
                                 {"function", {{"name", "weather"}, {"arguments", ""}}}}})}}),
           chunk({{"tool_calls",
                   json::array({{{"index", 1},
                                 {"id", "call_b"},
                                 {"type", "function"},
                                 {"function", {{"name", "time"}, {"arguments", "{\"tz\":"}}}}})}}),
           chunk({{"tool_calls",
                   json::array({{{"index", 0}, {"function", {{"arguments", "{\"city\":"}}}}})}}),
           chunk({{"tool_calls",
                   json::array({{{"index", 0}, {"function", {{"arguments", "\"Oslo\"}"}}}}})}}),
           chunk({{"tool_calls",
                   json::array({{{"index", 1}, {"function", {{"arguments", "\"UTC\"}"}}}}})}}),
           chunk(json::object(), "tool_calls"),
           json{{"id", "c1"},
                {"choices", json::array()},
                {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 5}, {"total_tokens", 16}}}}
               .dump(),
           "[DONE]"});
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}, body.size()}) {
    CAPTURE(piece);
    auto r = read_stream(body, piece);
    CHECK(r.text == "Let me check.");
    REQUIRE(r.tool_calls.size() == 2);
    CHECK(r.tool_calls[0].id == "call_a");
    CHECK(r.tool_calls[0].name == "weather");
    CHECK(r.tool_calls[0].arguments == R"({"city":"Oslo"})");
    CHECK(r.tool_calls[0].parsed == json{{"city", "Oslo"}});
    CHECK(r.tool_calls[1].id == "call_b");
    CHECK(r.tool_calls[1].parsed == json{{"tz", "UTC"}});
    CHECK(r.finish_reason == "tool_calls");
    REQUIRE(r.usage.has_value());
    CHECK(r.usage->prompt_tokens == 11);
    CHECK(r.usage->completion_tokens == 5);
    CHECK(r.usage->total_tokens == 16);
    CHECK(r.model == "m");
  }
}

TEST_CASE("SSE comments, CRLF lines, multi-line data and event names are read as the spec says") {
  std::string body = ": keep-alive\r\n\r\nevent: message\r\ndata: " + chunk({{"content", "a"}}) +
                     "\r\n\r\ndata: [DONE]\r\n\r\n";
  auto r = read_stream(body, 3);
  CHECK(r.text == "a");
}

TEST_CASE(
    "quirks: missing ids are generated, object arguments serialised, whole calls in one chunk") {
  // Ollama: a whole call in one chunk, arguments as an object, and no id.
  std::string body =
      sse({chunk({{"tool_calls",
                   json::array(
                       {{{"index", 0},
                         {"function", {{"name", "add"}, {"arguments", {{"a", 1}, {"b", 2}}}}}}})}},
                 "tool_calls"),
           "[DONE]"});
  auto r = read_stream(body);
  REQUIRE(r.tool_calls.size() == 1);
  CHECK(r.tool_calls[0].id == "call_0");
  CHECK(r.tool_calls[0].name == "add");
  CHECK(r.tool_calls[0].parsed == json{{"a", 1}, {"b", 2}});
  CHECK(r.tool_calls[0].arguments_valid());
}

TEST_CASE("quirks: an index reused for a new call with another id opens a new call") {
  // Ollama's parallel calls all at index 0, told apart by id; a repeated name is assigned.
  std::string body = sse(
      {chunk({{"tool_calls", json::array({{{"index", 0},
                                           {"id", "x1"},
                                           {"function", {{"name", "a"}, {"arguments", "{}"}}}}})}}),
       chunk({{"tool_calls",
               json::array({{{"index", 0},
                             {"id", "x2"},
                             {"function", {{"name", "b"}, {"arguments", "{\"k\":1}"}}}}})}}),
       chunk({{"tool_calls", json::array({{{"index", 0}, {"function", {{"name", "b"}}}}})}}),
       "[DONE]"});
  auto r = read_stream(body);
  REQUIRE(r.tool_calls.size() == 2);
  CHECK(r.tool_calls[0].id == "x1");
  CHECK(r.tool_calls[0].name == "a");
  CHECK(r.tool_calls[1].id == "x2");
  CHECK(r.tool_calls[1].name == "b");
  CHECK(r.tool_calls[1].parsed == json{{"k", 1}});
  CHECK(r.finish_reason == "tool_calls");
}

TEST_CASE("quirks: a whole new call at the same index without ids opens a new call") {
  std::string body = sse(
      {chunk({{"tool_calls",
               json::array(
                   {{{"index", 0}, {"function", {{"name", "a"}, {"arguments", "{\"n\":1}"}}}}})}}),
       chunk({{"tool_calls",
               json::array(
                   {{{"index", 0}, {"function", {{"name", "a"}, {"arguments", "{\"n\":2}"}}}}})}}),
       "[DONE]"});
  auto r = read_stream(body);
  REQUIRE(r.tool_calls.size() == 2);
  CHECK(r.tool_calls[0].id != r.tool_calls[1].id);
  CHECK(r.tool_calls[1].parsed == json{{"n", 2}});
}

TEST_CASE(
    "quirks: doubly encoded arguments are decoded once, invalid ones keep the text and say why") {
  json body = {
      {"model", "m"},
      {"choices",
       json::array(
           {{{"finish_reason", "tool"},
             {"message",
              {{"content", nullptr},
               {"tool_calls",
                json::array({
                    {{"id", "1"},
                     {"function", {{"name", "f"}, {"arguments", json(R"({"x":[1,2]})").dump()}}}},
                    {{"id", "2"}, {"function", {{"name", "g"}, {"arguments", "{\"x\": "}}}},
                    {{"id", "3"}, {"function", {{"name", "h"}}}},
                })}}}}})}};
  auto r = detail::parse_completion(body.dump(), "test");
  REQUIRE(r.tool_calls.size() == 3);
  CHECK(r.tool_calls[0].parsed == json{{"x", {1, 2}}});
  CHECK(r.tool_calls[1].parsed.is_null());
  CHECK_FALSE(r.tool_calls[1].arguments_valid());
  CHECK(r.tool_calls[1].arguments == "{\"x\": ");
  CHECK(r.tool_calls[1].parse_error.find("'g'") != std::string::npos);
  CHECK(r.tool_calls[2].parsed == json::object());
  CHECK(r.finish_reason == "tool_calls");
  CHECK(r.text.empty());
  CHECK_FALSE(r.usage.has_value());
}

TEST_CASE("a non-streaming completion gives text, reasoning, usage and model") {
  json body = {
      {"model", "gpt-x"},
      {"choices",
       json::array({{{"finish_reason", "stop"},
                     {"message", {{"content", "Hello"}, {"reasoning_content", "think"}}}}})},
      {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 1}}}};
  auto r = detail::parse_completion(body.dump(), "test");
  CHECK(r.text == "Hello");
  CHECK(r.reasoning == "think");
  CHECK(r.model == "gpt-x");
  CHECK(r.usage->total_tokens == 4);
}

TEST_CASE("errors: malformed JSON, an error object in a 200 body or stream") {
  auto kind_of = [](auto fn) {
    try {
      fn();
    } catch (const error& e) {
      return e.kind();
    }
    FAIL("no error");
    return error_kind::config;
  };
  CHECK(kind_of([] { detail::parse_completion("{not json", "t"); }) ==
        error_kind::malformed_response);
  CHECK(kind_of([] { detail::parse_completion(R"({"error":{"message":"boom"}})", "t"); }) ==
        error_kind::server_error);
  CHECK(kind_of([] {
          detail::parse_completion(R"({"object":"error","message":"old vllm"})", "t");
        }) == error_kind::server_error);
  CHECK(kind_of([] { read_stream(sse({R"({"error":{"message":"overloaded","code":503}})"})); }) ==
        error_kind::server_error);
  CHECK(kind_of([] { read_stream("event: error\ndata: {\"message\":\"x\"}\n\n"); }) ==
        error_kind::server_error);
  CHECK(kind_of([] { read_stream(sse({"{bad"})); }) == error_kind::malformed_response);
  CHECK(detail::error_message(
            R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})") ==
        "Loading model");
  CHECK(detail::error_message(R"({"object":"error","message":"m"})") == "m");
  CHECK_FALSE(detail::error_message("<html>").has_value());
}

TEST_CASE("retry-after: milliseconds first, then seconds, then an HTTP date") {
  using std::chrono::milliseconds;
  auto now = std::chrono::system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  CHECK(detail::retry_after("250", "9", now) == milliseconds(250));
  CHECK(detail::retry_after("", "2", now) == milliseconds(2000));
  CHECK(detail::retry_after("", "0.5", now) == milliseconds(500));
  CHECK(detail::retry_after("", "Wed, 21 Oct 2015 07:28:03 GMT", now) == milliseconds(3000));
  CHECK_FALSE(detail::retry_after("", "", now).has_value());
  CHECK_FALSE(detail::retry_after("x", "soon", now).has_value());
}
