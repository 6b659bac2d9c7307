// A2A's JSON and framing without sockets: messages in, replies out, errors, URLs, SSE.
#include <doctest/doctest.h>

#include "a2a_http.hpp"
#include "a2a_model.hpp"
#include "a2a_relay.hpp"

using namespace parley;
using namespace parley::platforms::detail::a2a;

namespace {
json msg(json parts, json extra = json::object()) {
  json m = {{"messageId", "m1"}, {"role", "ROLE_USER"}, {"parts", std::move(parts)}};
  m.update(extra);
  return m;
}
std::string refusal(const json& m) {
  try {
    read_message(m, 1024);
  } catch (const rpc_error& e) {
    CHECK(e.code == error_code::invalid_params);
    return e.message;
  }
  return "accepted";
}
}  // namespace

TEST_CASE("a2a: a message's parts become events, a human's unless it carries lineage") {
  auto in = read_message(msg(json::array({{{"text", "hi"}}, {{"data", {{"a", 1}}}},
                                           {{"raw", "aGk="}, {"mediaType", "text/plain"}, {"filename", "a.txt"}},
                                           {{"url", "https://x/y.png"}, {"mediaType", "image/png"}}}),
                             {{"contextId", "c"}, {"taskId", "t"}}),
                         1024);
  REQUIRE(in.events.size() == 4);
  CHECK(in.events[0].text() == "hi");
  CHECK(in.events[0].human());
  CHECK(in.events[1].payload() == json{{"a", 1}});
  CHECK(in.events[2].file()->name == "a.txt");
  CHECK(in.events[3].payload()["url"] == "https://x/y.png");
  CHECK(in.context_id == "c");
  CHECK(in.task_id == "t");
  CHECK_FALSE(in.lineage);

  json md = {{std::string(lineage_key), {{"id", "L1"}, {"depth", 3}, {"sender", {{"agent", "peer"}}}}}};
  auto from_agent = read_message(msg(json::array({{{"text", "a"}}, {{"text", "b"}}}), {{"metadata", md}}), 1024);
  REQUIRE(from_agent.lineage);
  CHECK_FALSE(from_agent.events[0].human());
  CHECK(from_agent.events[0].inbound_agent_message());
  CHECK(from_agent.events[0].sender() == "peer");
  CHECK(from_agent.events[0].lineage()->depth == 3);
  CHECK(from_agent.events[1].lineage()->id == "L1#1");  // each part handled once, none dropped
}

TEST_CASE("a2a: bad messages are refused naming the field") {
  CHECK(refusal(json("hi")).find("params.message is required") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"text", "x"}}}), {{"messageId", ""}})).find("messageId") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"text", "x"}}}), {{"role", "ROLE_AGENT"}})).find("ROLE_USER") != std::string::npos);
  CHECK(refusal(msg(json::array())).find("non-empty array") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"text", "x"}, {"data", 1}}}))).find("exactly one") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"text", 5}}}))).find("text must be a string") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"raw", "%%%"}}}))).find("not valid base64") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"raw", std::string(4000, 'A')}}}))).find("the limit is 1024") != std::string::npos);
  CHECK(refusal(msg(json::array({{{"text", "x"}}}), {{"metadata", {{std::string(lineage_key), {{"depth", 1}}}}}}))
            .find(std::string(lineage_key)) != std::string::npos);
}

TEST_CASE("a2a: replies become parts, errors carry the spec's code and reason") {
  reply text{reply_kind::text, "hi", {}};
  CHECK(reply_part(text) == json{{"text", "hi"}, {"mediaType", "text/plain"}});
  reply md{reply_kind::markdown, "**b**", {}};
  CHECK(reply_part(md)["mediaType"] == "text/markdown");
  reply j{reply_kind::json, {}, {{"k", 1}}};
  CHECK(reply_part(j) == json{{"data", {{"k", 1}}}, {"mediaType", "application/json"}});
  reply f{reply_kind::file, {}, {{"name", "a.txt"}, {"type", "text/plain"}, {"base64", "aGk="}}};
  CHECK(reply_part(f) == json{{"raw", "aGk="}, {"mediaType", "text/plain"}, {"filename", "a.txt"}});
  reply opts{reply_kind::options, {}, json::array({"A", "B"})};
  CHECK(reply_part(opts)["metadata"]["parley.reply"] == "options");
  auto l = std::make_shared<lineage>();
  l->id = "r1";
  l->depth = 2;
  text.lineage = l;
  CHECK(reply_part(text)["metadata"][std::string(lineage_key)]["depth"] == 2);

  auto e = error_response(7, {error_code::task_not_found, "Task not found: x"});
  CHECK(e["id"] == 7);
  CHECK(e["error"]["code"] == -32001);
  CHECK(e["error"]["data"][0]["reason"] == "TASK_NOT_FOUND");
  CHECK_FALSE(error_response(nullptr, {error_code::parse_error, "x"})["error"].contains("data"));
  CHECK(terminal(task_state::canceled));
  CHECK(interrupted(task_state::input_required));
  CHECK(task_state_from("TASK_STATE_WORKING") == task_state::working);
  CHECK_FALSE(task_state_from("working"));
  CHECK(timestamp(wall_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("a2a client: URLs and where the card is") {
  std::string why;
  auto u = parse_url("http://127.0.0.1:8080/agents/foo?token=t%20k", &why);
  REQUIRE(u);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == "8080");
  CHECK(u->token == "t k");
  CHECK(card_location(*u).target == "/agents/.well-known/agent-card.json");
  CHECK(card_location(*parse_url("http://h/agents/foo/", &why)).target == "/agents/foo/.well-known/agent-card.json");
  CHECK(card_location(*parse_url("https://h", &why)).target == "/.well-known/agent-card.json");
  CHECK(parse_url("https://[::1]:9/x", &why)->host == "::1");
  CHECK_FALSE(parse_url("ws://h/", &why));
  CHECK(why.find("not an http") != std::string::npos);
  CHECK_FALSE(parse_url("http://h:port/", &why));
}

TEST_CASE("a2a client: SSE events, whatever the chunking") {
  const std::string stream = ": keep-alive\r\ndata: {\"a\":1}\r\n\r\nevent: error\ndata: x\ndata: y\n\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, stream.size()}) {
    sse_parser p(1024);
    std::vector<std::pair<std::string, std::string>> got;
    for (std::size_t i = 0; i < stream.size(); i += step)
      p.feed(std::string_view(stream).substr(i, step),
             [&](const std::string& d, const std::string& t) { got.emplace_back(d, t); });
    REQUIRE(got.size() == 2);
    CHECK(got[0].first == "{\"a\":1}");
    CHECK(got[1] == std::pair<std::string, std::string>{"x\ny", "error"});
  }
  sse_parser small(8);
  CHECK_THROWS_WITH_AS(small.feed("data: 0123456789\n\n", [](auto&, auto&) {}),
                       doctest::Contains("max_response"), std::runtime_error);
}

TEST_CASE("a2a: a task's id names its context, so any node can relay a request about it") {
  const auto id = make_task_id("ctx:with:colons");
  CHECK(context_of_task(id) == "ctx:with:colons");
  CHECK(context_of_task("not-one-of-ours") == "");
  CHECK(context_of_task(id.substr(0, 37)) == "");  // no context after the separator
  using parley::platforms::detail::a2a_relay_target;
  auto rpc = [](const std::string& method, json params) {
    return json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", method}, {"params", std::move(params)}}.dump();
  };
  for (const char* m : {"GetTask", "CancelTask", "SubscribeToTask"}) {
    const auto t = a2a_relay_target(rpc(m, {{"id", id}}));
    CHECK(t.context == "ctx:with:colons");
    CHECK(t.id == 7);
  }
  CHECK(a2a_relay_target(rpc("SendMessage", {{"message", {{"contextId", "c1"}, {"taskId", id}}}})).context == "c1");
  CHECK(a2a_relay_target(rpc("SendMessage", {{"message", {{"taskId", id}}}})).context == "ctx:with:colons");
  // Served where they arrive: a new context, a listing, a foreign id, malformed bodies.
  CHECK(a2a_relay_target(rpc("SendMessage", {{"message", json::object()}})).context.empty());
  CHECK(a2a_relay_target(rpc("ListTasks", json::object())).context.empty());
  CHECK(a2a_relay_target(rpc("GetTask", {{"id", "abc"}})).context.empty());
  CHECK(a2a_relay_target(rpc("GetTask", {{"id", 5}})).context.empty());
  CHECK(a2a_relay_target("{not json").context.empty());
  CHECK(a2a_relay_target("[1,2]").context.empty());
}
