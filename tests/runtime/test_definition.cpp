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
