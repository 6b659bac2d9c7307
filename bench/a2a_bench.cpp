// A2A round trips (issue 13 §5), all measured by one neutral driver in one run (a2a_driver.hpp:
// 100 keep-alive connections, a context each, JSON-RPC SendMessage one after another):
//   pair: a relay agent that, for each message, asks an echo agent over A2A and answers with its
//         reply. Parley: a relay agent (session.ask_agent) and an echo agent, each with its own
//         io thread(s), both recording to SQLite (agent_message rows keep the lineage). SDK:
//         @a2a-js/sdk 1.3.0 relay (its server and its client; tests/a2a/sdk_relay_agent.mjs)
//         and echo agent (tests/a2a/sdk_echo_agent.mjs), one node process each.
//   hop:  the echo agents alone (Parley's, the SDK's).
// Prints round trips per second, p50 and p99 of each, and the Parley/SDK ratios.
//   bench_a2a [--seconds S] [--sessions N] [--threads T] [--sdk-send] [--no-reuse]
// --sdk-send: the SDK relay asks with sendMessage instead of sendMessageStream.
// --no-reuse: the Parley relay opens a connection per request (platforms.a2a.max_idle_connections 0).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <parley/agent.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/config_keys.hpp>
#include <parley/platforms/websocket_platform.hpp>

#include "a2a_driver.hpp"
#include "bench_process.hpp"

namespace {

using parley::session;

std::shared_ptr<parley::db_handler> sqlite_at(const std::filesystem::path& p) {
  parley::db::sqlite_options o;
  o.path = p.string();
  return std::make_shared<parley::db::sqlite_db_handler>(std::move(o));
}

// A Parley agent on a free port, serving A2A, recording to `db`.
struct parley_agent {
  parley::agent agent;
  std::shared_ptr<parley::platforms::websocket_platform> ws;

  template <class Define>
  parley_agent(const std::string& name, int threads, const std::filesystem::path& db, Define define)
      : agent(name) {
    parley::platforms::declare_config(agent.config());
    agent.config().set("agent.threads", threads);
    agent.config().set("log.level", "error");
    define(agent);
    auto o = parley::platforms::websocket_options::from_config(agent.config());
    o.port = 0;
    o.rate_limit = 0;
    ws = std::make_shared<parley::platforms::websocket_platform>(o);
    agent.use_platform(ws);
    agent.use_db(sqlite_at(db));
    agent.start();
  }
  ~parley_agent() {
    agent.stop();
    agent.wait();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(ws->port()) + "/"; }
};

// Every message gets "echo: TEXT" back.
void define_echo(parley::agent& a) {
  auto& idle = a.new_state("idle", true);
  auto& echo = a.new_state("echo");
  echo.set_body([](session& s) { s.reply("echo: " + s.event().text()); });
  echo.go_to(idle);
  idle.when_event().go_to(echo);
}

// Every message goes to the echo agent over A2A; its reply is the answer. The A2A task of the
// turn ends once the echo agent's answer is in (the A2A server waits for the session's asks).
void define_relay(parley::agent& a, const std::string& echo_url) {
  auto& idle = a.new_state("idle", true);
  auto& ask = a.new_state("ask");
  auto& wait = a.new_state("wait");
  auto& answer = a.new_state("answer");
  auto& failed = a.new_state("failed");
  idle.when_event(parley::event_kind::text).go_to(ask);
  ask.set_body([echo_url](session& s) { s.ask_agent(echo_url, s.event().text()); });
  ask.go_to(wait);
  wait.when_agent_message().go_to(answer);
  wait.when_event("a2a_status").go_to(idle);
  wait.when_agent_error().go_to(failed);
  answer.set_body([](session& s) { s.reply(s.event().text()); });
  answer.go_to(wait);
  failed.set_body([](session& s) { s.reply("relay failed: " + s.event().payload().value("reason", "")); });
  failed.go_to(idle);
}

void print(const char* what, const bench::a2a_load& r) {
  std::printf("  %-44s %7.0f round trips/s  p50 %7.2f ms  p99 %7.2f ms  (%zu, %ld errors)\n", what,
              r.per_second, r.p50, r.p99, r.n, r.errors);
  if (!r.first_error.empty()) std::printf("    first error: %s\n", r.first_error.c_str());
}

double ratio(const bench::a2a_load& a, const bench::a2a_load& b) {
  return b.per_second > 0 ? a.per_second / b.per_second : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, sessions = 100, threads = 1;
  bool sdk_send = false, no_reuse = false;
  for (int i = 1; i < argc; ++i) {
    const auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (!std::strcmp(argv[i], "--seconds")) seconds = next();
    else if (!std::strcmp(argv[i], "--sessions")) sessions = next();
    else if (!std::strcmp(argv[i], "--threads")) threads = next();
    else if (!std::strcmp(argv[i], "--sdk-send")) sdk_send = true;
    else if (!std::strcmp(argv[i], "--no-reuse")) no_reuse = true;
    else {
      std::fprintf(stderr, "usage: bench_a2a [--seconds S] [--sessions N] [--threads T] [--sdk-send] [--no-reuse]\n");
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("parley-a2a-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto warmup = std::chrono::seconds(1);
  const auto measure = std::chrono::seconds(seconds);

  // The SDK agents, one node process each.
  const auto echo_port = bench::free_port();
  const pid_t sdk_echo = bench::spawn(
      {PARLEY_NODE, "--input-type=module", "-e",
       "import { startEchoAgents } from 'file://" PARLEY_SDK_ECHO "'; await startEchoAgents(" +
           std::to_string(echo_port) + ");"},
      (dir / "sdk-echo.log").string());
  bench::wait_listening(echo_port);
  const auto relay_port = bench::free_port();
  const pid_t sdk_relay = bench::spawn(
      {PARLEY_NODE, "--input-type=module", "-e",
       "import { startRelayAgent } from 'file://" PARLEY_SDK_RELAY "'; await startRelayAgent(" +
           std::to_string(relay_port) + ", 'http://127.0.0.1:" + std::to_string(echo_port) +
           "/', { stream: " + (sdk_send ? "false" : "true") + " });"},
      (dir / "sdk-relay.log").string());
  bench::wait_listening(relay_port);

  std::printf("A2A round trips: one driver, %d keep-alive connections with a context each, SendMessage; "
              "%d s after 1 s warm-up; %d io thread(s) per Parley agent, one node process per SDK agent\n",
              sessions, seconds, threads);
  bench::a2a_load parley_hop, sdk_hop, parley_pair, sdk_pair;
  {
    parley_agent echo("echo", threads, dir / "echo.db", define_echo);
    parley_hop = bench::drive_a2a(echo.ws->port(), "/a2a", sessions, warmup, measure, "echo: ping");
    print("hop:  Parley echo (SQLite)", parley_hop);
    parley_agent relay("relay", threads, dir / "relay.db",
                       [&](parley::agent& a) {
                         if (no_reuse) a.config().set("platforms.a2a.max_idle_connections", 0);
                         define_relay(a, echo.url());
                       });
    parley_pair = bench::drive_a2a(relay.ws->port(), "/a2a", sessions, warmup, measure, "echo: ping");
    print(no_reuse ? "pair: Parley relay -> Parley echo (no reuse)" : "pair: Parley relay -> Parley echo (lineage)",
          parley_pair);
  }
  sdk_hop = bench::drive_a2a(echo_port, "/rpc", sessions, warmup, measure, "echo: ping");
  print("hop:  SDK echo", sdk_hop);
  sdk_pair = bench::drive_a2a(relay_port, "/rpc", sessions, warmup, measure, "echo: ping");
  print(sdk_send ? "pair: SDK relay -> SDK echo (sendMessage)" : "pair: SDK relay -> SDK echo (stream)", sdk_pair);
  std::printf("  ratio, one hop (Parley / SDK): %.2fx\n", ratio(parley_hop, sdk_hop));
  std::printf("  ratio, pair (Parley / SDK), issue 13's figure: %.2fx\n", ratio(parley_pair, sdk_pair));
  bench::stop(sdk_relay);
  bench::stop(sdk_echo);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return parley_pair.errors == 0 && sdk_pair.errors == 0 ? 0 : 1;
}
