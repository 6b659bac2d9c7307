// The web inspector's queries on a big file (issue 15 §6): a sessions page and a 10,000-row
// session's rows with 1,000,000 chat rows in the file, timed as the server runs them (query and
// JSON text, CPU time of the calling thread and wall time, median of 5).
//   bench_inspect [--sessions N] [--chat N] [--no-index] [--pg URL]
// --pg: the same rows in PostgreSQL instead (a fresh database made on the server at URL, e.g.
// `./dev pg sh -c 'build/bench/bench_inspect --pg "$PARLEY_PG_URL"'`), read through the same
// queries (parley/db/reader.hpp).
// --no-index drops chat_by_session_user (schema 4), the index that makes the sessions page's
// turn counts read the index alone (see docs/inspector.md), to show what it saves.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include <SQLiteCpp/Database.h>

#include <parley/agent.hpp>
#include <parley/db/inspect.hpp>
#include <parley/db/postgres_db_handler.hpp>
#include <parley/db/reader.hpp>
#include <parley/db/sqlite_db_handler.hpp>

namespace {

double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// Median CPU and wall milliseconds of 5 runs of `fn` (after one to warm the caches).
void time(const char* what, const std::function<std::size_t()>& fn) {
  fn();
  std::vector<double> cpu, wall;
  std::size_t bytes = 0;
  for (int i = 0; i < 5; ++i) {
    const double c0 = thread_cpu_ms();
    const auto w0 = std::chrono::steady_clock::now();
    bytes = fn();
    wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
    cpu.push_back(thread_cpu_ms() - c0);
  }
  std::sort(cpu.begin(), cpu.end());
  std::sort(wall.begin(), wall.end());
  std::printf("  %-44s %8.1f ms CPU %8.1f ms wall %10zu bytes\n", what, cpu[2], wall[2], bytes);
}

// One statement on a blocking connection; exits with the server's message when it fails.
void pg_exec(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "bench_inspect: %s\n", PQerrorMessage(c));
    std::exit(1);
  }
}

// A fresh database on the server at `url` holding the same rows as the SQLite file would;
// returns its URI.
std::string fill_postgres(const std::string& url, long sessions, long chat, bool index) {
  PGconn* admin = PQconnectdb(url.c_str());
  if (PQstatus(admin) != CONNECTION_OK) {
    std::fprintf(stderr, "bench_inspect: %s\n", PQerrorMessage(admin));
    std::exit(1);
  }
  const std::string name = "parley_inspect_bench_" + std::to_string(::getpid());
  pg_exec(admin, "CREATE DATABASE " + name);
  PQfinish(admin);
  // A URI's dbname parameter overrides its path.
  const std::string db_url = url + (url.find('?') == std::string::npos ? "?" : "&") + "dbname=" + name;
  {
    parley::db::postgres_options o;
    o.url = db_url;
    parley::db::postgres_db_handler h(std::move(o));
    h.open(std::string("greetings"));
    h.close();
  }
  PGconn* c = PQconnectdb(db_url.c_str());
  const auto n = std::to_string(sessions);
  pg_exec(c, "INSERT INTO session (id, agent_name, session_id, username, platform_name, timestamp, "
             "current_state, last_activity) SELECT i, 'greetings', 'sid-' || i, 'user-' || i, "
             "'websocket', '2026-11-29T08:00:00.000Z', 'ready', '2026-11-29T09:' || "
             "lpad((i / 60 % 60)::text, 2, '0') || ':' || lpad((i % 60)::text, 2, '0') || '.000Z' "
             "FROM generate_series(1, " + n + ") i");
  pg_exec(c, "INSERT INTO chat (id, session_id, type, content, is_user, timestamp) SELECT " + n +
             " + 1 + i, i % " + n + " + 1, 'str', 'message ' || (" + n + " + 1 + i) || ' with some "
             "text of a realistic length, about like this', i / " + n + " % 2, "
             "'2026-11-29T08:30:00.000Z' FROM generate_series(0, " + std::to_string(chat - 1) + ") i");
  pg_exec(c, "SELECT setval('parley_row_id', " + std::to_string(sessions + chat + 1) + ")");
  if (!index) pg_exec(c, "DROP INDEX chat_by_session_user");
  pg_exec(c, "VACUUM ANALYZE");
  PQfinish(c);
  return db_url;
}

}  // namespace

int main(int argc, char** argv) {
  long sessions = 100, chat = 1'000'000;
  bool index = true;
  std::string pg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sessions" && i + 1 < argc) sessions = std::atol(argv[++i]);
    else if (a == "--chat" && i + 1 < argc) chat = std::atol(argv[++i]);
    else if (a == "--no-index") index = false;
    else if (a == "--pg" && i + 1 < argc) pg = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_inspect [--sessions N] [--chat N] [--no-index] [--pg URL]\n");
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("parley-inspect-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "big.db").string();
  if (pg.empty()) {
    parley::agent a("greetings");
    parley::db::sqlite_db_handler h({.path = path});
    h.open(a);
  }
  if (pg.empty()) {
    // Rows as many concurrent sessions leave them: each session's rows spread over the file.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("BEGIN");
    SQLite::Statement s(db, "INSERT INTO session (id, agent_name, session_id, username, platform_name, "
                            "timestamp, current_state, last_activity) VALUES (?1, 'greetings', "
                            "'sid-' || ?1, 'user-' || ?1, 'websocket', '2026-11-29T08:00:00.000Z', "
                            "'ready', printf('2026-11-29T09:%02d:%02d.000Z', ?1 / 60 % 60, ?1 % 60))");
    for (long i = 1; i <= sessions; ++i) {
      s.bind(1, static_cast<std::int64_t>(i));
      s.exec();
      s.reset();
    }
    SQLite::Statement c(db, "INSERT INTO chat (id, session_id, type, content, is_user, timestamp) "
                            "VALUES (?1, ?2, 'str', 'message ' || ?1 || ' with some text of a "
                            "realistic length, about like this', ?3, '2026-11-29T08:30:00.000Z')");
    for (long i = 0; i < chat; ++i) {
      c.bind(1, static_cast<std::int64_t>(sessions + 1 + i));
      c.bind(2, static_cast<std::int64_t>(i % sessions + 1));
      c.bind(3, static_cast<int>(i / sessions % 2));
      c.exec();
      c.reset();
    }
    db.exec("COMMIT");
    if (!index) db.exec("DROP INDEX chat_by_session_user");
  }
  const std::string where = pg.empty() ? path : fill_postgres(pg, sessions, chat, index);
  std::printf("%ld sessions, %ld chat rows (%ld per session)%s, %s\n", sessions, chat, chat / sessions,
              index ? "" : ", without the index chat_by_session_user", pg.empty() ? "SQLite" : "PostgreSQL");
  auto db = parley::db::open_reader(where);
  parley::db::session_query q;
  time("sessions page (50, newest first, counts)", [&] {
    return parley::db::list_sessions(*db, q).dump().size();
  });
  q.offset = 50;
  time("sessions page 2 (offset 50)", [&] { return parley::db::list_sessions(*db, q).dump().size(); });
  q = {};
  q.q = "user-5";
  time("sessions search q=user-5", [&] { return parley::db::list_sessions(*db, q).dump().size(); });
  time("session rows, 10,000", [&] { return parley::db::session_rows(*db, 7, 0, 10000).dump().size(); });
  time("session rows, 1,000 after the middle", [&] {
    return parley::db::session_rows(*db, 7, chat / 2, 1000).dump().size();
  });
  db.reset();
  std::filesystem::remove_all(dir);
}
