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

TEST_CASE("text frames read without a JSON tree mean what the general path makes of them") {
  auto text_of = [](std::string_view frame, bool human) -> std::string {
    auto in = parse_client_frame(frame, 100);
    auto* e = std::get_if<input_event>(&in);
    if (!e) return "<not an event>";
    if (e->ev.kind() != event_kind::text || e->ev.human() != human) return "<other event>";
    return e->ev.text();
  };
  auto error_of = [](std::string_view frame) -> std::string {
    auto in = parse_client_frame(frame, 100);
    auto* e = std::get_if<input_error>(&in);
    return e ? e->message : "<no error>";
  };
  CHECK(text_of(R"({"message":"first","action":"user_message"})", true) == "first");
  CHECK(text_of(R"( {"action" : "user_message", "message" : "h\u00e9 \"q\"\n"} )", true) == "h\xc3\xa9 \"q\"\n");
  CHECK(text_of(R"({"action":"user_message","message":"x","history":[1,{"a":"message"}],"timestamp":{"action":"reset"}})", true) == "x");
  CHECK(text_of(R"({"action":"user_message","message":"old","message":"new"})", true) == "new");
  CHECK(text_of(R"({"action":"user_message","message":{"x":1},"message":"last"})", true) == "last");
  CHECK(text_of(R"({"action":"agent_reply_str","message":"from an agent"})", false) == "from an agent");
  CHECK(text_of(R"({"action":"user_message","message":{"message":"inside"}})", true) == "<other event>");
  CHECK(error_of(R"({"action":"user_message","message":"x"} trailing)").find("not JSON") != std::string::npos);
  CHECK(error_of(R"({"action":"user_message","message":"x")").find("not JSON") != std::string::npos);
  CHECK(error_of(R"({"action":"user_message","message":7})").find("must be a string or an object") != std::string::npos);
  CHECK(error_of(R"({"action":"user_message"})").find("must be a string or an object") != std::string::npos);
  CHECK(error_of(R"({"action":7,"message":"x"})").find("'action' must be a string") != std::string::npos);
  CHECK(error_of(R"(["user_message","x"])").find("not an object") != std::string::npos);
  CHECK(error_of(R"({"action":"user_mesage","message":"x"})").find("unknown action 'user_mesage'") != std::string::npos);
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

TEST_CASE("JSON nested more than 64 levels is refused with an error, not a crash (fuzzing regression)") {
  // A 200 kB frame of '[' (under the default 1 MiB max_size) once overflowed an io thread's
  // stack: nlohmann copies a tree recursively. Found by fuzzing; seeds corpus/ws_frame/regress-*.
  auto error_of = [](std::string_view frame) -> std::string {
    auto in = parse_client_frame(frame, 1 << 20);
    auto* e = std::get_if<input_error>(&in);
    return e ? e->message : "<no error>";
  };
  const std::string too_deep = "nests JSON more than 64 levels deep";
  const std::string brackets(200'000, '[');
  CHECK(error_of(brackets).find(too_deep) != std::string::npos);
  CHECK(error_of(brackets + std::string(200'000, ']')).find(too_deep) != std::string::npos);
  CHECK(error_of(R"({"action":"user_message","message":{"x":)" + brackets).find(too_deep) !=
        std::string::npos);
  CHECK(error_of(R"({"action":"agent_reply_str","message":)" + std::string(100'000, '{')).find(too_deep) !=
        std::string::npos);
  // Valid JSON, 100,000 levels deep: the tree would be built, then copied.
  const std::string deep = R"({"x":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  CHECK(error_of(R"({"action":"user_message","message":)" + deep + "}").find(too_deep) !=
        std::string::npos);
  CHECK(error_of(R"({"action":"agent_reply_str","message":)" + deep + "}").find(too_deep) !=
        std::string::npos);
  // JSON carried in a string field is parsed too, and checked first.
  auto quoted = [](const std::string& s) { return json(s).dump(); };
  for (const std::string& inner : {deep, R"({"x":)" + brackets}) {
    CHECK(error_of(R"({"action":"user_set_variable","message":)" + quoted(inner) + "}")
              .find(too_deep) != std::string::npos);
    CHECK(error_of(R"({"action":"user_file","message":)" + quoted(inner) + "}")
              .find(too_deep) != std::string::npos);
  }

  // 64 levels are fine; the 65th is refused (the frame's own object is the first level).
  auto nested = [](int arrays) {
    return R"({"action":"user_message","message":{"x":)" + std::string(std::size_t(arrays), '[') +
           std::string(std::size_t(arrays), ']') + "}}";
  };
  auto ok = parse_client_frame(nested(62), 100);
  auto* e = std::get_if<input_event>(&ok);
  REQUIRE(e);
  CHECK(e->ev.kind() == event_kind::json);
  CHECK(error_of(nested(63)).find(too_deep) != std::string::npos);
  auto deepest_variable = [](int arrays) {
    const std::string v = R"({"x":)" + std::string(std::size_t(arrays), '[') +
                          std::string(std::size_t(arrays), ']') + "}";
    return R"({"action":"user_set_variable","message":)" + json(v).dump() + "}";
  };
  CHECK(std::holds_alternative<input_set_variables>(parse_client_frame(deepest_variable(63), 1)));
  CHECK(error_of(deepest_variable(64)).find(too_deep) != std::string::npos);

  // Brackets inside strings (escaped quotes included) are text, not nesting.
  const std::string name = "\"" + std::string(1000, '[') + "\\";
  auto file = parse_client_frame(
      json({{"action", "user_file"},
            {"message", {{"name", name}, {"type", "t"}, {"base64", "aGk="}}}}).dump(), 100);
  auto* f = std::get_if<input_event>(&file);
  REQUIRE(f);
  REQUIRE(f->ev.file());
  CHECK(f->ev.file()->name == name);
  auto text = parse_client_frame(json({{"action", "user_message"}, {"message", brackets}}).dump(), 1);
  auto* t = std::get_if<input_event>(&text);
  REQUIRE(t);
  CHECK(t->ev.text() == brackets);

  // The error frame that answers it is ordinary JSON.
  auto frame = json::parse(encode_error(error_of(brackets)));
  CHECK(frame["action"] == "error");
  CHECK(frame["message"].get<std::string>().find(too_deep) != std::string::npos);

  // A stored row nested that deep (an older version wrote it) replays as text.
  chat_message row{1, "json", R"({"x":)" + brackets, false, wall_clock::now()};
  auto replay = json::parse(encode_history(row));
  CHECK(replay["action"] == "agent_reply_json");
  CHECK(replay["message"] == row.content);
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
  // Structured kinds too: the message is the data.
  const std::pair<reply_kind, const char*> structured[] = {
      {reply_kind::json, "agent_reply_json"},
      {reply_kind::file, "agent_reply_file"},
      {reply_kind::location, "agent_reply_location"},
      {reply_kind::reasoning_step, "agent_reply_reasoning_step"},
      {reply_kind::task_list_update, "agent_reply_task_list_update"}};
  for (const auto& [kind, action] : structured) {
    reply d{kind, {}, {{"k", "v \"q\""}, {"n", 1.5}, {"list", {1, 2}}}};
    json expect = {{"action", action}, {"message", d.data}, {"history", true},
                   {"timestamp", format_timestamp(d.timestamp)}};
    CHECK(encode_reply(d, true) == expect.dump());
  }
}

TEST_CASE("a numbered reply carries its seq, and is otherwise BAF's frame") {
  // Direct encoding and JSON object agree, with the extra field between message and timestamp.
  for (auto kind : {reply_kind::text, reply_kind::json, reply_kind::image}) {
    reply r{kind, "hi", kind == reply_kind::text ? json() : json{{"base64", "aGk="}, {"name", "a.png"}}};
    r.seq = 42;
    auto f = json::parse(encode_reply(r));
    CHECK(f["seq"] == 42);
    CHECK(f["history"] == false);
    f.erase("seq");
    r.seq = 0;
    CHECK(f == json::parse(encode_reply(r)));  // without a number: no field
    CHECK(encode_reply(r).find("\"seq\"") == std::string::npos);
  }
  reply t{reply_kind::text, "hi", {}};
  t.seq = 7;
  json expect = {{"action", "agent_reply_str"}, {"message", "hi"}, {"history", false},
                 {"seq", 7}, {"timestamp", format_timestamp(t.timestamp)}};
  CHECK(encode_reply(t) == expect.dump());
  // Stored rows: their seq, as history (a replay) or as they went live (a resend from ?since=N).
  chat_message row{5, "text", "hello", false, wall_clock::now(), 3};
  auto h = json::parse(encode_history(row));
  CHECK(h["seq"] == 3);
  CHECK(h["history"] == true);
  CHECK(json::parse(encode_history(row, false))["history"] == false);
  chat_message user{6, "str", "hey", true, wall_clock::now()};
  CHECK_FALSE(json::parse(encode_history(user)).contains("seq"));
}

TEST_CASE("options keep their order past ten, as BAF's enumerate() gives them") {
  json options = json::array();
  for (int i = 0; i < 12; ++i) options.push_back("o" + std::to_string(i));
  options.push_back(json({{"not", "a string"}}));
  auto f = json::parse(encode_reply({reply_kind::options, {}, options}));
  CHECK(f["action"] == "agent_reply_options");
  std::string expect = "{";
  for (int i = 0; i < 12; ++i)
    expect += "\"" + std::to_string(i) + "\":\"o" + std::to_string(i) + "\",";
  expect += R"("12":"{\"not\":\"a string\"}"})";
  CHECK(f["message"] == expect);
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
