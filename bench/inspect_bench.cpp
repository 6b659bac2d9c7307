// The web inspector's queries on a big file (issue 15 §6): a sessions page and a 10,000-row
// session's rows with 1,000,000 chat rows in the file, timed as the server runs them (query and
// JSON text, CPU time of the calling thread and wall time, median of 5).
//   bench_inspect [--sessions N] [--chat N] [--no-index]
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

#include <SQLiteCpp/Database.h>

#include <parley/agent.hpp>
#include <parley/db/inspect.hpp>
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

}  // namespace

int main(int argc, char** argv) {
  long sessions = 100, chat = 1'000'000;
  bool index = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sessions" && i + 1 < argc) sessions = std::atol(argv[++i]);
    else if (a == "--chat" && i + 1 < argc) chat = std::atol(argv[++i]);
    else if (a == "--no-index") index = false;
    else {
      std::fprintf(stderr, "usage: bench_inspect [--sessions N] [--chat N] [--no-index]\n");
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("parley-inspect-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "big.db").string();
  {
    parley::agent a("greetings");
    parley::db::sqlite_db_handler h({.path = path});
    h.open(a);
  }
  {
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
  std::printf("%ld sessions, %ld chat rows (%ld per session)%s\n", sessions, chat, chat / sessions,
              index ? "" : ", without the index chat_by_session_user");
  auto db = parley::db::open_reader(path);
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
