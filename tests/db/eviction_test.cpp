// Eviction with persistence: an idle persisted session leaves memory (agent.session_idle_ttl),
// its durable timer brings it back when due, and its next message resumes it in its state
// with its dictionary. On either backend (backend.hpp).
#include <doctest/doctest.h>

#include "backend.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

BACKEND_CASE("an evicted persisted session is brought back by its timer and resumes on a message") {
  test::backend db;
  if (db.skipped()) return;
  // start --"wait"--> waiting (schedules "ping" in 1.2 s) --ping--> pinged --text--> again
  test::harness h(db.handler(), [](parley::agent& a) {
    a.config().set("agent.session_idle_ttl", 0.2);
    auto& start = a.new_state("start", true);
    auto& waiting = a.new_state("waiting");
    auto& pinged = a.new_state("pinged");
    auto& again = a.new_state("again");
    start.set_body([](session& s) { s.reply("welcome"); });
    start.when_event(parley::event_kind::text).go_to(waiting);
    waiting.set_body([](session& s) {
      s.set("x", 42);
      s.schedule(1200ms, parley::event::custom("ping"));
      s.reply("waiting");
    });
    waiting.when_event(std::string("ping")).go_to(pinged);
    pinged.set_body([](session& s) { s.reply("pinged x=" + s.get("x").dump()); });
    pinged.when_event(parley::event_kind::text).go_to(again);
    again.set_body([](session& s) { s.reply("again x=" + s.get("x").dump() + " " + s.event().text()); });
  }, /*persist=*/true);

  h.session("p");
  h.say("p", "wait");
  REQUIRE(h.got.wait("p", 2));
  // Idle with a timer due beyond the TTL: evicted before the timer fires.
  REQUIRE(test::eventually([&] { return !h.agent.find_session("p"); }, 5s));
  CHECK(h.got.of("p").size() == 2);
  // Its timer brings it back, in its state, with its dictionary.
  REQUIRE(h.got.wait("p", 3, 10s));
  CHECK(h.got.of("p")[2] == "pinged x=42");
  // Evicted again (nothing due); a message resumes it where it was.
  REQUIRE(test::eventually([&] { return !h.agent.find_session("p"); }, 5s));
  h.say("p", "hello");
  REQUIRE(h.got.wait("p", 4));
  CHECK(h.got.of("p")[3] == "again x=42 hello");
  CHECK(h.got.of("p") ==
        std::vector<std::string>{"welcome", "waiting", "pinged x=42", "again x=42 hello"});
}
