#pragma once
// The greetings bot: greets, asks how you are after a hello, answers good or bad, falls back
// on anything else, and says it is still there when you go quiet. Shared by the example
// program and the tests, so both run the same bot.
#include <chrono>

#include <parley/agent.hpp>

namespace greetings {

inline void define(parley::agent& agent) {
  using parley::session;
  agent.config().declare("greetings.idle_seconds", parley::config_type::number, 30.0,
                         "how long the bot waits for an answer before saying it is still there");

  auto& hello = agent.new_intent("hello", {"hello", "hi", "hey", "hi there", "hello there",
                                           "good morning", "good evening", "greetings"});
  auto& good = agent.new_intent("good", {"good", "fine", "great", "very well", "i am good",
                                         "i'm fine", "i feel great", "not bad"});
  auto& bad = agent.new_intent("bad", {"bad", "not good", "terrible", "awful", "i am sad",
                                       "not well", "i feel bad", "so so"});

  auto& initial = agent.new_state("initial", /*initial=*/true);
  auto& ready = agent.new_state("ready");
  auto& ask = agent.new_state("ask");
  auto& still_here = agent.new_state("still_here");
  auto& glad = agent.new_state("glad");
  auto& sorry = agent.new_state("sorry");

  initial.set_body([](session& s) { s.reply("Hi! I'm the greetings bot. Say hello when you're ready."); });
  initial.when_intent_matched(hello).go_to(ask);
  ready.when_intent_matched(hello).go_to(ask);

  ask.set_body([](session& s) {
    s.reply("Hello! How are you?");
    s.reply_options({"Good", "Bad"});
  });
  ask.when_intent_matched(good).go_to(glad);
  ask.when_intent_matched(bad).go_to(sorry);
  const auto idle = std::chrono::duration_cast<parley::clock::duration>(
      std::chrono::duration<double>(agent.config().get_double("greetings.idle_seconds")));
  ask.after(idle).go_to(still_here);

  still_here.set_body([](session& s) { s.reply("I'm still here. How are you?"); });
  still_here.when_intent_matched(good).go_to(glad);
  still_here.when_intent_matched(bad).go_to(sorry);

  glad.set_body([](session& s) { s.reply("I'm glad to hear that!"); });
  glad.go_to(ready);
  sorry.set_body([](session& s) { s.reply("I'm sorry to hear that. Say hello to start again."); });
  sorry.go_to(ready);

  agent.set_global_fallback_body([](session& s) {
    s.reply("Sorry, I didn't get that. Say hello, or tell me how you are.");
  });
}

}  // namespace greetings
