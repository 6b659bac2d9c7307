// Must compile with -Werror=unused-result: the control for compile/unfinished_transition.cpp.
#include <parley/agent.hpp>

void define(parley::agent& agent) {
  auto& hi = agent.new_intent("hi", {"hi", "hello"});
  auto& start = agent.new_state("start", true);
  auto& next = agent.new_state("next");
  start.when_intent_matched(hi).go_to(next);
  start.when_condition([](parley::session&) { return true; }).go_to(next);
  next.go_to(start);
}
