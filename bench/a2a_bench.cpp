// A2A round trips: a Parley agent (the driver) whose N sessions each ask a peer over A2A
// (session::ask_agent: card, SendStreamingMessage, SSE back), again as soon as the answer's
// final state arrives. The peer is first a Parley agent (in this process, its own io_context),
// then an @a2a-js/sdk 1.3.0 echo agent (node + express; tests/a2a/sdk_echo_agent.mjs), driven
// by the same driver in the same run. Prints round trips per second, p50 and p99 for each, and
// the ratio. Both Parley agents record to SQLite files (agent_message rows keep the lineage).
//   bench_a2a [--seconds S] [--sessions N] [--threads T]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/log.hpp>
#include <parley/platforms/a2a_client.hpp>
#include <parley/platforms/config_keys.hpp>
#include <parley/platforms/websocket_platform.hpp>

#include "bench_process.hpp"

namespace {

using parley::session;
using steady = std::chrono::steady_clock;

struct results {
  std::mutex mu;
  std::vector<double> ms;
  std::atomic<long> errors{0};
  std::atomic<bool> counting{false};
};

std::shared_ptr<parley::db_handler> sqlite_at(const std::filesystem::path& p) {
  parley::db::sqlite_options o;
  o.path = p.string();
  return std::make_shared<parley::db::sqlite_db_handler>(std::move(o));
}

// The driver: each session asks `url`, and asks again when the task's final state comes back.
struct driver {
  parley::agent agent{"driver"};
  results r;

  driver(const std::string& url, int threads, const std::filesystem::path& db) {
    parley::platforms::declare_config(agent.config());
    agent.config().set("agent.threads", threads);
    agent.config().set("log.level", "error");
    agent.config().set("agent.queue_capacity", 100000);
    auto& start = agent.new_state("start", true);
    auto& wait = agent.new_state("wait");
    auto& again = agent.new_state("again");
    const auto ask = [url](session& s) {
      s.set("t0", std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count());
      s.ask_agent(url, "ping");
    };
    start.set_body(ask);
    start.go_to(wait);
    // The final state (a custom event, no lineage): the next ask starts a new chain, depth 1.
    again.set_body([this, ask](session& s) {
      if (s.event().name() == parley::agent_error_event) {
        ++r.errors;
      } else if (r.counting.load()) {
        const auto t0 = s.get("t0").get<std::int64_t>();
        const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
        std::lock_guard lock(r.mu);
        r.ms.push_back(static_cast<double>(now - t0) / 1e6);
      }
      ask(s);
    });
    again.go_to(wait);
    wait.when_event("a2a_status").go_to(again);
    wait.when_agent_error().go_to(again);
    wait.when_agent_message().go_to(wait);  // the answer's parts come before its final state
    agent.use_platform(std::make_shared<parley::callback_platform>([](session&, const parley::reply&) {}));
    agent.use_db(sqlite_at(db));
    parley::platforms::use_a2a_agents(agent, parley::platforms::a2a_options::from_config(agent.config()));
    agent.start();
  }
  ~driver() {
    agent.stop();
    agent.wait();
  }
};

struct measured {
  double per_second, p50, p99;
  std::size_t n;
  long errors;
};

measured run(const std::string& url, int sessions, int seconds, int threads, const std::filesystem::path& db) {
  driver d(url, threads, db);
  for (int i = 0; i < sessions; ++i) d.agent.get_or_create_session("s" + std::to_string(i), d.agent.platforms().front().get());
  std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up: cards fetched, sockets in use
  d.r.counting = true;
  const auto t0 = steady::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  d.r.counting = false;
  const double elapsed = std::chrono::duration<double>(steady::now() - t0).count();
  std::vector<double> ms;
  {
    std::lock_guard lock(d.r.mu);
    ms = d.r.ms;
  }
  std::sort(ms.begin(), ms.end());
  const auto pct = [&](double p) { return ms.empty() ? 0.0 : ms[static_cast<std::size_t>(p * (ms.size() - 1))]; };
  return {static_cast<double>(ms.size()) / elapsed, pct(0.5), pct(0.99), ms.size(), d.r.errors.load()};
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, sessions = 100, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sessions")) sessions = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  const auto dir = std::filesystem::temp_directory_path() / ("parley-a2a-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  // The Parley peer: every message gets "echo: TEXT" back.
  parley::agent peer("echo");
  parley::platforms::declare_config(peer.config());
  peer.config().set("agent.threads", threads);
  peer.config().set("log.level", "error");
  auto& idle = peer.new_state("idle", true);
  auto& echo = peer.new_state("echo");
  echo.set_body([](session& s) { s.reply("echo: " + s.event().text()); });
  echo.go_to(idle);
  idle.when_event().go_to(echo);
  parley::platforms::websocket_options o;
  o.port = 0;
  o.rate_limit = 0;
  auto ws = std::make_shared<parley::platforms::websocket_platform>(o);
  peer.use_platform(ws);
  peer.use_db(sqlite_at(dir / "peer.db"));
  peer.start();
  const std::string parley_url = "http://127.0.0.1:" + std::to_string(ws->port()) + "/";

  // The SDK peer, in node.
  const auto sdk_port = bench::free_port();
  const std::string script = "import { startEchoAgents } from 'file://" PARLEY_SDK_ECHO "';"
                             " await startEchoAgents(" + std::to_string(sdk_port) + ");";
  const pid_t node = bench::spawn({PARLEY_NODE, "--input-type=module", "-e", script}, (dir / "sdk.log").string());
  bench::wait_listening(sdk_port);
  const std::string sdk_url = "http://127.0.0.1:" + std::to_string(sdk_port) + "/";

  std::printf("A2A round trips, %d sessions of one Parley driver asking, %d s each, %d io thread(s) per Parley agent\n",
              sessions, seconds, threads);
  const auto p = run(parley_url, sessions, seconds, threads, dir / "driver1.db");
  std::printf("  Parley -> Parley: %8.0f round trips/s  p50 %6.2f ms  p99 %6.2f ms  (%zu, %ld errors)\n",
              p.per_second, p.p50, p.p99, p.n, p.errors);
  const auto s = run(sdk_url, sessions, seconds, threads, dir / "driver2.db");
  std::printf("  Parley -> SDK   : %8.0f round trips/s  p50 %6.2f ms  p99 %6.2f ms  (%zu, %ld errors)\n",
              s.per_second, s.p50, s.p99, s.n, s.errors);
  std::printf("  ratio (Parley peer / SDK peer throughput): %.2fx\n", s.per_second > 0 ? p.per_second / s.per_second : 0.0);
  bench::stop(node);
  peer.stop();
  peer.wait();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
