// Runtime benchmarks (no DB, no network): events per second through sessions, memory per
// idle session, and timer lateness. Prints numbers; asserts nothing.
//   bench_runtime [--sessions N] [--events N] [--threads N] [--idle N] [--timers N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>

#include "throughput.hpp"

using namespace std::chrono;
using parley::event;
using parley::session;

namespace {

using bench::quiet_platform;
using bench::wait_until;

long rss_kib() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void idle_memory(int sessions) {
  parley::agent a("bench");
  a.config().set("agent.threads", 2);
  a.config().set("log.level", "warn");
  auto p = quiet_platform();
  a.use_platform(p);
  std::atomic<int> started{0};
  auto& s = a.new_state("idle", true);
  s.set_body([&](session&) { started.fetch_add(1, std::memory_order_relaxed); });
  s.when_event("wake").go_to(s);
  a.start();
  std::vector<std::string> ids;
  ids.reserve(static_cast<std::size_t>(sessions));
  for (int i = 0; i < sessions; ++i) ids.push_back("user-" + std::to_string(i));
  const long before = rss_kib();
  auto t0 = steady_clock::now();
  for (const auto& id : ids) a.get_or_create_session(id, p.get());
  wait_until([&] { return started.load() == sessions; });
  const double secs = duration<double>(steady_clock::now() - t0).count();
  const long after = rss_kib();
  std::printf("idle sessions: %d alive, %.0f bytes each (RSS +%ld KiB), created and started in %.3f s (%.0f/s)\n",
              sessions, (after - before) * 1024.0 / sessions, after - before, secs, sessions / secs);
  a.stop();
  a.wait();
}

void timer_lateness(int sessions) {
  parley::agent a("bench");
  a.config().set("agent.threads", 2);
  a.config().set("log.level", "warn");
  auto p = quiet_platform();
  a.use_platform(p);
  std::mutex m;
  std::vector<double> late_ms;
  late_ms.reserve(static_cast<std::size_t>(sessions));
  std::atomic<int> fired{0};
  auto& start = a.new_state("start", true);
  auto& done = a.new_state("done");
  // 101 waiting states time out after 100..200 ms; each session picks one by its number.
  for (int k = 0; k <= 100; ++k) {
    auto& w = a.new_state("wait" + std::to_string(k));
    const auto d = milliseconds(100 + k);
    w.after(d).go_to(done);
    w.set_exit_action([&, d](session& s) {
      const double late = duration<double, std::milli>(parley::clock::now() - (s.entered_at() + d)).count();
      std::lock_guard l(m);
      late_ms.push_back(late);
    });
    start.when_condition([k](session& s) { return std::hash<std::string>{}(s.id()) % 101 == static_cast<std::size_t>(k); })
        .go_to(w);
  }
  done.set_body([&](session&) { fired.fetch_add(1); });
  a.start();
  for (int i = 0; i < sessions; ++i) a.get_or_create_session("t" + std::to_string(i), p.get());
  wait_until([&] { return fired.load() == sessions; });
  std::sort(late_ms.begin(), late_ms.end());
  auto pct = [&](double q) { return late_ms[static_cast<std::size_t>(q * (late_ms.size() - 1))]; };
  std::printf("timer lateness: %d sessions timing out after 100-200 ms: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
              sessions, pct(0.5), pct(0.99), late_ms.back());
  a.stop();
  a.wait();
}

}  // namespace

int main(int argc, char** argv) {
  int sessions = 1000, events = 1000, threads = 2, idle = 100000, timers = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int v = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sessions")) sessions = v;
    else if (!std::strcmp(argv[i], "--events")) events = v;
    else if (!std::strcmp(argv[i], "--threads")) threads = v;
    else if (!std::strcmp(argv[i], "--idle")) idle = v;
    else if (!std::strcmp(argv[i], "--timers")) timers = v;
  }
  bench::throughput(sessions, events, threads);
  idle_memory(idle);
  timer_lateness(timers);
}
