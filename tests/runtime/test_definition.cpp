// Definition errors: thrown at definition or at start(), naming the state and the fix.
#include <doctest/doctest.h>

#include <parley/agent.hpp>

using parley::definition_error;

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const definition_error& e) {
    return e.what();
  }
  return "(no definition_error)";
}
}  // namespace

TEST_CASE("an agent without an initial state refuses to start and says how to fix it") {
  parley::agent a("bot");
  a.config().set("log.level", "off");
  a.new_state("only");
  auto msg = message_of([&] { a.start(); });
  CHECK(msg.find("no initial state") != std::string::npos);
  CHECK(msg.find("initial=true") != std::string::npos);
}

TEST_CASE("a second initial state is refused at definition") {
  parley::agent a("bot");
  a.new_state("first", true);
  auto msg = message_of([&] { a.new_state("second", true); });
  CHECK(msg.find("'first' already is") != std::string::npos);
}

TEST_CASE("duplicate state and intent names are refused") {
  parley::agent a("bot");
  a.new_state("s", true);
  CHECK(message_of([&] { a.new_state("s"); }).find("already has a state named 's'") !=
        std::string::npos);
  a.new_intent("hi", {"hello"});
  CHECK(message_of([&] { a.new_intent("hi", {"hey"}); }).find("intent named 'hi'") !=
        std::string::npos);
  CHECK(message_of([&] { a.new_intent("empty", {" "}); }).find("no training sentence") !=
        std::string::npos);
}

TEST_CASE("two auto transitions in one state are refused, naming the state") {
  parley::agent a("bot");
  auto& s = a.new_state("start", true);
  auto& x = a.new_state("x");
  auto& y = a.new_state("y");
  s.go_to(x);
  auto msg = message_of([&] { s.go_to(y); });
  CHECK(msg.find("state 'start' already has an auto transition") != std::string::npos);
  CHECK(msg.find("give one of them a condition") != std::string::npos);
  // A conditioned eventless transition next to the auto one is fine.
  CHECK_NOTHROW(s.when_condition([](parley::session&) { return true; }).go_to(y));
}

TEST_CASE("a transition to another agent's state is refused") {
  parley::agent a("alice");
  parley::agent b("bob");
  auto& s = a.new_state("s", true);
  auto& t = b.new_state("t", true);
  auto msg = message_of([&] { s.when_event("go").go_to(t); });
  CHECK(msg.find("cannot go to state 't' of agent 'bob'") != std::string::npos);
  auto& i = b.new_intent("hi", {"hi"});
  CHECK(message_of([&] { (void)s.when_intent_matched(i); }).find("belongs to agent 'bob'") !=
        std::string::npos);
}

TEST_CASE("the same intent twice in one state is refused") {
  parley::agent a("bot");
  auto& s = a.new_state("s", true);
  auto& i = a.new_intent("hi", {"hi"});
  s.when_intent_matched(i).go_to(s);
  CHECK(message_of([&] { (void)s.when_intent_matched(i); }).find("already has a transition for intent") !=
        std::string::npos);
}

TEST_CASE("after() needs a positive duration") {
  parley::agent a("bot");
  auto& s = a.new_state("s", true);
  CHECK_THROWS_AS(s.after(std::chrono::milliseconds(0)), definition_error);
}

TEST_CASE("agent.diagram draws every state and transition with its kind, as DOT and Mermaid") {
  using namespace std::chrono_literals;
  parley::agent a("shop \"bot\"");
  auto& hello = a.new_intent("hello", {"hi", "hello"});
  auto& start = a.new_state("start", true);
  auto& menu = a.new_state("menu: main");
  auto& paid = a.new_state("paid");
  auto& idle = a.new_state("idle");
  start.when_intent_matched(hello).go_to(menu);
  menu.when_event("order_paid").when_condition([](parley::session&) { return true; }, "vip").go_to(paid);
  menu.when_condition([](parley::session&) { return false; }, "cart empty").go_to(idle);
  menu.when_file_received({"image/"}).go_to(paid);
  menu.after(30s).go_to(idle);
  paid.go_to(start);

  const auto dot = a.diagram(parley::diagram_format::dot);
  auto has = [](const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
  };
  CHECK(has(dot, "digraph \"shop \\\"bot\\\"\" {"));  // quotes escaped
  CHECK(has(dot, "\"__start\" -> \"start\";"));
  CHECK(has(dot, "\"start\" -> \"menu: main\" [label=\"intent hello\", style=solid, class=\"intent\"]"));
  CHECK(has(dot, "\"menu: main\" -> \"paid\" [label=\"event order_paid [vip]\", style=solid, class=\"event\"]"));
  CHECK(has(dot, "\"menu: main\" -> \"idle\" [label=\"[cart empty]\", style=dashed, class=\"condition\"]"));
  CHECK(has(dot, "\"menu: main\" -> \"paid\" [label=\"file image/\", style=solid, class=\"file\"]"));
  CHECK(has(dot, "\"menu: main\" -> \"idle\" [label=\"after 30000ms\", style=dotted, class=\"timeout\"]"));
  CHECK(has(dot, "\"paid\" -> \"start\" [label=\"auto\", style=bold, class=\"auto\"]"));

  const auto mermaid = a.diagram(parley::diagram_format::mermaid);
  CHECK(mermaid.rfind("stateDiagram-v2\n", 0) == 0);
  CHECK(has(mermaid, "state \"menu#58; main\" as s1"));  // ':' would end the label
  CHECK(has(mermaid, "[*] --> s0"));
  CHECK(has(mermaid, "s1 --> s2 : event order_paid [vip]"));
  CHECK(has(mermaid, "s1 --> s3 : after 30000ms"));
  CHECK(has(mermaid, "s2 --> s0 : auto"));

  const auto def = a.definition();
  CHECK(def["states"].size() == 4);
  CHECK(def["intents"][0]["name"] == "hello");
  CHECK_THROWS_AS(parley::render_diagram(parley::json::object(), parley::diagram_format::dot),
                  std::invalid_argument);
}
