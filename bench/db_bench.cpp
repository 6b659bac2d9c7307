// DB benchmarks: (1) sustained chat rows per second through the writer while sessions reply,
// against a plain SQLite batched insert of the same rows in the same run; (2) time to restore
// 100,000 persisted sessions. Usage: bench_db [--sessions N] [--messages M] [--restore R] [--dir D]
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/db/timestamp.hpp>

namespace {
using steady = std::chrono::steady_clock;
using parley::session;

double seconds_since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

// A countdown the benchmark waits on (condition variable, no polling).
struct latch {
  std::mutex m;
  std::condition_variable cv;
  long left;
  explicit latch(long n) : left(n) {}
  void hit() {
    std::lock_guard l(m);
    if (--left == 0) cv.notify_all();
  }
  void wait() {
    std::unique_lock l(m);
    cv.wait(l, [&] { return left <= 0; });
  }
};

constexpr int replies_per_message = 4;

void define_echo(parley::agent& a) {
  a.new_state("echo", true).set_fallback_body([](session& s) {
    for (int i = 0; i < replies_per_message; ++i) s.reply("echo " + std::to_string(i) + ": " + s.event().text());
  });
}

struct chat_row {
  std::string session_id, type, content, ts;
  bool is_user;
};

// (1a) rows through the agent and the writer.
double writer_rate(const std::string& path, int sessions, int messages, std::vector<chat_row>& rows) {
  parley::agent a("bench");
  a.config().set("agent.threads", 2, "bench");
  a.config().set("log.level", "warn", "bench");
  define_echo(a);
  auto db = std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = path});
  a.use_db(db);
  auto p = std::make_shared<parley::callback_platform>([](session&, const parley::reply&) {});
  a.use_platform(p);
  a.start();
  std::vector<std::shared_ptr<session>> ss;
  for (int i = 0; i < sessions; ++i) ss.push_back(a.get_or_create_session("s" + std::to_string(i), p.get(), "u"));
  latch started(sessions);
  for (auto& s : ss) s->when_idle([&] { started.hit(); });
  started.wait();
  db->flush();
  const auto t0 = steady::now();
  for (int m = 0; m < messages; ++m)
    for (auto& s : ss) (void)s->post(parley::event::text("message " + std::to_string(m), true));
  latch idle(sessions);
  for (auto& s : ss) s->when_idle([&] { idle.hit(); });
  idle.wait();
  db->flush();
  const double secs = seconds_since(t0);
  a.stop();
  a.wait();
  // The same rows, for the plain insert.
  SQLite::Database r(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(r, "SELECT s.session_id, c.type, c.content, c.is_user, c.timestamp FROM chat c "
                         "JOIN session s ON s.id = c.session_id ORDER BY c.id");
  while (q.executeStep())
    rows.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                    q.getColumn(4).getString(), q.getColumn(3).getInt() != 0});
  std::printf("writer:  %zu chat rows in %.3f s (%d sessions x %d messages, %d replies each; "
              "agent on 2 threads)\n",
              rows.size(), secs, sessions, messages, replies_per_message);
  return static_cast<double>(rows.size()) / secs;
}

// (1b) the same rows, inserted with a prepared statement in batches of 10,000 into the same
// schema with the same pragmas: what SQLite does with nothing around it.
double plain_rate(const std::string& path, const std::vector<chat_row>& rows) {
  {
    parley::db::sqlite_db_handler h({.path = path});
    h.open("bench");
  }
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=NORMAL");
  db.exec("PRAGMA foreign_keys=ON");
  std::unordered_map<std::string, std::int64_t> ids;
  {
    SQLite::Statement s(db, "INSERT INTO session (agent_name, session_id, timestamp, last_activity) VALUES ('bench', ?, ?, ?)");
    db.exec("BEGIN");
    for (const auto& r : rows)
      if (!ids.count(r.session_id)) {
        s.reset();
        s.bind(1, r.session_id);
        s.bind(2, r.ts);
        s.bind(3, r.ts);
        s.exec();
        ids[r.session_id] = db.getLastInsertRowid();
      }
    db.exec("COMMIT");
  }
  SQLite::Statement ins(db, "INSERT INTO chat (session_id, type, content, is_user, timestamp) VALUES (?, ?, ?, ?, ?)");
  const auto t0 = steady::now();
  std::size_t n = 0;
  db.exec("BEGIN");
  for (const auto& r : rows) {
    ins.reset();
    ins.bind(1, ids[r.session_id]);
    ins.bindNoCopy(2, r.type);
    ins.bindNoCopy(3, r.content);
    ins.bind(4, r.is_user ? 1 : 0);
    ins.bindNoCopy(5, r.ts);
    ins.exec();
    if (++n % 10000 == 0) {
      db.exec("COMMIT");
      db.exec("BEGIN");
    }
  }
  db.exec("COMMIT");
  const double secs = seconds_since(t0);
  std::printf("plain:   %zu chat rows in %.3f s (one prepared INSERT, batches of 10,000)\n", rows.size(), secs);
  return static_cast<double>(rows.size()) / secs;
}

// (2) restore: R sessions persisted in state "waiting" with a dictionary and a pending
// after(1h) timer; a new agent brings every one back (as returning clients would).
void restore(const std::string& path, int n) {
  auto define = [](parley::agent& a) {
    auto& start = a.new_state("start", true);
    auto& waiting = a.new_state("waiting");
    start.set_body([](session& s) {
      s.set("name", "user " + s.id());
      s.set("count", 1);
    });
    start.go_to(waiting);
    waiting.after(std::chrono::hours(1)).go_to(start);
  };
  auto make = [&](parley::agent& a, std::shared_ptr<parley::callback_platform>& p) {
    a.config().set("agent.threads", 2, "bench");
    a.config().set("log.level", "warn", "bench");
    define(a);
    a.use_db(std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = path}));
    p = std::make_shared<parley::callback_platform>([](session&, const parley::reply&) {});
    a.use_platform(p);
    a.persist_sessions(true);
  };
  {
    parley::agent a("bench");
    std::shared_ptr<parley::callback_platform> p;
    make(a, p);
    a.start();
    const auto t0 = steady::now();
    latch idle(n);
    for (int i = 0; i < n; ++i)
      a.get_or_create_session("r" + std::to_string(i), p.get(), "u")->when_idle([&] { idle.hit(); });
    idle.wait();
    a.stop();
    a.wait();
    std::printf("persist: %d sessions started and recorded in %.3f s\n", n, seconds_since(t0));
  }
  parley::agent a("bench");
  std::shared_ptr<parley::callback_platform> p;
  make(a, p);
  const auto t0 = steady::now();
  a.start();
  const double start_secs = seconds_since(t0);
  latch idle(n);
  std::atomic<int> wrong{0};
  for (int i = 0; i < n; ++i) {
    auto s = a.get_or_create_session("r" + std::to_string(i), p.get(), "u");
    s->when_idle([&, s] {
      if (s->current_state().name() != "waiting" || s->get("count") != 1) ++wrong;
      idle.hit();
    });
  }
  idle.wait();
  const double secs = seconds_since(t0);
  a.stop();
  a.wait();
  std::printf("restore: %d persisted sessions back in state with dictionary and timer in %.3f s "
              "(agent start %.3f s; %.1f us per session; %d wrong)\n",
              n, secs, start_secs, secs * 1e6 / n, wrong.load());
}
}  // namespace

int main(int argc, char** argv) {
  int sessions = 1000, messages = 50, restore_n = 100000;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--sessions") sessions = std::atoi(argv[i + 1]);
    else if (f == "--messages") messages = std::atoi(argv[i + 1]);
    else if (f == "--restore") restore_n = std::atoi(argv[i + 1]);
    else if (f == "--dir") dir = argv[i + 1];
  }
  const auto base = std::filesystem::path(dir) / ("parley-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(base);
  std::vector<chat_row> rows;
  const double w = writer_rate((base / "writer.db").string(), sessions, messages, rows);
  const double p = plain_rate((base / "plain.db").string(), rows);
  std::printf("chat rows/s: writer %.0f, plain batched insert %.0f, ratio %.2f\n", w, p, w / p);
  if (restore_n > 0) restore((base / "restore.db").string(), restore_n);
  std::filesystem::remove_all(base);
  return 0;
}
