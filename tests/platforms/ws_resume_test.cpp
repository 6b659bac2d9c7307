// Reply numbers and the resend from a cursor (?since=N) on SQLite files: the shared cases
// (ws_resume_cases.hpp; the PostgreSQL tests run them too), the stored column, the schema's
// refusal of a second row under one number, and the refusal of a bad cursor.
#include <doctest/doctest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "ws_resume_cases.hpp"

using namespace wstest;

namespace {

// A handler on one file of `dir` per call: a restart reopens the same file.
resume::make_db on_file(const temp_dir& dir) {
  return [&dir] { return sqlite_in(dir); };
}

}  // namespace

TEST_CASE("sqlite: every reply frame carries its session's next number") {
  temp_dir dir;
  resume::numbers_every_reply(on_file(dir));
}

TEST_CASE("sqlite: a returning session numbers on after a restart on the same file") {
  temp_dir dir;
  SUBCASE("resumed (agent.persist_sessions)") { resume::numbers_on_after_restart(on_file(dir), true); }
  SUBCASE("started afresh under the same id") { resume::numbers_on_after_restart(on_file(dir), false); }
}

TEST_CASE("sqlite: ?since=N resends exactly the replies after N, then live ones") {
  temp_dir dir;
  resume::resends_after_the_cursor(on_file(dir));
}

TEST_CASE("sqlite: replies sent during a resend arrive once, in order") {
  temp_dir dir;
  resume::live_replies_during_the_resend(on_file(dir));
}

TEST_CASE("sqlite: the number is stored with the reply's row, unique per session") {
  temp_dir dir;
  {
    server srv(test_options(), sqlite_in(dir));
    net::io_context io;
    client c(io);
    REQUIRE(!c.connect(srv.port(), resume::at("u1")));
    resume::replies(c, 1, 1);
    c.say("x");
    resume::replies(c, 2, 2);
  }
  SQLite::Database db((dir.path / "chat.db").string(), SQLite::OPEN_READWRITE);
  SQLite::Statement q(db, "SELECT is_user, seq FROM chat ORDER BY id");
  std::vector<std::pair<int, std::optional<std::int64_t>>> rows;
  while (q.executeStep())
    rows.emplace_back(q.getColumn(0).getInt(), q.getColumn(1).isNull()
                                                   ? std::nullopt
                                                   : std::optional(q.getColumn(1).getInt64()));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == std::pair<int, std::optional<std::int64_t>>{0, 1});
  CHECK(rows[1] == std::pair<int, std::optional<std::int64_t>>{1, std::nullopt});  // the user's
  CHECK(rows[2] == std::pair<int, std::optional<std::int64_t>>{0, 2});
  // A second owner writing the same number is refused by the database.
  CHECK_THROWS_WITH_AS(db.exec("INSERT INTO chat (session_id, type, content, is_user, timestamp, seq) "
                               "SELECT session_id, 'text', 'again', 0, timestamp, 2 FROM chat LIMIT 1"),
                       doctest::Contains("UNIQUE"), SQLite::Exception);
  // The user's rows are not numbered: any number of them.
  CHECK_NOTHROW(db.exec("INSERT INTO chat (session_id, type, content, is_user, timestamp) "
                        "SELECT session_id, 'text', 'more', 1, timestamp FROM chat LIMIT 1"));
}

TEST_CASE("a bad since is refused with 400 naming the parameter") {
  server srv;
  net::io_context io;
  for (const std::string bad : {"-1", "abc", "", "1.5", "99999999999999999999"}) {
    INFO("since=" << bad);
    client c(io);
    const auto ec = c.connect(srv.port(), "/?session_id=b1&since=" + bad);
    REQUIRE(ec == websocket::error::upgrade_declined);
    CHECK(c.status() == http::status::bad_request);
    CHECK(c.response().body().find("'since'") != std::string::npos);
    CHECK(c.response().body().find("whole number") != std::string::npos);
  }
  // Without a database, replies are still numbered and a good cursor is taken.
  client c(io);
  REQUIRE(!c.connect(srv.port(), resume::at("b1", 0)));
  CHECK(resume::replies(c, 1, 1)[0]["message"] == "welcome");
}
