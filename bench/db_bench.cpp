// DB benchmarks: (1) sustained chat rows per second through the writer while sessions reply,
// against a plain SQLite batched insert of the same rows in the same run; (2) time to restore
// 100,000 persisted sessions; (3) what a greetings turn costs the worker and the writer;
// (4) resumes: while sessions chat at full speed, others read their session and a page of
// history through the async reads, and the latency to the first result.
// Usage: bench_db [--sessions N] [--messages M] [--restore R] [--turn-sessions N]
//                 [--turn-messages M] [--resume N] [--resume-load N] [--dir D]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/db/timestamp.hpp>

#include <greetings_bot.hpp>

#include "thread_cpu.hpp"

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

// An agent defined by `define` on `threads` worker threads, recording to `path`, with `n`
// sessions started (their first bodies run and recorded).
struct recorded_agent {
  parley::agent a;
  std::shared_ptr<parley::db::sqlite_db_handler> db;
  std::shared_ptr<parley::callback_platform> platform;
  std::vector<std::shared_ptr<session>> sessions;

  recorded_agent(const std::string& name, const std::string& path, int threads, int n,
                 const std::function<void(parley::agent&)>& define)
      : a(name) {
    a.config().set("agent.threads", threads, "bench");
    a.config().set("log.level", "warn", "bench");
    define(a);
    db = std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = path});
    a.use_db(db);
    platform = std::make_shared<parley::callback_platform>([](session&, const parley::reply&) {});
    a.use_platform(platform);
    a.start();
    for (int i = 0; i < n; ++i)
      sessions.push_back(a.get_or_create_session("s" + std::to_string(i), platform.get(), "u"));
    latch started(n);
    for (auto& s : sessions) s->when_idle([&] { started.hit(); });
    started.wait();
    db->flush();
  }
};

// (1a) rows through the agent and the writer.
double writer_rate(const std::string& path, int sessions, int messages, std::vector<chat_row>& rows) {
  recorded_agent ra("bench", path, 2, sessions, define_echo);
  auto& a = ra.a;
  auto& db = ra.db;
  auto& ss = ra.sessions;
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

// (3) the greetings conversation recorded: N sessions each get M messages, alternately
// "hello" and "good" (as bench_websocket's greetings run, without the sockets), the agent on
// one thread. What one message costs the worker thread and the SQLite writer, in CPU time.
void turns(const std::string& path, int sessions, int messages) {
  recorded_agent ra("greetings", path, 1, sessions, greetings::define);
  auto& a = ra.a;
  auto& db = ra.db;
  auto& ss = ra.sessions;
  const double io0 = bench::thread_cpu("parley-io"), db0 = bench::thread_cpu("parley-db");
  const auto rows0 = db->stats().rows_written;
  const auto batches0 = db->stats().batches;
  const auto t0 = steady::now();
  // Closed loop, as WebSocket clients waiting for their answers: each session gets its next
  // message once it has answered the last one; the writer records meanwhile.
  latch done(sessions);
  std::function<void(session&, int)> next = [&](session& s, int k) {
    if (k == messages) return done.hit();
    (void)s.post(parley::event::text(k % 2 == 0 ? "hello" : "good", true));
    s.when_idle([&next, &s, k] { next(s, k + 1); });
  };
  for (auto& s : ss) next(*s, 0);
  done.wait();
  db->flush();
  const double secs = seconds_since(t0);
  const double io = bench::thread_cpu("parley-io") - io0, w = bench::thread_cpu("parley-db") - db0;
  const auto st = db->stats();
  const double n = static_cast<double>(sessions) * messages;
  a.stop();
  a.wait();
  std::printf("turns:   %d sessions x %d hello/good messages answered and recorded in %.3f s "
              "(%.0f messages/s)\n"
              "         per message: worker %.1f us CPU, SQLite writer %.1f us CPU; %.1f writes, "
              "%.0f writes per batch\n",
              sessions, messages, secs, n / secs, io * 1e6 / n, w * 1e6 / n,
              static_cast<double>(st.rows_written - rows0) / n,
              static_cast<double>(st.rows_written - rows0) /
                  static_cast<double>(std::max<std::uint64_t>(1, st.batches - batches0)));
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
// (4) resume: `resumers` sessions with a stored history come back while `load` sessions chat
// at full speed (closed loop, greetings, the agent on 2 threads, recording). Each comeback is
// what a resuming client costs the database: async_load_session, then async_chat_page of
// its first 50 messages, chained as the session would chain them. Timed from the call to the
// snapshot (the first result) and to the page. In two waves: all at once, then one every 5 ms.
void resume(const std::string& path, int resumers, int load) {
  constexpr int history_messages = 24;  // per resuming session: 61 chat rows
  constexpr std::size_t page = 50;
  auto old_id = [](int i) { return "old" + std::to_string(i); };
  {
    recorded_agent history("bench", path, 2, 0, greetings::define);
    auto* p = history.platform.get();
    latch done(resumers);
    std::vector<std::shared_ptr<session>> old;
    std::function<void(session&, int)> next = [&](session& s, int k) {
      if (k == history_messages) return done.hit();
      (void)s.post(parley::event::text(k % 2 == 0 ? "hello" : "good", true));
      s.when_idle([&next, &s, k] { next(s, k + 1); });
    };
    for (int i = 0; i < resumers; ++i)
      old.push_back(history.a.get_or_create_session(old_id(i), p, "u"));
    for (auto& s : old) s->when_idle([&next, &s] { next(*s, 0); });
    done.wait();
    history.db->flush();
    history.a.stop();
    history.a.wait();
  }

  recorded_agent ra("bench", path, 2, load, greetings::define);
  auto& db = *ra.db;
  // The resuming sessions' objects (for async_chat_page), made before the clock starts.
  std::vector<std::shared_ptr<session>> old;
  {
    latch idle(resumers);
    for (int i = 0; i < resumers; ++i) {
      old.push_back(ra.a.get_or_create_session(old_id(i), ra.platform.get(), "u"));
      old.back()->when_idle([&] { idle.hit(); });
    }
    idle.wait();
    db.flush();
  }

  // The load: every live session sends its next message as soon as it answered the last.
  std::atomic<bool> stop{false};
  std::atomic<long> answered{0};
  latch stopped(load);
  std::function<void(session&, int)> next = [&](session& s, int k) {
    if (stop) return stopped.hit();
    (void)s.post(parley::event::text(k % 2 == 0 ? "hello" : "good", true));
    s.when_idle([&next, &s, k, &answered] {
      ++answered;
      next(s, k + 1);
    });
  };
  for (auto& s : ra.sessions) next(*s, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the load reaches full speed

  auto wave = [&](const char* name, std::chrono::microseconds spacing) {
    std::vector<double> first(static_cast<std::size_t>(resumers)),
        whole(static_cast<std::size_t>(resumers));
    std::atomic<int> wrong{0};
    latch done(resumers);
    const auto w0 = steady::now();
    for (int i = 0; i < resumers; ++i) {
      if (spacing.count() > 0) std::this_thread::sleep_until(w0 + spacing * i);
      const auto t0 = steady::now();
      auto& s = *old[static_cast<std::size_t>(i)];
      const auto at = static_cast<std::size_t>(i);
      db.async_load_session(
          "bench", old_id(i),
          [&, t0, at](std::optional<parley::session_snapshot> snap, std::exception_ptr e) {
            first[at] = seconds_since(t0) * 1e3;
            if (e || !snap) ++wrong;
            db.async_chat_page(s, 0, page, std::nullopt,
                               [&, t0, at](std::vector<parley::chat_message> m, std::exception_ptr e2) {
                                 whole[at] = seconds_since(t0) * 1e3;
                                 if (e2 || m.size() != page) ++wrong;
                                 done.hit();
                               });
          });
    }
    done.wait();
    auto pct = [](std::vector<double> v, double q) {
      std::sort(v.begin(), v.end());
      return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
    };
    std::printf("resume:  %d sessions %s while %d sessions chat\n"
                "         snapshot (first result) p50 %.1f ms, p99 %.1f ms, max %.1f ms; with the "
                "first %zu messages p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d wrong\n",
                resumers, name, load, pct(first, 0.5), pct(first, 0.99),
                *std::max_element(first.begin(), first.end()), page, pct(whole, 0.5),
                pct(whole, 0.99), *std::max_element(whole.begin(), whole.end()), wrong.load());
  };
  const long answered0 = answered;
  const auto db0 = db.stats();
  const auto t0 = steady::now();
  wave("at once", std::chrono::microseconds(0));
  wave("one every 5 ms", std::chrono::microseconds(5000));
  const double secs = seconds_since(t0);
  const auto db1 = db.stats();
  std::printf("         the load meanwhile: %.0f messages/s answered, %.0f rows/s committed, "
              "%llu rows queued at most (db.max_queued %d)\n",
              static_cast<double>(answered - answered0) / secs,
              static_cast<double>(db1.rows_written - db0.rows_written) / secs,
              static_cast<unsigned long long>(db1.queue_high), 100000);
  stop = true;
  stopped.wait();
  ra.a.stop();
  ra.a.wait();
}
}  // namespace

int main(int argc, char** argv) {
  int sessions = 1000, messages = 50, restore_n = 100000, turn_sessions = 100, turn_messages = 1000;
  int resumers = 100, resume_load = 100;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--sessions") sessions = std::atoi(argv[i + 1]);
    else if (f == "--messages") messages = std::atoi(argv[i + 1]);
    else if (f == "--restore") restore_n = std::atoi(argv[i + 1]);
    else if (f == "--dir") dir = argv[i + 1];
    else if (f == "--turn-sessions") turn_sessions = std::atoi(argv[i + 1]);
    else if (f == "--turn-messages") turn_messages = std::atoi(argv[i + 1]);
    else if (f == "--resume") resumers = std::atoi(argv[i + 1]);
    else if (f == "--resume-load") resume_load = std::atoi(argv[i + 1]);
  }
  const auto base = std::filesystem::path(dir) / ("parley-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(base);
  if (turn_sessions > 0) turns((base / "turns.db").string(), turn_sessions, turn_messages);
  if (sessions > 0) {
    std::vector<chat_row> rows;
    const double w = writer_rate((base / "writer.db").string(), sessions, messages, rows);
    const double p = plain_rate((base / "plain.db").string(), rows);
    std::printf("chat rows/s: writer %.0f, plain batched insert %.0f, ratio %.2f\n", w, p, w / p);
  }
  if (restore_n > 0) restore((base / "restore.db").string(), restore_n);
  if (resumers > 0) resume((base / "resume.db").string(), resumers, resume_load);
  std::filesystem::remove_all(base);
  return 0;
}
