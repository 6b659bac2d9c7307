// Recorded behaviour on either backend (backend.hpp): this file is built into parley_db_tests
// (SQLite) and parley_pg_tests (PostgreSQL), and every case asserts the same rows, read back
// through the inspectors' reader. Sessions, chat, transitions, predictions, events, reasoning
// links, the dictionary, deletes with everything under them.
#include <doctest/doctest.h>

#include <future>
#include <regex>

#include <parley/db/timestamp.hpp>

#include "backend.hpp"
#include "greetings_bot.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

BACKEND_CASE("a greetings conversation is recorded: chat, transitions, predictions, state") {
  test::backend db;
  if (db.skipped()) return;
  {
    test::harness h(db.handler(), greetings::define);
    auto s = h.session("s1", "alice");
    REQUIRE(h.got.wait("s1", 1));
    h.say("s1", "hello");
    REQUIRE(h.got.wait("s1", 3));
    h.say("s1", "good");
    REQUIRE(h.got.wait("s1", 4));
    h.say("s1", "what?");
    REQUIRE(h.got.wait("s1", 5));

    // The session reads its own writes, in order, right away.
    std::vector<parley::chat_message> hist;
    test::on_strand(*s, [&] { hist = s->get_chat_history(); });
    REQUIRE(hist.size() == 8);
    CHECK(hist[0].content == "Hi! I'm the greetings bot. Say hello when you're ready.");
    CHECK(hist[1].content == "hello");
    CHECK(hist[1].is_user);
    CHECK(hist[3].type == "options");
    CHECK(hist[3].content == R"(["Good","Bad"])");
    CHECK(hist[7].content == "Sorry, I didn't get that. Say hello, or tell me how you are.");
    std::vector<parley::chat_message> last2;
    test::on_strand(*s, [&] { last2 = s->get_chat_history(2); });
    REQUIRE(last2.size() == 2);
    CHECK(last2[0].content == "what?");
    std::vector<parley::chat_message> none;
    test::on_strand(*s, [&] {
      none = s->get_chat_history(std::nullopt, parley::wall_clock::now() - std::chrono::hours(1));
    });
    CHECK(none.empty());
  }
  CHECK(db.text("SELECT current_state FROM session WHERE session_id = 's1'") == "ready");
  CHECK(db.text("SELECT username FROM session WHERE session_id = 's1'") == "alice");
  CHECK(db.count("SELECT count(*) FROM transition") == 3);
  CHECK(db.text("SELECT condition FROM transition ORDER BY id LIMIT 1") == "intent hello");
  CHECK(db.text("SELECT dest_state FROM transition ORDER BY id DESC LIMIT 1") == "ready");
  CHECK(db.count("SELECT count(*) FROM intent_prediction") == 3);
  CHECK(db.text("SELECT intent FROM intent_prediction ORDER BY id LIMIT 1") == "hello");
  CHECK(db.count("SELECT count(*) FROM intent_prediction WHERE intent IS NULL") == 1);
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  CHECK(std::regex_match(db.text("SELECT timestamp FROM chat LIMIT 1"), iso));
  CHECK(std::regex_match(db.text("SELECT timestamp FROM transition LIMIT 1"), iso));
  // One counter: chat ids and transition ids interleave in the order they were written.
  CHECK(db.count("SELECT max(id) FROM chat WHERE is_user = 1 AND content = 'hello'") <
        db.count("SELECT min(id) FROM transition"));
  CHECK(db.count("SELECT count(*) FROM agent_definition WHERE agent_name = 'testbot'") == 1);
  CHECK(db.count("SELECT count(*) FROM session WHERE username = 'alice' AND "
                 "last_activity >= timestamp AND current_state IS NOT NULL") == 1);
  if (!db.postgres()) CHECK(db.text("PRAGMA integrity_check") == "ok");
}

BACKEND_CASE("unhandled events, errors and dictionary changes are recorded without bot code") {
  test::backend db;
  if (db.skipped()) return;
  {
    test::harness h(db.handler(), [](parley::agent& a) {
      auto& start = a.new_state("start", true);
      auto& boom = a.new_state("boom");
      start.set_body([](session& s) { s.set("n", 1); s.reply("ready"); });
      start.when_event(parley::event_kind::text)
          .when_condition([](session& s) { return s.event().text() == "boom"; })
          .go_to(boom);
      boom.set_body([](session&) { throw std::runtime_error("kaput"); });
    });
    h.session("e1");
    REQUIRE(h.got.wait("e1", 1));
    REQUIRE(h.agent.receive_event("e1", parley::event::custom("nobody_listens")));
    h.say("e1", "boom");
    REQUIRE(h.got.wait("e1", 2));  // the error reply
  }
  CHECK(db.count("SELECT count(*) FROM event WHERE event = 'unhandled'") == 1);
  CHECK(db.count("SELECT count(*) FROM event WHERE event = 'error' AND info LIKE '%kaput%'") == 1);
  CHECK(db.text("SELECT variables FROM session") == R"({"n":1})");
}

BACKEND_CASE("reasoning events link to the reply that closes their turn, in write order") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), [](parley::agent& a) {
    auto& st = a.new_state("think", true);
    st.set_body([](session&) {});
    st.set_fallback_body([](session& s) {
      s.save_reasoning_event("reasoning_step", {{"kind", "plan"}, {"step", 1}, {"summary", "plan it"}});
      s.reply_reasoning_step({{"kind", "plan"}, {"step", 1}, {"summary", "plan it"}});
      s.save_reasoning_event("task_list_update", {{"tasks", parley::json::array()}});
      s.reply("working on " + s.event().text());
      s.save_reasoning_event("reasoning_step", {{"kind", "answer"}, {"step", 2}, {"summary", "done"}});
      s.reply("answer to " + s.event().text());
    });
  });
  auto s = h.session("r1");
  h.say("r1", "one");
  REQUIRE(h.got.wait("r1", 3));
  h.say("r1", "two");
  REQUIRE(h.got.wait("r1", 6));
  std::vector<parley::reasoning_event> ev;
  std::vector<parley::chat_message> chat;
  test::on_strand(*s, [&] {
    ev = s->get_reasoning_events();
    chat = s->get_chat_history();
  });
  REQUIRE(ev.size() == 6);
  REQUIRE(chat.size() == 8);
  auto id_of = [&](const std::string& content) {
    for (const auto& m : chat)
      if (m.content == content) return m.id;
    return std::int64_t{-1};
  };
  for (int i = 0; i < 3; ++i) {
    REQUIRE(ev[i].chat_id.has_value());
    CHECK(*ev[i].chat_id == id_of("answer to one"));
    REQUIRE(ev[3 + i].chat_id.has_value());
    CHECK(*ev[3 + i].chat_id == id_of("answer to two"));
  }
  CHECK(ev[0].kind == "reasoning_step");
  CHECK(ev[0].step_kind == "plan");
  CHECK(ev[0].step == "1");
  CHECK(ev[0].summary == "plan it");
  CHECK(ev[1].kind == "task_list_update");
  CHECK(ev[0].id < ev[1].id);
}

BACKEND_CASE("deleting a session removes all its rows, after its earlier writes") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), greetings::define);
  h.session("keep");
  auto gone = h.session("gone");
  h.say("gone", "hello");
  h.say("gone", "good");
  REQUIRE(h.got.wait("gone", 4));
  REQUIRE(h.got.wait("keep", 1));
  // Rows of every kind, parameters and reasoning included.
  parley::intent_prediction p;
  p.parameters = {{"n", "1", nullptr}};
  test::on_strand(*gone, [&] {
    h.agent.db()->save_prediction(*gone, "with a parameter", p);
    h.agent.db()->save_reasoning_event(*gone, "step", {{"summary", "s"}});
    h.agent.db()->save_timer(*gone, {"t", parley::wall_clock::now() + 1h, {{"name", "later"}}});
    h.agent.db()->save_event(gone.get(), "custom", "info");
  });
  // The handler's interface has no flush: wait for the rows to be committed.
  for (const char* t : {"parameter", "reasoning_step", "timer", "event"})
    REQUIRE(test::eventually([&] { return db.count(std::string("SELECT count(*) FROM ") + t) >= 1; }));
  std::promise<void> done;
  h.agent.delete_session("gone", [&] { done.set_value(); });
  REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);
  REQUIRE(test::eventually([&] { return db.count("SELECT count(*) FROM session WHERE session_id = 'gone'") == 0; }));
  for (const char* t : {"chat", "transition", "intent_prediction", "event", "timer", "reasoning_step"})
    CHECK(db.count(std::string("SELECT count(*) FROM ") + t +
                                      " WHERE session_id NOT IN (SELECT id FROM session)") == 0);
  CHECK(db.count("SELECT count(*) FROM parameter") == 0);
  CHECK(db.count("SELECT count(*) FROM chat") == 1);  // keep's greeting
  CHECK_FALSE(h.agent.db()->load_session("testbot", "gone").has_value());
}

// Reset (agent::reset_session) deletes through the handler on either backend.
BACKEND_CASE("reset deletes the session's rows and starts it afresh") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), greetings::define);
  h.session("r1");
  h.say("r1", "hello");
  REQUIRE(h.got.wait("r1", 3));
  std::promise<std::shared_ptr<parley::session>> fresh;
  h.agent.reset_session("r1", [&](std::shared_ptr<parley::session> s) { fresh.set_value(s); });
  auto f = fresh.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  auto s = f.get();
  REQUIRE(s);
  REQUIRE(h.got.wait("r1", 4));  // greeted again
  std::vector<parley::chat_message> hist;
  test::on_strand(*s, [&] { hist = s->get_chat_history(); });
  REQUIRE(hist.size() == 1);
  CHECK(hist[0].content == "Hi! I'm the greetings bot. Say hello when you're ready.");
  // The handler's interface has no flush: wait for the commit.
  CHECK(test::eventually([&] { return db.count("SELECT count(*) FROM chat") == 1; }));
  CHECK(db.count("SELECT count(*) FROM transition") == 0);
  CHECK(db.count("SELECT count(*) FROM intent_prediction") == 0);
}

BACKEND_CASE("a message right after a reset belongs to the fresh conversation and keeps its rows") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), greetings::define);
  auto s = h.session("rr");
  h.say("rr", "hello");
  REQUIRE(h.got.wait("rr", 3));
  // No gap: the reset and the next message are queued back to back on the same session.
  h.agent.reset_session("rr");
  h.say("rr", "hello");
  REQUIRE(h.got.wait("rr", 6));
  auto got = h.got.of("rr");
  CHECK(got[3] == "Hi! I'm the greetings bot. Say hello when you're ready.");
  CHECK(got[4] == "Hello! How are you?");
  CHECK(h.agent.find_session("rr") == s);
  std::vector<parley::chat_message> hist;
  test::on_strand(*s, [&] { hist = s->get_chat_history(); });
  REQUIRE(hist.size() == 4);  // greeting, "hello", the question, the options
  CHECK(hist[1].content == "hello");
  CHECK(hist[1].is_user);
  CHECK(test::eventually([&] { return db.count("SELECT count(*) FROM transition") == 1; }));
  CHECK(db.count("SELECT count(*) FROM session") == 1);
}

BACKEND_CASE("reset of a stored session that is not live deletes its rows") {
  test::backend db;
  if (db.skipped()) return;
  {
    test::harness h(db.handler(), greetings::define, true);
    h.session("gone");
    h.say("gone", "hello");
    REQUIRE(h.got.wait("gone", 3));
  }
  test::harness h(db.handler(), greetings::define, true);
  std::promise<std::shared_ptr<parley::session>> done;
  h.agent.reset_session("gone", [&](std::shared_ptr<parley::session> s) { done.set_value(s); });
  CHECK(done.get_future().get() == nullptr);
  CHECK_FALSE(h.agent.db()->load_session("testbot", "gone").has_value());
  h.session("gone");
  REQUIRE(h.got.wait("gone", 1));
  CHECK(h.got.of("gone")[0] == "Hi! I'm the greetings bot. Say hello when you're ready.");
}
