// Traces over OTLP/HTTP JSON: the encoding without sockets, then a bot's turns and a reasoning
// state's model and tool calls exported to a real receiver on loopback.
#include <doctest/doctest.h>

#include <parley/log.hpp>
#include <parley/platforms/config_keys.hpp>

#include "../llm/reasoning_support.hpp"
#include "telemetry_support.hpp"

using namespace std::chrono_literals;
using parley::json;
namespace llm = parley::llm;
namespace platforms = parley::platforms;

TEST_CASE("otlp: spans are encoded as OTLP/HTTP JSON (hex ids, string nanos, typed values)") {
  auto root = parley::span::root("invoke_agent bot");
  root.set("gen_ai.agent.name", "bot").set("n", 42).set("x", 0.5).set("ok", true);
  root.set("reasons", std::vector<std::string>{"stop"});
  root.set("n", 43);  // replaces
  auto child = root.child("chat m", parley::span_kind::client);
  child.fail("timeout", "no answer");
  child.set("bad", std::string("caf\xC3"));  // invalid UTF-8 must not throw
  child.finish();
  root.finish();
  const json body = json::parse(platforms::encode_otlp_traces({root, child}, "svc"));
  const auto& rs = body["resourceSpans"][0];
  CHECK(rs["resource"]["attributes"][0] ==
        json({{"key", "service.name"}, {"value", {{"stringValue", "svc"}}}}));
  CHECK(rs["scopeSpans"][0]["scope"]["name"] == "parley");
  const auto& spans = rs["scopeSpans"][0]["spans"];
  REQUIRE(spans.size() == 2);
  const auto& r = spans[0];
  CHECK(r["traceId"].get<std::string>().size() == 32);
  CHECK(r["spanId"].get<std::string>().size() == 16);
  CHECK_FALSE(r.contains("parentSpanId"));
  CHECK(r["kind"] == 1);
  CHECK(r["startTimeUnixNano"].is_string());
  CHECK(std::stoll(r["endTimeUnixNano"].get<std::string>()) >=
        std::stoll(r["startTimeUnixNano"].get<std::string>()));
  json attrs = json::object();
  for (const auto& a : r["attributes"]) attrs[a["key"].get<std::string>()] = a["value"];
  CHECK(attrs["gen_ai.agent.name"] == json({{"stringValue", "bot"}}));
  CHECK(attrs["n"] == json({{"intValue", "43"}}));
  CHECK(attrs["x"] == json({{"doubleValue", 0.5}}));
  CHECK(attrs["ok"] == json({{"boolValue", true}}));
  CHECK(attrs["reasons"] == json({{"arrayValue", {{"values", {{{"stringValue", "stop"}}}}}}}));
  CHECK(r["attributes"].size() == 5);
  const auto& c = spans[1];
  CHECK(c["traceId"] == r["traceId"]);
  CHECK(c["parentSpanId"] == r["spanId"]);
  CHECK(c["spanId"] != r["spanId"]);
  CHECK(c["kind"] == 3);
  CHECK(c["status"] == json({{"code", 2}, {"message", "no answer"}}));
}

TEST_CASE("otlp: the endpoint is checked and gets /v1/traces once") {
  platforms::otlp_options o;
  o.endpoint = "http://127.0.0.1:4318";
  CHECK(platforms::otlp_exporter(o).endpoint() == "http://127.0.0.1:4318/v1/traces");
  o.endpoint = "http://collector:4318/otlp/v1/traces/";
  CHECK(platforms::otlp_exporter(o).endpoint() == "http://collector:4318/otlp/v1/traces");
  o.endpoint = "https://user:pw@collector/prefix?token=s3cret";
  const platforms::otlp_exporter e(o);
  CHECK(e.endpoint() == "https://collector:443/prefix/v1/traces");  // no credentials
  o.endpoint = "collector:4318";
  try {
    platforms::otlp_exporter bad(o);
    FAIL("a URL without a scheme was accepted");
  } catch (const parley::config_error& ex) {
    CHECK(std::string(ex.what()).find("telemetry.otlp_endpoint") != std::string::npos);
  }
  parley::config cfg;
  platforms::declare_config(cfg);
  cfg.set("telemetry.batch_size", 0, "test");
  CHECK_THROWS_AS(platforms::otlp_options::from_config(cfg), parley::config_error);
  cfg.set("telemetry.batch_size", 10, "test");
  cfg.set("telemetry.export_timeout", -1.0, "test");
  CHECK_THROWS_AS(platforms::otlp_options::from_config(cfg), parley::config_error);
  cfg.set("telemetry.export_timeout", 1.0, "test");
  parley::agent a("x");
  CHECK(platforms::use_otlp_exporter(a, cfg) == nullptr);  // no endpoint: no traces
  CHECK(a.traces() == nullptr);
}

TEST_CASE("otlp: each turn of a bot is one trace: invoke_agent with intent and transition spans") {
  test::otlp_receiver receiver;
  test::reply_box replies;
  parley::agent a("greeter");
  a.config().set("agent.threads", 2, "test");
  a.config().set("log.level", "error", "test");
  test::define_greeter(a);
  auto exporter = std::make_shared<platforms::otlp_exporter>(test::quick(receiver.endpoint()));
  a.set_trace_sink(exporter);
  a.use_platform(replies.platform());
  a.start();
  const std::string id = "sess-0123456789-secret";
  auto p = a.platforms().front().get();
  a.get_or_create_session(id, p, "alice");
  REQUIRE(replies.wait(id, 1));  // welcome: the session's start is no turn
  REQUIRE(a.receive_event(id, parley::event::text("hello")).ok);
  REQUIRE(replies.wait(id, 3));  // nice to meet you, done
  REQUIRE(receiver.wait([](const auto& all) { return test::named(all, "transition").size() >= 2; }));
  REQUIRE(a.receive_event(id, parley::event::text("what now")).ok);
  REQUIRE(replies.wait(id, 4));
  REQUIRE(receiver.wait(
      [](const auto& all) { return test::named(all, "invoke_agent").size() >= 2; }));

  const auto all = receiver.spans();
  CHECK(receiver.format_errors().empty());
  for (const auto& t : receiver.targets()) CHECK(t == "/v1/traces");
  const auto roots = test::named(all, "invoke_agent greeter");
  REQUIRE(roots.size() == 2);
  const auto& root = roots[0];
  CHECK(root.service == "greeter");
  CHECK(root.parent_span_id.empty());
  CHECK(root.kind == 1);
  CHECK(root.attr("gen_ai.operation.name") == "invoke_agent");
  CHECK(root.attr("gen_ai.agent.name") == "greeter");
  CHECK(root.attr("gen_ai.conversation.id") == parley::session_tag(id));
  CHECK(root.attr("parley.event.kind") == "text");
  CHECK(root.attr("parley.state.start") == "start");
  CHECK(root.attr("parley.state.end") == "done");
  CHECK(root.attr("parley.message").is_null());  // content only when opted in

  const auto turn = test::of_trace(all, root.trace_id);
  REQUIRE(turn.size() == 4);  // the root, the intent, two transitions
  const auto intents = test::named(turn, "intent_recognition");
  REQUIRE(intents.size() == 1);
  const auto& in = intents[0];
  CHECK(in.name == "intent_recognition start");
  CHECK(in.parent_span_id == root.span_id);
  CHECK(in.attr("parley.intent.name") == "greet");
  CHECK(in.attr("parley.intent.matched") == true);
  CHECK(in.attr("parley.intent.score").get<double>() >= 0.4);
  CHECK_FALSE(in.attr("parley.intent.classifier").get<std::string>().empty());
  const auto moves = test::named(turn, "transition");
  REQUIRE(moves.size() == 2);
  const auto& first = moves[0].attr("parley.transition.source") == "start" ? moves[0] : moves[1];
  const auto& second = &first == &moves[0] ? moves[1] : moves[0];
  CHECK(first.parent_span_id == root.span_id);
  CHECK(second.parent_span_id == root.span_id);
  CHECK(first.attr("parley.transition.dest") == "greeted");
  CHECK(first.attr("parley.transition.kind") == "intent");
  CHECK(first.attr("parley.transition.event") == "intent greet");
  CHECK(second.attr("parley.transition.source") == "greeted");
  CHECK(second.attr("parley.transition.dest") == "done");
  CHECK(second.attr("parley.transition.kind") == "condition");
  CHECK(second.attr("parley.transition.condition") == "always true");
  CHECK(first.end_ns <= second.start_ns);
  for (const auto& s : turn) {
    CHECK(s.start_ns >= root.start_ns);
    CHECK(s.end_ns <= root.end_ns);
    CHECK(s.start_ns <= s.end_ns);
  }

  // The second turn: a trace of its own; the fallback answered.
  const auto& again = roots[1];
  CHECK(again.trace_id != root.trace_id);
  CHECK(again.attr("parley.fallback") == true);
  CHECK(again.attr("parley.state.start") == "done");
  CHECK(test::of_trace(all, again.trace_id).size() == 1);

  // The session id is a bearer secret: it never leaves in a span.
  for (const auto& b : receiver.bodies()) CHECK(b.find(id) == std::string::npos);
  a.stop();
  a.wait();
  CHECK(exporter->counts().dropped == 0);
  CHECK(exporter->counts().exported == 5);
}

TEST_CASE("otlp: a reasoning state adds chat spans with token usage and execute_tool spans") {
  test::otlp_receiver receiver;
  std::shared_ptr<platforms::otlp_exporter> exporter;
  llm::reasoning_options o;
  o.task_planning = false;
  o.tools = {llm::make_tool("add", "Adds two integers.",
                            {llm::param::integer("a", "the first"), llm::param::integer("b", "the second")},
                            [](const llm::tool_args& t) { return t.get<int>("a") + t.get<int>("b"); })};
  test::reasoner r(std::move(o), [&](parley::agent& a, parley::state&) {
    exporter = std::make_shared<platforms::otlp_exporter>(test::quick(receiver.endpoint()));
    a.set_trace_sink(exporter);
  });
  r.server.push(test::exchange::json_body(
      test::tool_calls_answer({{"call_7", "add", R"({"a": 2, "b": 3})"}}, 11, 5)));
  r.server.push(test::exchange::json_body(test::completion("It is 5.")));
  r.say("s1", "what is 2 + 3?");
  REQUIRE(r.wait_texts("s1", 1));
  CHECK(r.texts("s1")[0] == "It is 5.");
  const auto done = [](const auto& all) {
    return !test::named(all, "invoke_agent").empty() && test::named(all, "chat").size() >= 2 &&
           !test::named(all, "execute_tool").empty();
  };
  REQUIRE(receiver.wait(done));
  const auto all = receiver.spans();
  CHECK(receiver.format_errors().empty());
  const auto root = test::named(all, "invoke_agent reasoner").at(0);
  const auto turn = test::of_trace(all, root.trace_id);
  const auto chats = test::named(turn, "chat ");
  REQUIRE(chats.size() == 2);
  for (const auto& c : chats) {
    CHECK(c.name == "chat scripted-model");
    CHECK(c.kind == 3);  // CLIENT
    CHECK(c.parent_span_id == root.span_id);
    CHECK(c.attr("gen_ai.operation.name") == "chat");
    CHECK(c.attr("gen_ai.provider.name") == "openai");
    CHECK(c.attr("gen_ai.request.model") == "scripted-model");
    CHECK(c.attr("gen_ai.response.model") == "scripted-model");
    CHECK(c.attr("gen_ai.conversation.id") == parley::session_tag("s1"));
    CHECK(c.attr("server.address") == "127.0.0.1");
    CHECK(c.attr("gen_ai.input.messages").is_null());
  }
  const auto& calls = chats[0].attr("gen_ai.response.finish_reasons") == json::array({"tool_calls"})
                          ? chats[0] : chats[1];
  const auto& answer = &calls == &chats[0] ? chats[1] : chats[0];
  CHECK(calls.attr("gen_ai.usage.input_tokens") == 11);
  CHECK(calls.attr("gen_ai.usage.output_tokens") == 5);
  CHECK(answer.attr("gen_ai.response.finish_reasons") == json::array({"stop"}));
  CHECK(answer.attr("gen_ai.usage.input_tokens") == 7);
  CHECK(answer.attr("gen_ai.usage.output_tokens") == 3);
  CHECK(calls.end_ns <= answer.start_ns);
  const auto tools = test::named(turn, "execute_tool");
  REQUIRE(tools.size() == 1);
  const auto& t = tools[0];
  CHECK(t.name == "execute_tool add");
  CHECK(t.parent_span_id == root.span_id);
  CHECK(t.attr("gen_ai.operation.name") == "execute_tool");
  CHECK(t.attr("gen_ai.tool.name") == "add");
  CHECK(t.attr("gen_ai.tool.call.id") == "call_7");
  CHECK(t.status == 0);
  CHECK(t.attr("gen_ai.tool.call.arguments").is_null());  // opt-in only
  CHECK(t.attr("gen_ai.tool.call.result").is_null());
  CHECK(calls.end_ns <= t.start_ns);
  CHECK(t.end_ns <= answer.start_ns);

  // A failed model call: its span says why.
  r.server.push(test::exchange::text(R"({"error":{"message":"bad request"}})", 400));
  r.say("s1", "again");
  REQUIRE(r.wait_texts("s1", 2));
  REQUIRE(receiver.wait([](const auto& got) {
    for (const auto& s : test::named(got, "chat "))
      if (s.status == 2) return true;
    return false;
  }));
  for (const auto& s : test::named(receiver.spans(), "chat "))
    if (s.status == 2) {
      CHECK(s.attr("error.type") == "http_status");
      CHECK(s.attr("http.response.status_code") == 400);
    }
}

TEST_CASE("otlp: with capture_content, spans carry the message and tool arguments and results") {
  test::otlp_receiver receiver;
  llm::reasoning_options o;
  o.task_planning = false;
  o.tools = {llm::make_tool("echo", "Echoes.", {llm::param::string("text", "what to echo")},
                            [](const llm::tool_args& t) { return t.get<std::string>("text"); })};
  test::reasoner r(std::move(o), [&](parley::agent& a, parley::state&) {
    auto opts = test::quick(receiver.endpoint());
    opts.capture_content = true;
    a.set_trace_sink(std::make_shared<platforms::otlp_exporter>(opts));
  });
  r.server.push(test::exchange::json_body(
      test::tool_calls_answer({{"c1", "echo", R"({"text": "ping"})"}})));
  r.server.push(test::exchange::json_body(test::completion("pong")));
  r.say("s2", "echo ping please");
  REQUIRE(r.wait_texts("s2", 1));
  REQUIRE(receiver.wait([](const auto& all) {
    return !test::named(all, "execute_tool").empty() && !test::named(all, "invoke_agent").empty();
  }));
  const auto all = receiver.spans();
  const auto t = test::named(all, "execute_tool echo").at(0);
  CHECK(t.attr("gen_ai.tool.call.arguments") == R"({"text": "ping"})");
  CHECK(t.attr("gen_ai.tool.call.result") == "ping");
  CHECK(test::named(all, "invoke_agent").at(0).attr("parley.message") == "echo ping please");
}
