// parley-inspect on a database written by the greetings bot (a child process), including
// --follow on the live database while the bot writes it. On either backend (backend.hpp):
// built into parley_db_tests (a SQLite file) and parley_pg_tests (a postgresql:// URI).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "backend.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string greetings_db(const test::backend& db) {
  auto r = test::run({PARLEY_GREETINGS_BIN, "--console", "--db", db.where(), "--log-level", "warn"},
                     "hello\ngood\nwhat is this\nhello\nbad\n");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  return db.where();
}
test::run_result inspect(std::vector<std::string> args) {
  args.insert(args.begin(), PARLEY_INSPECT_BIN);
  return test::run(std::move(args));
}
}  // namespace

BACKEND_CASE("parley-inspect reads what the greetings bot recorded") {
  test::backend backend;
  if (backend.skipped()) return;
  const auto db = greetings_db(backend);

  auto sessions = inspect({db, "sessions"});
  REQUIRE(sessions.code == 0);
  CHECK(has(sessions.out, "SESSION"));
  CHECK(has(sessions.out, "console"));
  CHECK(has(sessions.out, "ready"));
  CHECK_FALSE(has(sessions.out, "\033["));  // not a terminal: no colour

  auto chat = inspect({db, "chat", "console"});
  REQUIRE(chat.code == 0);
  CHECK(has(chat.out, "I'm glad to hear that!"));
  CHECK(has(chat.out, "what is this"));
  // Aligned: every line has its content column at the same offset as the header's.
  const auto header_at = chat.out.find("CONTENT");
  const auto glad_line = chat.out.rfind('\n', chat.out.find("I'm glad")) + 1;
  CHECK(chat.out.find("I'm glad") - glad_line == header_at);

  auto last = inspect({db, "chat", "console", "--last", "1", "--json"});
  REQUIRE(last.code == 0);
  auto j = nlohmann::json::parse(last.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["content"] == "I'm sorry to hear that. Say hello to start again.");
  CHECK(j[0]["is_user"] == false);

  auto early = inspect({db, "chat", "console", "--until", "2000-01-01", "--json"});
  REQUIRE(early.code == 0);
  CHECK(nlohmann::json::parse(early.out).empty());

  auto transitions = inspect({db, "transitions", "console"});
  REQUIRE(transitions.code == 0);
  CHECK(has(transitions.out, "intent hello"));
  CHECK(has(transitions.out, "sorry"));

  auto timeline = inspect({db, "timeline", "console", "--json"});
  REQUIRE(timeline.code == 0);
  auto t = nlohmann::json::parse(timeline.out);
  // In write order: the message, its prediction, the transition, then the replies.
  std::vector<std::string> kinds;
  for (const auto& row : t) kinds.push_back(row["source"]);
  REQUIRE(kinds.size() >= 5);
  CHECK(kinds[0] == "chat");  // the greeting
  CHECK(kinds[1] == "chat");  // "hello"
  CHECK(kinds[2] == "intent_prediction");
  CHECK(kinds[3] == "transition");
  CHECK(kinds[4] == "chat");

  CHECK(inspect({db, "events", "console"}).code == 0);
  CHECK(inspect({db, "reasoning", "console", "--json"}).out == "[]\n");
}

BACKEND_CASE("parley-inspect diagram draws the greetings bot's states and transitions") {
  test::backend backend;
  if (backend.skipped()) return;
  const auto db = greetings_db(backend);

  auto dot = inspect({db, "diagram"});
  REQUIRE(dot.code == 0);
  CHECK(has(dot.out, "digraph \"greetings\""));
  CHECK(has(dot.out, "\"__start\" -> \"initial\";"));
  // Every transition of greetings_bot.hpp, with its kind.
  for (const auto* edge :
       {"\"initial\" -> \"ask\" [label=\"intent hello\", style=solid, class=\"intent\"",
        "\"ready\" -> \"ask\" [label=\"intent hello\"", "\"ask\" -> \"glad\" [label=\"intent good\"",
        "\"ask\" -> \"sorry\" [label=\"intent bad\"",
        "\"ask\" -> \"still_here\" [label=\"after ", "class=\"timeout\"",
        "\"still_here\" -> \"glad\" [label=\"intent good\"", "\"still_here\" -> \"sorry\" [label=\"intent bad\"",
        "\"glad\" -> \"ready\" [label=\"auto\", style=bold, class=\"auto\"",
        "\"sorry\" -> \"ready\" [label=\"auto\""})
    CHECK_MESSAGE(has(dot.out, edge), edge);
  // Visits over every session: hello twice -> ask entered twice.
  CHECK(has(dot.out, "\"ask\" [label=\"ask (2)\"]"));

  auto mermaid = inspect({db, "diagram", "console", "--format", "mermaid"});
  REQUIRE(mermaid.code == 0);
  CHECK(mermaid.out.rfind("stateDiagram-v2\n", 0) == 0);
  CHECK(has(mermaid.out, "state \"ready (2)\" as s1"));
  CHECK(has(mermaid.out, "[*] --> s0"));
  CHECK(has(mermaid.out, "s2 --> s4 #58; intent good (taken)") == false);  // ':' only as separator
  CHECK(has(mermaid.out, "s2 --> s4 : intent good (taken)"));  // ask -> glad, taken
  CHECK(has(mermaid.out, "s3 --> s4 : intent good\n"));        // still_here -> glad, not taken
  CHECK(has(mermaid.out, "class s1 current"));                   // the session ended in ready

  auto bad = inspect({db, "diagram", "--format", "png"});
  CHECK(bad.code == 2);
  CHECK(has(bad.err, "--format takes dot or mermaid"));
}

BACKEND_CASE("parley-inspect says what is wrong in one line and exits non-zero") {
  test::backend backend;
  if (backend.skipped()) return;
  const auto db = greetings_db(backend);
  auto unknown = inspect({db, "chat", "nobody"});
  CHECK(unknown.code == 1);
  CHECK(has(unknown.err, "no session 'nobody'"));
  CHECK(std::count(unknown.err.begin(), unknown.err.end(), '\n') == 1);

  if (backend.postgres()) {
    // A server that is not there, and a database that is not Parley's: named, no password.
    auto down = inspect({"postgresql://me:hunter2@127.0.0.1:1/x?connect_timeout=2", "sessions"});
    CHECK(down.code == 1);
    CHECK(has(down.err, "cannot read PostgreSQL"));
    CHECK_FALSE(has(down.err, "hunter2"));
    auto other = inspect({backend.server_url(), "sessions"});
    CHECK(other.code == 1);
    CHECK(has(other.err, "not a Parley database"));
  } else {
    test::temp_dir dir;
    auto missing = inspect({dir.file("none.db"), "sessions"});
    CHECK(missing.code == 1);
    CHECK(has(missing.err, "does not exist"));
  }

  auto bad = inspect({db, "frobnicate"});
  CHECK(bad.code == 2);
  CHECK(has(bad.err, "unknown command"));

  if (!backend.postgres()) {
    auto notdb = inspect({PARLEY_INSPECT_BIN, "sessions"});
    CHECK(notdb.code == 1);
    CHECK(has(notdb.err, "not a SQLite database"));
  }
}

BACKEND_CASE("parley-inspect --follow prints new rows while the bot writes its live database") {
  test::backend backend;
  if (backend.skipped()) return;
  const auto db = backend.where();
  test::child bot({PARLEY_GREETINGS_BIN, "--console", "--db", db, "--set", "db.sync_commit=true",
                   "--log-level", "warn"});
  // With sync_commit, a printed reply is committed.
  REQUIRE(bot.read_until([](const std::string& o) { return has(o, "Say hello"); }));
  test::child follow({PARLEY_INSPECT_BIN, db, "chat", "console", "--follow", "--interval-ms", "20"});
  REQUIRE(follow.read_until([](const std::string& o) { return has(o, "Say hello"); }));
  bot.write("hello\n");
  REQUIRE(follow.read_until([](const std::string& o) { return has(o, "How are you?"); }));
  bot.write("good\n");
  REQUIRE(follow.read_until([](const std::string& o) { return has(o, "glad to hear"); }));
  // The follower never blocked the writer: the bot answered throughout, and stops cleanly.
  CHECK(bot.finish() == 0);
  follow.kill(SIGTERM);
  CHECK(follow.finish() == 0);
}
