// Recording: schema, rows of a real conversation, timestamps, read-your-writes, reasoning
// links, sync_commit, flush on close, cascading deletes. Real SQLite files in temp folders.
#include <doctest/doctest.h>

#include <future>
#include <regex>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/db/timestamp.hpp>

#include "greetings_bot.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

TEST_CASE("timestamps are UTC ISO-8601 with milliseconds and parse back") {
  const auto t = parley::wall_clock::time_point(std::chrono::milliseconds(1714566896789));
  CHECK(parley::db::format_timestamp(t) == "2024-05-01T12:34:56.789Z");
  CHECK(parley::db::parse_timestamp("2024-05-01T12:34:56.789Z") == t);
  CHECK(parley::db::parse_timestamp("2024-05-01") ==
        parley::wall_clock::time_point(std::chrono::milliseconds(1714521600000)));
  CHECK(parley::db::parse_timestamp("2024-05-01T12:34:56Z").has_value());
  CHECK_FALSE(parley::db::parse_timestamp("yesterday").has_value());
  CHECK_FALSE(parley::db::parse_timestamp("2024-13-01").has_value());
}

TEST_CASE("a new file gets the schema, WAL and Parley's application id") {
  test::temp_dir dir;
  const auto path = dir.file("new.db");
  {
    parley::db::sqlite_db_handler h({.path = path});
    h.open("agent");
    h.close();
    h.close();  // twice is fine
  }
  SQLite::Database db(path);
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == parley::db::schema_version());
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA application_id").getInt() == 0x50726C79);
  for (const char* t : {"session", "chat", "transition", "intent_prediction", "parameter", "event",
                        "reasoning_step", "timer"})
    CHECK(db.execAndGet(std::string("SELECT count(*) FROM sqlite_schema WHERE name = '") + t + "'")
              .getInt() == 1);
  // Opening again migrates nothing and keeps the rows.
  parley::db::sqlite_db_handler again({.path = path});
  CHECK_NOTHROW(again.open("agent"));
}

TEST_CASE("a greetings conversation is recorded: chat, transitions, predictions, state") {
  test::temp_dir dir;
  const auto path = dir.file("g.db");
  {
    test::harness h(path, greetings::define);
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
  CHECK(test::query_text(path, "SELECT current_state FROM session WHERE session_id = 's1'") == "ready");
  CHECK(test::query_text(path, "SELECT username FROM session WHERE session_id = 's1'") == "alice");
  CHECK(test::query_count(path, "SELECT count(*) FROM transition") == 3);
  CHECK(test::query_text(path, "SELECT condition FROM transition ORDER BY id LIMIT 1") == "intent hello");
  CHECK(test::query_text(path, "SELECT dest_state FROM transition ORDER BY id DESC LIMIT 1") == "ready");
  CHECK(test::query_count(path, "SELECT count(*) FROM intent_prediction") == 3);
  CHECK(test::query_text(path, "SELECT intent FROM intent_prediction ORDER BY id LIMIT 1") == "hello");
  CHECK(test::query_count(path, "SELECT count(*) FROM intent_prediction WHERE intent IS NULL") == 1);
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  CHECK(std::regex_match(test::query_text(path, "SELECT timestamp FROM chat LIMIT 1"), iso));
  CHECK(std::regex_match(test::query_text(path, "SELECT timestamp FROM transition LIMIT 1"), iso));
  CHECK(test::query_text(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("unhandled events, errors and dictionary changes are recorded without bot code") {
  test::temp_dir dir;
  const auto path = dir.file("e.db");
  {
    test::harness h(path, [](parley::agent& a) {
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
  CHECK(test::query_count(path, "SELECT count(*) FROM event WHERE event = 'unhandled'") == 1);
  CHECK(test::query_count(path, "SELECT count(*) FROM event WHERE event = 'error' AND info LIKE '%kaput%'") == 1);
  CHECK(test::query_text(path, "SELECT variables FROM session") == R"({"n":1})");
}

TEST_CASE("reasoning events link to the reply that closes their turn, in write order") {
  test::temp_dir dir;
  const auto path = dir.file("r.db");
  test::harness h(path, [](parley::agent& a) {
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

TEST_CASE("sync_commit: every reply a client receives is already committed") {
  test::temp_dir dir;
  const auto path = dir.file("sync.db");
  std::atomic<int> checked{0}, missing{0};
  parley::db::sqlite_options o;
  o.sync_commit = true;
  // Checked inside deliver, on a fresh connection: the row must be there already.
  auto check = [&](parley::session&, const parley::reply& r) {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT count(*) FROM chat WHERE content = ?");
    q.bind(1, r.content());
    q.executeStep();
    (q.getColumn(0).getInt() > 0 ? checked : missing)++;
  };
  test::harness h(path, greetings::define, o);
  h.got.on_deliver = check;
  for (int i = 0; i < 20; ++i) {
    const auto id = "c" + std::to_string(i);
    h.session(id);
    h.say(id, "hello");
    h.say(id, "bad");
  }
  for (int i = 0; i < 20; ++i) REQUIRE(h.got.wait("c" + std::to_string(i), 4));
  CHECK(missing.load() == 0);
  CHECK(checked.load() == 20 * 4);
}

TEST_CASE("stopping the agent flushes every queued row") {
  test::temp_dir dir;
  const auto path = dir.file("flush.db");
  constexpr int sessions = 50, per_body = 200;
  {
    test::harness h(path, [](parley::agent& a) {
      a.new_state("chatty", true).set_body([](session& s) {
        for (int i = 0; i < per_body; ++i) s.reply("line " + std::to_string(i));
      });
    });
    for (int i = 0; i < sessions; ++i) h.session("f" + std::to_string(i));
    for (int i = 0; i < sessions; ++i) REQUIRE(h.got.wait("f" + std::to_string(i), per_body));
    h.stop();  // right away: rows may still be queued
    CHECK(h.db->stats().rows_dropped == 0);
  }
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == sessions * per_body);
  CHECK(test::query_count(path, "SELECT count(*) FROM session") == sessions);
}

TEST_CASE("deleting a session removes all its rows, after its earlier writes") {
  test::temp_dir dir;
  const auto path = dir.file("del.db");
  test::harness h(path, greetings::define);
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
    h.db->save_prediction(*gone, "with a parameter", p);
    h.db->save_reasoning_event(*gone, "step", {{"summary", "s"}});
    h.db->save_timer(*gone, {"t", parley::wall_clock::now() + 1h, {{"name", "later"}}});
    h.db->save_event(gone.get(), "custom", "info");
  });
  h.db->flush();
  for (const char* t : {"parameter", "reasoning_step", "timer", "event"})
    REQUIRE(test::query_count(path, std::string("SELECT count(*) FROM ") + t) >= 1);
  std::promise<void> done;
  h.agent.delete_session("gone", [&] { done.set_value(); });
  REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);
  h.db->flush();
  CHECK(test::query_count(path, "SELECT count(*) FROM session WHERE session_id = 'gone'") == 0);
  for (const char* t : {"chat", "transition", "intent_prediction", "event", "timer", "reasoning_step"})
    CHECK(test::query_count(path, std::string("SELECT count(*) FROM ") + t +
                                      " WHERE session_id NOT IN (SELECT id FROM session)") == 0);
  CHECK(test::query_count(path, "SELECT count(*) FROM parameter") == 0);
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == 1);  // keep's greeting
  CHECK_FALSE(h.db->load_session("testbot", "gone").has_value());
}

TEST_CASE("the writer gathers rows for commit_interval, but never keeps a reader, a sync_commit reply or a stop waiting") {
  using namespace std::chrono_literals;
  test::temp_dir dir;
  const auto path = dir.file("gather.db");
  const char* user_rows = "SELECT count(*) FROM chat WHERE is_user = 1";
  auto returns_soon = [](auto fn) {
    auto f = std::async(std::launch::async, fn);
    return f.wait_for(10s) == std::future_status::ready;
  };
  {
    parley::db::sqlite_options o;
    o.commit_interval = std::chrono::minutes(1);
    test::harness h(path, greetings::define, o);
    h.session("g");
    h.say("g", "hello");
    REQUIRE(h.got.wait("g", 3));  // replies do not wait for the commit
    // Still gathering: another connection sees nothing of the conversation yet.
    CHECK(test::query_count(path, user_rows) == 0);
    // A reader makes the writer commit now.
    CHECK(returns_soon([&] { return h.agent.list_sessions().size(); }));
    CHECK(test::query_count(path, user_rows) == 1);
    h.say("g", "good");
    REQUIRE(h.got.wait("g", 4));
    CHECK(returns_soon([&] { h.stop(); }));
  }
  CHECK(test::query_count(path, user_rows) == 2);
  {
    // sync_commit: each reply waits for its commit, which does not wait for the interval.
    parley::db::sqlite_options o;
    o.commit_interval = std::chrono::minutes(1);
    o.sync_commit = true;
    test::harness h(path, greetings::define, o);
    h.session("s");
    h.say("s", "hello");
    CHECK(h.got.wait("s", 3, 10s));
    CHECK(test::query_count(path, user_rows) == 3);
  }
}

TEST_CASE("a message's text and a prediction's parameters are stored byte for byte") {
  test::temp_dir dir;
  const auto path = dir.file("b.db");
  test::harness h(path, greetings::define);
  auto s = h.session("b1");
  REQUIRE(h.got.wait("b1", 1));
  const std::string text("caf\xc3\xa9 \0 after a NUL", 20);
  parley::intent_prediction p;
  p.score = 0.25;
  p.classifier = "test-classifier";
  p.parameters = {{"city", "Gen\xc3\xa8ve", {{"entity", "city"}}}, {"n", "", nullptr}};
  test::on_strand(*s, [&] {
    parley::reply r;
    r.text = text;
    h.db->save_message(*s, r, true, {});
    h.db->save_prediction(*s, text, p);
  });
  h.db->flush();
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement chat(db, "SELECT CAST(content AS BLOB), type, is_user FROM chat ORDER BY id DESC LIMIT 1");
  REQUIRE(chat.executeStep());
  const auto content = chat.getColumn(0);
  CHECK(std::string(static_cast<const char*>(content.getBlob()), content.getBytes()) == text);
  CHECK(chat.getColumn(1).getString() == "str");
  CHECK(chat.getColumn(2).getInt() == 1);
  SQLite::Statement pred(db,
                         "SELECT id, CAST(message AS BLOB), intent IS NULL, score, intent_classifier "
                         "FROM intent_prediction ORDER BY id DESC LIMIT 1");
  REQUIRE(pred.executeStep());
  const auto message = pred.getColumn(1);
  CHECK(std::string(static_cast<const char*>(message.getBlob()), message.getBytes()) == text);
  CHECK(pred.getColumn(2).getInt() == 1);
  CHECK(pred.getColumn(3).getDouble() == 0.25);
  CHECK(pred.getColumn(4).getString() == "test-classifier");
  SQLite::Statement params(db, "SELECT name, value, info FROM parameter WHERE intent_prediction_id = ? ORDER BY id");
  params.bind(1, pred.getColumn(0).getInt64());
  REQUIRE(params.executeStep());
  CHECK(params.getColumn(0).getString() == "city");
  CHECK(params.getColumn(1).getString() == "Gen\xc3\xa8ve");
  CHECK(parley::json::parse(params.getColumn(2).getString()) == parley::json({{"entity", "city"}}));
  REQUIRE(params.executeStep());
  CHECK(params.getColumn(0).getString() == "n");
  CHECK(params.getColumn(1).getString() == "");
  CHECK_FALSE(params.executeStep());
}
