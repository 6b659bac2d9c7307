// Persistence: a session that comes back after a restart resumes in its state with its
// dictionary, without its body re-run, and its timers fire at their original due time. On
// either backend: built into parley_db_tests (SQLite) and parley_pg_tests (PostgreSQL).
#include <doctest/doctest.h>

#include <thread>

#include "backend.hpp"
#include "greetings_bot.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

namespace {
using steady = std::chrono::steady_clock;

struct timeline {
  std::mutex m;
  std::map<std::string, steady::time_point> at;
  void mark(const std::string& what) {
    std::lock_guard l(m);
    at.emplace(what, steady::now());
  }
  std::optional<steady::time_point> get(const std::string& what) {
    std::lock_guard l(m);
    auto it = at.find(what);
    return it == at.end() ? std::nullopt : std::optional(it->second);
  }
};

// start --"wait"--> waiting --after(600ms)--> done; waiting also schedules "ping" in 1500 ms.
void define(parley::agent& a, timeline& tl) {
  auto& start = a.new_state("start", true);
  auto& waiting = a.new_state("waiting");
  auto& done = a.new_state("done");
  start.set_body([](session& s) { s.reply("welcome"); });
  start.when_event(parley::event_kind::text)
      .when_condition([](session& s) { return s.event().text() == "wait"; })
      .go_to(waiting);
  waiting.set_body([&tl](session& s) {
    tl.mark("entered");
    s.set("x", 42);
    s.set("who", "alice");
    s.schedule(1500ms, parley::event::custom("ping"));
    s.reply("waiting");
  });
  waiting.after(600ms).go_to(done);
  done.set_body([&tl](session& s) {
    tl.mark("done");
    s.reply("done x=" + s.get("x").dump());
  });
  done.when_event(std::string("ping")).go_to(done);
  done.set_fallback_body([](session& s) { s.reply("fallback"); });
}
}  // namespace

BACKEND_CASE("a persisted session resumes in its state, with its dictionary and its timers") {
  test::backend db;
  if (db.skipped()) return;
  timeline tl;
  steady::time_point entered;
  {
    test::harness h(db.handler(), [&](parley::agent& a) { define(a, tl); }, /*persist=*/true);
    h.session("p1");
    REQUIRE(h.got.wait("p1", 1));
    h.say("p1", "wait");
    REQUIRE(h.got.wait("p1", 2));
    entered = *tl.get("entered");
    auto snap = h.agent.db()->load_session("testbot", "p1");
    REQUIRE(snap);
    CHECK(snap->state == "waiting");
    CHECK(snap->variables == parley::json{{"x", 42}, {"who", "alice"}});
    CHECK(snap->timers.size() == 2);
  }  // a clean stop, 600 ms before the timeout is due

  // The agent is down past the after(600ms) due time (overdue on restart) but not past the
  // scheduled ping (due 1500 ms after entry).
  std::this_thread::sleep_until(entered + 800ms);

  timeline tl2;
  test::harness h(db.handler(), [&](parley::agent& a) { define(a, tl2); }, /*persist=*/true);
  const auto restarted = steady::now();
  h.session("p1");
  // The overdue timeout fires at once; the body of "waiting" is not run again.
  REQUIRE(h.got.wait("p1", 1, 5s));
  CHECK(h.got.of("p1")[0] == "done x=42");
  CHECK_FALSE(tl2.get("entered").has_value());
  CHECK(*tl2.get("done") - restarted < 500ms);
  // The ping fires at its original due time (entry + 1500 ms), not restart + 1500 ms.
  REQUIRE(h.got.wait("p1", 2, 5s));
  CHECK(h.got.of("p1")[1] == "done x=42");
  const auto second_done = steady::now();
  CHECK(second_done - entered >= 1400ms);
  CHECK(second_done - entered < 2100ms);
  auto snap = h.agent.db()->load_session("testbot", "p1");
  REQUIRE(snap);
  CHECK(snap->state == "done");
  CHECK(snap->timers.empty());
}

BACKEND_CASE("without persist_sessions a known id starts afresh, and its history stays") {
  test::backend db;
  if (db.skipped()) return;
  {
    test::harness h(db.handler(), greetings::define);
    h.session("n1");
    h.say("n1", "hello");
    REQUIRE(h.got.wait("n1", 3));
  }
  test::harness h(db.handler(), greetings::define);
  h.session("n1");
  REQUIRE(h.got.wait("n1", 1));
  CHECK(h.got.of("n1")[0] == "Hi! I'm the greetings bot. Say hello when you're ready.");
  auto snap = h.agent.db()->load_session("testbot", "n1");
  REQUIRE(snap);
  CHECK(snap->state == "initial");
  CHECK(test::eventually([&] {
    return db.count("SELECT count(*) FROM chat c JOIN session s ON s.id = c.session_id "
                    "WHERE s.session_id = 'n1'") == 5;
  }));
}

BACKEND_CASE("restoring many persisted sessions") {
  test::backend db;
  if (db.skipped()) return;
  constexpr int n = 2000;
  {
    test::harness h(db.handler(), greetings::define, true);
    for (int i = 0; i < n; ++i) h.session("m" + std::to_string(i));
    for (int i = 0; i < n; ++i) h.say("m" + std::to_string(i), "hello");
    for (int i = 0; i < n; ++i) REQUIRE(h.got.wait("m" + std::to_string(i), 3));
  }
  test::harness h(db.handler(), greetings::define, true);
  for (int i = 0; i < n; ++i) h.session("m" + std::to_string(i));
  for (int i = 0; i < n; ++i) h.say("m" + std::to_string(i), "good");
  for (int i = 0; i < n; ++i) {
    REQUIRE(h.got.wait("m" + std::to_string(i), 1));
    CHECK(h.got.of("m" + std::to_string(i))[0] == "I'm glad to hear that!");
  }
}

BACKEND_CASE("a session closed before a restart starts a new conversation when its id comes back") {
  test::backend db;
  if (db.skipped()) return;
  timeline tl;
  {
    test::harness h(db.handler(), [&](parley::agent& a) { define(a, tl); }, /*persist=*/true);
    auto s = h.session("c1");
    REQUIRE(h.got.wait("c1", 1));
    h.say("c1", "wait");
    REQUIRE(h.got.wait("c1", 2));
    h.agent.close_session("c1", "user said goodbye");
    REQUIRE(test::eventually([&] {
      auto snap = h.agent.db()->load_session("testbot", "c1");
      return snap && snap->closed_reason == "user said goodbye";
    }));
  }
  timeline tl2;
  test::harness h(db.handler(), [&](parley::agent& a) { define(a, tl2); }, /*persist=*/true);
  h.session("c1");
  REQUIRE(h.got.wait("c1", 1));
  CHECK(h.got.of("c1")[0] == "welcome");  // the initial body ran again
  auto snap = h.agent.db()->load_session("testbot", "c1");
  REQUIRE(snap);
  CHECK(snap->closed_reason.empty());
  CHECK(snap->state == "start");
}

BACKEND_CASE("the greetings bot resumes a persisted session after its process restarts") {
  test::backend db;
  if (db.skipped()) return;
  const std::vector<std::string> args = {PARLEY_GREETINGS_BIN, "--console", "--db", db.where(),
                                         "--set", "agent.persist_sessions=true", "--log-level", "warn"};
  auto first = test::run(args, "hello\n");
  REQUIRE(first.code == 0);
  CHECK(first.out.find("Hello! How are you?") != std::string::npos);
  // Back in state "ask": "good" is understood, and the greeting body does not run again.
  auto second = test::run(args, "good\n");
  REQUIRE(second.code == 0);
  CHECK(second.out == "I'm glad to hear that!\n");
  CHECK(db.text("SELECT current_state FROM session WHERE session_id = 'console'") == "ready");
}
