// The greetings bot's idle timeout: in the waiting state, silence makes it say it is still
// there (the console smoke test covers the conversation itself).
#include <doctest/doctest.h>

#include "../runtime/harness.hpp"
#include "greetings_bot.hpp"

TEST_CASE("greetings: the waiting state says it is still there after the idle timeout") {
  test::harness h("greetings");
  h.agent.config().set("greetings.idle_seconds", 0.05);  // read by define(), like --set does
  greetings::define(h.agent);
  h.agent.start();
  auto s = h.session("idle");
  REQUIRE(h.replies.wait_count("idle", 1));
  s->post(parley::event::text("hello"));
  REQUIRE(h.replies.wait_count("idle", 4));
  CHECK(h.replies.of("idle")[3] == "I'm still here. How are you?");
  CHECK(h.state_of(s) == "still_here");
  s->post(parley::event::text("great"));
  REQUIRE(h.replies.wait_count("idle", 5));
  CHECK(h.replies.of("idle")[4] == "I'm glad to hear that!");
}
