// Must NOT compile with -Werror=unused-result: a transition left without .go_to(...) defines
// nothing, and the builder says so at compile time. (compile/finished_transition.cpp is the
// same bot, finished, and must compile: the failure here is the unfinished line, nothing else.)
#include <parley/agent.hpp>

void define(parley::agent& agent) {
  auto& hi = agent.new_intent("hi", {"hi", "hello"});
  auto& start = agent.new_state("start", true);
  auto& next = agent.new_state("next");
  start.when_intent_matched(hi);  // unfinished: no go_to
  next.go_to(start);
}
