// Session management on stored sessions, on both backends (BACKEND_CASE): list (paged, newest
// first), fork, export and import; and last activity (SQLite). Reset runs on both backends in
// behaviour_test.cpp.
#include <doctest/doctest.h>

#include <future>
#include <thread>

#include <parley/db/timestamp.hpp>

#include "backend.hpp"
#include "greetings_bot.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

BACKEND_CASE("list a user's sessions, paged, most recently active first, with their state") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), greetings::define);
  for (int i = 0; i < 5; ++i) {
    const auto id = "a" + std::to_string(i);
    h.session(id, "alice");
    REQUIRE(h.got.wait(id, 1));
  }
  h.session("b0", "bob");
  REQUIRE(h.got.wait("b0", 1));
  // a1 becomes the most recently active; a3 moves to "ask". Timestamps have milliseconds:
  // the pauses put the activities in distinct ones.
  std::this_thread::sleep_for(5ms);
  h.say("a3", "hello");
  REQUIRE(h.got.wait("a3", 3));
  std::this_thread::sleep_for(5ms);  // a later millisecond for the next activity (ordering)
  h.say("a1", "nonsense");
  REQUIRE(h.got.wait("a1", 2));

  auto page1 = h.agent.list_sessions("alice", 2, 0);
  REQUIRE(page1.size() == 2);
  CHECK(page1[0].session_id == "a1");
  CHECK(page1[1].session_id == "a3");
  CHECK(page1[1].state == "ask");
  CHECK(page1[0].state == "initial");
  CHECK(page1[0].last_activity >= page1[1].last_activity);
  auto page2 = h.agent.list_sessions("alice", 2, 2);
  REQUIRE(page2.size() == 2);
  auto page3 = h.agent.list_sessions("alice", 2, 4);
  REQUIRE(page3.size() == 1);
  CHECK(h.agent.list_sessions("bob").size() == 1);
  CHECK(h.agent.list_sessions().size() == 6);
  CHECK(h.agent.list_sessions("nobody").empty());
}

BACKEND_CASE("fork copies state, dictionary and history, and leaves the original untouched") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), [](parley::agent& a) {
    greetings::define(a);
  });
  auto s = h.session("orig");
  h.say("orig", "hello");
  REQUIRE(h.got.wait("orig", 3));
  test::on_strand(*s, [&] { s->set("mood", "curious"); });

  auto fork = h.agent.fork_session("orig", "copy");
  REQUIRE(fork);
  std::string state;
  parley::json mood;
  std::size_t history = 0;
  test::on_strand(*fork, [&] {
    state = fork->current_state().name();
    mood = fork->get("mood");
    history = fork->get_chat_history().size();
  });
  CHECK(state == "ask");
  CHECK(mood == "curious");
  CHECK(history == 4);
  CHECK(h.got.of("copy").empty());  // resumed, not greeted again

  h.say("copy", "good");
  REQUIRE(h.got.wait("copy", 1));
  CHECK(h.got.of("copy")[0] == "I'm glad to hear that!");
  std::string orig_state;
  std::size_t orig_history = 0;
  test::on_strand(*s, [&] {
    orig_state = s->current_state().name();
    orig_history = s->get_chat_history().size();
  });
  CHECK(orig_state == "ask");
  CHECK(orig_history == 4);

  CHECK_THROWS_AS(h.agent.fork_session("orig", "copy"), parley::db_error);
  CHECK_THROWS_AS(h.agent.fork_session("ghost", "copy2"), parley::db_error);
}

BACKEND_CASE("export a session to JSON and import it back") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), greetings::define);
  auto s = h.session("x1", "carol");
  h.say("x1", "hello");
  h.say("x1", "bad");
  REQUIRE(h.got.wait("x1", 4));
  test::on_strand(*s, [&] {
    s->set("k", parley::json{{"a", 1}});
    s->save_reasoning_event("reasoning_step", {{"kind", "note"}, {"summary", "s"}});
    s->reply("closing");
  });
  const auto doc = h.agent.export_session("x1");
  CHECK(doc["format"] == "parley-session");
  CHECK(doc["session"]["username"] == "carol");
  CHECK(doc["session"]["current_state"] == "ready");
  CHECK(doc["session"]["variables"] == parley::json{{"k", {{"a", 1}}}});
  CHECK(doc["chat"].size() == 7);
  CHECK(doc["transitions"].size() == 3);
  CHECK(doc["intent_predictions"].size() == 2);
  REQUIRE(doc["reasoning_steps"].size() == 1);

  CHECK(h.agent.import_session(doc, "x2") == "x2");
  auto back = h.agent.export_session("x2");
  for (const char* key : {"chat", "transitions", "intent_predictions", "events", "reasoning_steps"}) {
    REQUIRE(back[key].size() == doc[key].size());
    for (std::size_t i = 0; i < doc[key].size(); ++i) {
      auto a = doc[key][i], b = back[key][i];
      a.erase("id");
      b.erase("id");
      if (a.contains("chat_id")) {
        // The link points at the copy's own chat row, the one at the same position.
        auto pos = [&](const parley::json& d, const parley::json& id) {
          for (std::size_t j = 0; j < d["chat"].size(); ++j)
            if (d["chat"][j]["id"] == id) return j;
          return std::size_t(-1);
        };
        CHECK(pos(doc, doc[key][i]["chat_id"]) == pos(back, back[key][i]["chat_id"]));
        a.erase("chat_id");
        b.erase("chat_id");
      }
      CHECK(a == b);
    }
  }
  CHECK(back["session"]["variables"] == doc["session"]["variables"]);
  CHECK(back["session"]["current_state"] == "ready");

  CHECK_THROWS_AS(h.agent.import_session(doc, "x1"), parley::db_error);  // taken
  CHECK_THROWS_AS(h.agent.import_session(parley::json{{"hello", 1}}, "x3"), parley::db_error);
  CHECK(h.agent.list_sessions().size() == 2);
}

#if !PARLEY_TEST_PG
TEST_CASE("a session's last activity is exact for readers and after a stop, though written lazily") {
  // The writer rewrites session.last_activity (indexed twice) at most once a second while a
  // session talks; flush() and a clean stop make it exact.
  test::temp_dir dir;
  const auto path = dir.file("a.db");
  const char* newest_chat =
      "SELECT max(t) FROM (SELECT c.timestamp AS t FROM chat c JOIN session s ON s.id = "
      "c.session_id WHERE s.session_id = 'x' UNION ALL SELECT r.timestamp FROM transition r "
      "JOIN session s ON s.id = r.session_id WHERE s.session_id = 'x')";
  const char* stored = "SELECT last_activity FROM session WHERE session_id = 'x'";
  {
    test::harness h(path, greetings::define);
    h.session("x");
    REQUIRE(h.got.wait("x", 1));
    int expect = 1;
    for (int i = 0; i < 5; ++i) {  // ends on "hello": in "ask", with nothing left to run
      std::this_thread::sleep_for(2ms);  // distinct milliseconds
      h.say("x", i % 2 == 0 ? "hello" : "good");
      expect += i % 2 == 0 ? 2 : 1;
      REQUIRE(h.got.wait("x", expect));
    }
    const auto listed = h.agent.list_sessions("alice");  // flushes first
    REQUIRE(listed.size() == 1);
    CHECK(parley::db::format_timestamp(listed[0].last_activity) ==
          test::query_text(path, newest_chat));
    CHECK(listed[0].state == "ask");
    h.say("x", "good");  // a reply, then the automatic move to "ready", which stop() waits for
    REQUIRE(h.got.wait("x", expect + 1));
    h.stop();
  }
  CHECK(test::query_text(path, stored) == test::query_text(path, newest_chat));
  CHECK(test::query_text(path, "SELECT current_state FROM session WHERE session_id = 'x'") ==
        "ready");
}
#endif
