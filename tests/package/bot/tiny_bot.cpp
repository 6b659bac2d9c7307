// The smallest useful bot: it echoes what you say, and answers a greeting.
#include <parley/parley.hpp>

int main(int argc, char** argv) {
  parley::agent agent("tiny");
  auto& hi = agent.new_intent("hi", {"hi", "hello"});
  auto& start = agent.new_state("start", /*initial=*/true);
  auto& greeted = agent.new_state("greeted");
  start.when_intent_matched(hi).go_to(greeted);
  greeted.set_body([](parley::session& s) { s.reply("Hello from an installed Parley!"); });
  greeted.go_to(start);
  agent.set_global_fallback_body([](parley::session& s) { s.reply("echo: " + s.event().text()); });
  return parley::run(agent, argc, argv);
}
