// Bad input at start (clear db_error naming the path and the fix) and failing writes during
// the run (retried, logged, counted, never stopping the agent).
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>

#include "greetings_bot.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {
std::string open_error(const std::string& path, std::chrono::milliseconds busy = 100ms) {
  parley::db::sqlite_db_handler h({.path = path, .busy_timeout = busy});
  try {
    h.open("agent");
  } catch (const parley::db_error& e) {
    return e.what();
  }
  return {};
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("bad database paths and files give a clear error naming the path and the fix") {
  test::temp_dir dir;

  SUBCASE("a folder that does not exist") {
    const auto path = dir.file("no/such/folder/x.db");
    const auto e = open_error(path);
    CHECK(contains(e, path));
    CHECK(contains(e, "does not exist"));
    CHECK(contains(e, "--db"));
  }
  SUBCASE("a folder, not a file") {
    const auto e = open_error(dir.path().string());
    CHECK(contains(e, "is a folder"));
  }
  SUBCASE("not a SQLite file") {
    const auto path = dir.file("notes.txt");
    std::ofstream(path) << std::string(8192, 'x');
    const auto e = open_error(path);
    CHECK(contains(e, path));
    CHECK(contains(e, "not a SQLite database"));
  }
  SUBCASE("a SQLite file of something else") {
    const auto path = dir.file("other.db");
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY)");
    }
    const auto e = open_error(path);
    CHECK(contains(e, path));
    CHECK(contains(e, "not a Parley one"));
  }
  SUBCASE("a newer schema") {
    const auto path = dir.file("newer.db");
    {
      parley::db::sqlite_db_handler h({.path = path});
      h.open("agent");
    }
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE);
      db.exec("PRAGMA user_version = 99");
    }
    const auto e = open_error(path);
    CHECK(contains(e, path));
    CHECK(contains(e, "schema version 99"));
    CHECK(contains(e, "newer Parley"));
  }
  SUBCASE("locked by another process") {
    const auto path = dir.file("locked.db");
    {
      parley::db::sqlite_db_handler h({.path = path});
      h.open("agent");
    }
    // The sqlite3 shell, another process, holds the write lock.
    test::child shell({PARLEY_SQLITE3_BIN, path});
    // The shell waits for the lock (.timeout): the probe below takes it for an instant on
    // every try, and a shell that found it taken then would hold nothing (its BEGIN failing,
    // its INSERT committing alone), which the probe could still catch once.
    shell.write(".timeout 10000\nBEGIN EXCLUSIVE;\nINSERT INTO event (agent_name, event, timestamp) VALUES ('x', 'x', 'x');\n");
    REQUIRE(test::eventually([&] {
      SQLite::Database probe(path, SQLite::OPEN_READWRITE);
      try {
        probe.exec("BEGIN IMMEDIATE");
        probe.exec("ROLLBACK");
        return false;
      } catch (const SQLite::Exception&) {
        return true;
      }
    }));
    const auto e = open_error(path);
    CHECK(contains(e, path));
    CHECK(contains(e, "locked by another process"));
    shell.write("ROLLBACK;\n");
    CHECK(shell.finish() == 0);
    CHECK(open_error(path).empty());
  }
}

TEST_CASE("parley::run exits with 3 and one line on stderr when the database cannot be opened") {
  test::temp_dir dir;
  const auto path = dir.file("missing/x.db");
  auto r = test::run({PARLEY_GREETINGS_BIN, "--console", "--db", path}, "hello\n");
  CHECK(r.code == 3);
  CHECK(contains(r.err, "error: cannot create database '" + path + "'"));
  // One line says it all (log lines from before the failure may precede it).
  const auto at = r.err.find("error: ");
  REQUIRE(at != std::string::npos);
  CHECK(r.err.find('\n', at) == r.err.size() - 1);
}

TEST_CASE("a write that fails during the run is retried and the agent keeps answering") {
  test::temp_dir dir;
  const auto path = dir.file("w.db");
  parley::db::sqlite_options o;
  o.busy_timeout = 20ms;
  o.write_attempts = 60;
  o.retry_backoff = 5ms;
  test::harness h(path, greetings::define, o);
  h.session("w1");
  REQUIRE(h.got.wait("w1", 1));
  h.db->flush();

  // Another connection holds the write lock: every commit of the writer fails with SQLITE_BUSY.
  SQLite::Database locker(path, SQLite::OPEN_READWRITE);
  locker.exec("BEGIN EXCLUSIVE");
  locker.exec("INSERT INTO event (agent_name, event, timestamp) VALUES ('x', 'lock', 'x')");
  h.say("w1", "hello");
  REQUIRE(h.got.wait("w1", 3));  // answered while its rows cannot be written
  REQUIRE(test::eventually([&] { return h.db->stats().write_failures >= 2; }));
  locker.exec("ROLLBACK");

  h.db->flush();
  const auto st = h.db->stats();
  CHECK(st.rows_dropped == 0);
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == 4);
  h.say("w1", "good");
  REQUIRE(h.got.wait("w1", 4));
  h.db->flush();
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == 6);
}

TEST_CASE("a file locked for longer than every retry: the writer waits, counts it, drops nothing") {
  test::temp_dir dir;
  const auto path = dir.file("d.db");
  parley::db::sqlite_options o;
  o.busy_timeout = 10ms;
  o.write_attempts = 2;  // a failing disk is given up on after two attempts; a lock is not
  o.retry_backoff = 5ms;
  test::harness h(path, greetings::define, o);
  h.session("d1");
  REQUIRE(h.got.wait("d1", 1));
  h.db->flush();
  {
    SQLite::Database locker(path, SQLite::OPEN_READWRITE);
    locker.exec("BEGIN EXCLUSIVE");
    locker.exec("INSERT INTO event (agent_name, event, timestamp) VALUES ('x', 'lock', 'x')");
    h.say("d1", "hello");
    REQUIRE(h.got.wait("d1", 3));
    // Many more failed attempts than write_attempts, one wait counted, nothing given up.
    REQUIRE(test::eventually([&] { return h.db->stats().write_failures >= 6; }));
    CHECK(h.db->stats().lock_waits == 1);
    CHECK(h.db->stats().rows_dropped == 0);
    locker.exec("ROLLBACK");
  }
  h.say("d1", "bad");
  REQUIRE(h.got.wait("d1", 4));
  CHECK(h.got.of("d1")[3] == "I'm sorry to hear that. Say hello to start again.");
  h.db->flush();
  const auto st = h.db->stats();
  CHECK(st.rows_dropped == 0);
  CHECK(st.lock_waits == 1);
  // Greeting, hello, its two replies, bad, its reply: every one.
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == 6);
  CHECK(test::query_count(path, "SELECT count(*) FROM chat WHERE content = 'hello'") == 1);
  CHECK(test::query_text(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("a writer that falls behind holds sessions at max_queued rows and loses none") {
  test::temp_dir dir;
  const auto path = dir.file("q.db");
  parley::db::sqlite_options o;
  o.max_queued = 8;
  o.busy_timeout = 20s;  // the writer waits out the lock below instead of failing
  test::harness h(path, greetings::define, o);
  h.session("q");
  REQUIRE(h.got.wait("q", 1));
  h.db->flush();

  // Another connection holds the write lock: the writer cannot commit, rows queue up.
  SQLite::Database locker(path, SQLite::OPEN_READWRITE);
  locker.exec("BEGIN IMMEDIATE");
  for (int i = 0; i < 10; ++i) {
    h.say("q", "hello");
    h.say("q", "good");
  }
  // Twenty messages make about a hundred rows: the session waits for room instead.
  REQUIRE(test::eventually([&] { return h.db->stats().queue_waits >= 1; }));
  CHECK(h.got.of("q").size() < 31);
  locker.exec("ROLLBACK");

  REQUIRE(h.got.wait("q", 31));  // then it goes on
  CHECK(h.db->stats().queue_high <= 8);
  h.db->flush();
  CHECK(h.db->stats().rows_dropped == 0);
  CHECK(test::query_count(path, "SELECT count(*) FROM chat WHERE is_user = 1") == 20);
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == 51);
}

TEST_CASE("the writer thread runs at db.writer_nice") {
  auto writer_nice = [] {
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(t.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name != "parley-db") continue;
      std::ifstream stat(t.path() / "stat");
      std::string all((std::istreambuf_iterator<char>(stat)), {});
      // Fields after the command's closing parenthesis: state is field 3, nice field 19.
      std::istringstream rest(all.substr(all.rfind(')') + 2));
      std::string field;
      for (int i = 3; i <= 19; ++i) rest >> field;
      return std::stoi(field);
    }
    return -100;  // no writer thread
  };
  test::temp_dir dir;
  {
    parley::db::sqlite_options o;
    o.writer_nice = 10;
    test::harness h(dir.file("n.db"), greetings::define, o);
    h.db->flush();  // the writer has started (named, and its priority set)
    CHECK(writer_nice() == std::max(10, ::getpriority(PRIO_PROCESS, 0)));
  }
  test::harness h(dir.file("n0.db"), greetings::define);  // default: the process's own
  h.db->flush();
  CHECK(writer_nice() == ::getpriority(PRIO_PROCESS, 0));
}
