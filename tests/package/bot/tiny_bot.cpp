// A pizza bot in 30 lines, built against an installed Parley (this file is the README's).
#include <parley/parley.hpp>
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  parley::agent agent("pizza");
  auto& hi = agent.new_intent("hi", {"hi", "hello", "hey there"});
  auto& order = agent.new_intent("order", {"i want a pizza", "order a pizza", "pizza please"});

  auto& start = agent.new_state("start", /*initial=*/true);
  auto& menu = agent.new_state("menu");
  auto& done = agent.new_state("done");

  start.set_body([](parley::session& s) { s.reply("Welcome to Parley Pizza! Say hi."); });
  start.when_intent_matched(hi).go_to(menu);
  start.when_intent_matched(order).go_to(menu);

  menu.set_body([](parley::session& s) {
    s.reply("Which one?");
    s.reply_options({"Margherita", "Diavola"});
  });
  menu.when_event(parley::event_kind::text).go_to(done);  // any answer is a choice
  menu.after(5min).go_to(start);                          // nobody there: start over

  done.set_body([](parley::session& s) {
    s.set("pizza", s.event().text());
    s.reply("One " + s.event().text() + " coming up!");
  });
  done.go_to(start);

  agent.set_global_fallback_body([](parley::session& s) { s.reply("Say hi to order a pizza."); });
  return parley::run(agent, argc, argv);
}
