// Round trips between two Parley agents over BAF's WebSocket way (issue 13 §5): a front desk
// whose sessions each send_to_agent a specialist on loopback and wait for its answer, then
// send the next. Prints round trips per second and p50/p99 latency. Both agents record every
// agent message with its lineage in their own SQLite file (pass --no-db to leave that out).
//   bench_agents [--sessions N] [--trips N] [--threads N] [--no-db]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/websocket_agents.hpp>
#include <parley/platforms/websocket_platform.hpp>

namespace {
using steady = std::chrono::steady_clock;

std::shared_ptr<parley::db::sqlite_db_handler> sqlite(const std::string& path) {
  parley::db::sqlite_options o;
  o.path = path;
  return std::make_shared<parley::db::sqlite_db_handler>(o);
}
}  // namespace

int main(int argc, char** argv) {
  int sessions = 100, trips = 200, threads = 1;
  bool db = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--sessions") sessions = next();
    else if (a == "--trips") trips = next();
    else if (a == "--threads") threads = next();
    else if (a == "--no-db") db = false;
    else {
      std::fprintf(stderr, "usage: bench_agents [--sessions N] [--trips N] [--threads N] [--no-db]\n");
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("parley-bench-agents-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  // The specialist: answers every agent message.
  parley::agent b("specialist");
  b.config().set("agent.threads", threads);
  const char* level = std::getenv("PARLEY_LOG_LEVEL");
  b.config().set("log.level", level ? level : "error");
  {
    auto& start = b.new_state("start", true);
    auto& answer = b.new_state("answer");
    start.when_agent_message().go_to(answer);
    answer.set_body([](parley::session& s) { s.reply("answer to " + s.event().text()); });
    answer.go_to(start);
  }
  parley::platforms::websocket_options wo;
  wo.port = 0;
  wo.rate_limit = 0;  // one agent's link is not a person typing
  auto wp = std::make_shared<parley::platforms::websocket_platform>(wo);
  b.use_platform(wp);
  if (db) b.use_db(sqlite((dir / "b.db").string()));
  b.start();
  const std::string url = "ws://127.0.0.1:" + std::to_string(wp->port()) + "/";

  // The desk: a human message goes to the specialist; the answer ends the round trip.
  std::vector<steady::time_point> sent(static_cast<std::size_t>(sessions));
  std::vector<int> done_trips(static_cast<std::size_t>(sessions), 0);
  std::vector<double> latencies;
  std::mutex m;
  std::atomic<int> finished{0};
  parley::agent a("desk");
  a.config().set("agent.threads", threads);
  a.config().set("log.level", level ? level : "error");
  {
    auto& start = a.new_state("start", true);
    auto& ask = a.new_state("ask");
    auto& got = a.new_state("got");
    start.when_agent_message().go_to(got);
    start.when_agent_error().go_to(got);  // a failure ends the round trip too (and shows)
    start.when_event(parley::event_kind::text).go_to(ask);
    ask.set_body([&](parley::session& s) { s.send_to_agent(url, s.event().text()); });
    got.set_body([](parley::session& s) {
      if (s.event().name() == parley::agent_error_event)
        std::fprintf(stderr, "agent_error: %s\n", s.event().payload().dump().c_str());
      s.reply(s.event().text());
    });
    ask.go_to(start);
    got.go_to(start);
  }
  std::shared_ptr<parley::callback_platform> cp;
  cp = std::make_shared<parley::callback_platform>([&](parley::session& s, const parley::reply&) {
    const auto i = static_cast<std::size_t>(std::stoi(s.id()));
    const auto now = steady::now();
    bool again = false;
    {
      std::lock_guard l(m);
      latencies.push_back(std::chrono::duration<double, std::micro>(now - sent[i]).count());
      again = ++done_trips[i] < trips;
      if (again) sent[i] = steady::now();
    }
    if (again) (void)s.post(parley::event::text("q"));
    else ++finished;
  });
  a.use_platform(cp);
  parley::platforms::use_websocket_agents(a);  // the desk serves no WebSocket port itself
  if (db) a.use_db(sqlite((dir / "a.db").string()));
  a.start();

  const auto t0 = steady::now();
  for (int i = 0; i < sessions; ++i) {
    auto s = a.get_or_create_session(std::to_string(i), cp.get());
    {
      std::lock_guard l(m);
      sent[static_cast<std::size_t>(i)] = steady::now();
    }
    (void)s->post(parley::event::text("q"));
  }
  const auto deadline = t0 + std::chrono::seconds(300);
  while (finished.load() < sessions && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the driver polls; no test
  const double secs = std::chrono::duration<double>(steady::now() - t0).count();
  a.stop();
  a.wait();
  b.stop();
  b.wait();
  std::lock_guard l(m);
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0 : latencies[std::min(latencies.size() - 1,
                                                        static_cast<std::size_t>(p * latencies.size()))];
  };
  std::printf("BAF WebSocket way, %d sessions x %d round trips, %d thread(s) per agent, %s\n",
              sessions, trips, threads, db ? "lineage recorded in SQLite" : "no DB");
  std::printf("round trips: %zu in %.2f s = %.0f/s; latency p50 %.2f ms, p99 %.2f ms\n",
              latencies.size(), secs, static_cast<double>(latencies.size()) / secs,
              pct(0.50) / 1000.0, pct(0.99) / 1000.0);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return finished.load() == sessions ? 0 : 1;
}
