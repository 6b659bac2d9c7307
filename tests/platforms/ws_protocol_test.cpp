// BAF's frames without sockets: parsing client frames into typed inputs, encoding replies.
#include "ws_protocol.hpp"

#include <doctest/doctest.h>

using namespace parley;
using namespace parley::platforms::detail;

TEST_SUITE("websocket frames") {

TEST_CASE("user_message text and object") {
  auto in = parse_client_frame(R"({"action":"user_message","message":"hi","history":false,"timestamp":null})", 100);
  auto* e = std::get_if<input_event>(&in);
  REQUIRE(e);
  CHECK(e->ev.kind() == event_kind::text);
  CHECK(e->ev.human());
  CHECK(e->ev.text() == "hi");
  in = parse_client_frame(R"({"action":"user_message","message":{"a":1}})", 100);
  e = std::get_if<input_event>(&in);
  REQUIRE(e);
  CHECK(e->ev.kind() == event_kind::json);
  CHECK(e->ev.payload()["a"] == 1);
}

TEST_CASE("actions map to their inputs") {
  CHECK(std::holds_alternative<input_reset>(parse_client_frame(R"({"action":"reset","message":null})", 1)));
  CHECK(std::holds_alternative<input_fetch_history>(parse_client_frame(R"({"action":"fetch_user_messages"})", 1)));
  CHECK(std::holds_alternative<input_ignored>(parse_client_frame(R"({"action":"user_update_ui","message":{}})", 1)));
  auto v = parse_client_frame(R"({"action":"user_set_variable","message":"{\"x\":1}"})", 1);
  REQUIRE(std::holds_alternative<input_set_variables>(v));
  CHECK(std::get<input_set_variables>(v).values["x"] == 1);
  auto a = parse_client_frame(R"({"action":"agent_reply_str","message":"m"})", 1);
  REQUIRE(std::holds_alternative<input_event>(a));
  CHECK(!std::get<input_event>(a).ev.human());
}

TEST_CASE("base64 sizes") {
  CHECK(base64_decoded_size("") == 0);
  CHECK(base64_decoded_size("aGk=") == 2);
  CHECK(base64_decoded_size("aGVsbG8=") == 5);
  CHECK(base64_decoded_size("a$==") == std::string::npos);
  CHECK(base64_decoded_size("aG=k") == std::string::npos);
}

TEST_CASE("replies encode as BAF frames") {
  reply r{reply_kind::text, "hi", {}};
  auto f = json::parse(encode_reply(r));
  CHECK(f["action"] == "agent_reply_str");
  CHECK(f["message"] == "hi");
  CHECK(f["history"] == false);
  r = {reply_kind::options, {}, json::array({"Good", "Bad"})};
  f = json::parse(encode_reply(r, true));
  CHECK(f["history"] == true);
  CHECK(json::parse(f["message"].get<std::string>()) == json({{"0", "Good"}, {"1", "Bad"}}));
  // The direct encoding of text replies gives the same bytes as the JSON object would.
  for (auto kind : {reply_kind::text, reply_kind::markdown, reply_kind::html}) {
    reply t{kind, "a \"quoted\"\n<b>line</b> \xc3\xa9", {}};
    json expect = {{"action", kind == reply_kind::text ? "agent_reply_str"
                              : kind == reply_kind::markdown ? "agent_reply_markdown" : "agent_reply_html"},
                   {"message", t.text}, {"history", false}, {"timestamp", format_timestamp(t.timestamp)}};
    CHECK(encode_reply(t) == expect.dump());
  }
  r = {reply_kind::text, std::string("bad \xff byte"), {}};
  CHECK_NOTHROW(json::parse(encode_reply(r)));  // invalid UTF-8 is replaced, never thrown
}

TEST_CASE("stored chat rows replay with history: true") {
  chat_message user{1, "str", "hello", true, wall_clock::now()};
  auto f = json::parse(encode_history(user));
  CHECK(f["action"] == "user_message");
  CHECK(f["message"] == "hello");
  CHECK(f["history"] == true);
  chat_message opts{2, "options", R"(["A","B"])", false, wall_clock::now()};
  f = json::parse(encode_history(opts));
  CHECK(f["action"] == "agent_reply_options");
  CHECK(json::parse(f["message"].get<std::string>())["1"] == "B");
  chat_message md{3, "markdown", "*x*", false, wall_clock::now()};
  CHECK(json::parse(encode_history(md))["action"] == "agent_reply_markdown");
}

}  // TEST_SUITE
