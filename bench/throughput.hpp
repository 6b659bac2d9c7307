#pragma once
// Events per second through sessions, each event a real move (transition, state switch, body),
// optionally with a trace sink: shared by bench_runtime and bench_telemetry.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>

namespace bench {

template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) std::this_thread::sleep_for(std::chrono::microseconds(200));  // benchmark polling only
}

inline std::shared_ptr<parley::callback_platform> quiet_platform() {
  return std::make_shared<parley::callback_platform>([](parley::session&, const parley::reply&) {});
}

// Returns events per second; prints a line starting with `label`.
inline double throughput(int sessions, int events, int threads, const char* label = "throughput",
                         std::shared_ptr<parley::trace_sink> sink = nullptr) {
  using namespace std::chrono;
  using parley::event;
  using parley::session;
  parley::agent a("bench");
  a.config().set("agent.threads", threads);
  a.config().set("log.level", "warn");
  a.config().set("agent.queue_capacity", 4096);
  auto p = quiet_platform();
  a.use_platform(p);
  if (sink) a.set_trace_sink(std::move(sink));
  std::atomic<long> handled{0};
  auto& s = a.new_state("s", true);
  auto& t = a.new_state("t");
  // Each event is a real move: record, switch state, run the body, check eventless ones.
  s.when_event("tick").go_to(t);
  t.when_event("tick").go_to(s);
  s.set_body([&](session&) { handled.fetch_add(1, std::memory_order_relaxed); });
  t.set_body([&](session&) { handled.fetch_add(1, std::memory_order_relaxed); });
  a.start();
  std::vector<std::shared_ptr<session>> all;
  for (int i = 0; i < sessions; ++i) all.push_back(a.get_or_create_session("s" + std::to_string(i), p.get()));
  wait_until([&] { return handled.load() == sessions; });
  handled = 0;
  const long total = static_cast<long>(sessions) * events;
  const event tick = event::custom("tick");
  auto t0 = steady_clock::now();
  // Rounds of 100 events per session keep every queue under its capacity.
  for (int done = 0; done < events; done += 100) {
    const int n = std::min(100, events - done);
    for (auto& ss : all)
      for (int k = 0; k < n; ++k) ss->post(tick);
    wait_until([&] { return handled.load() >= static_cast<long>(sessions) * (done + n) - sessions * 50; });
  }
  wait_until([&] { return handled.load() == total; });
  const double secs = duration<double>(steady_clock::now() - t0).count();
  std::printf("%s: %d sessions x %d events, %d worker threads: %.0f events/s (%.3f s)\n", label,
              sessions, events, threads, total / secs, secs);
  a.stop();
  a.wait();
  return total / secs;
}

}  // namespace bench
