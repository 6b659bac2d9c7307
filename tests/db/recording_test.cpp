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
