// WebSocket load generator: closed loop (each connection sends, waits for its whole answer,
// sends again), messages per second and p50/p99 latency; and idle connections' memory.
//
//   bench_websocket                      the whole suite: starts the echo server and the
//                                        greetings bot itself, 1/100/1000 connections each,
//                                        then 10,000 idle connections; prints a table
//   bench_websocket --port P --mode echo|bot|fallback --connections N [--seconds S] [--pid PID]
//                                        (with the server's PID: its threads' CPU per message)
//   bench_websocket --port P --mode echo|bot --idle N --pid PID
//   bench_websocket [--seconds S] [--threads N] [--idle N] [--rounds R]
//                                        the suite with other settings (R: rounds of echo and
//                                        greetings back to back at 100 connections, for the
//                                        ratio's median and spread; default 5, 0 for none)
//
// Against the bot a "message" is one turn of the greetings conversation: "hello" (answered
// by two frames: the question and the options) and "good" (one frame), alternately. Against
// the echo server it is the same JSON frame, echoed once. "fallback" sends the bot only "tell me a
// joke", which it answers with one fallback frame (intent recognition, no transition).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_process.hpp"
#include "thread_cpu.hpp"
#include "ws_load.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

using bench::free_port;
using bench::spawn;
using bench::stop;
using bench::wait_listening;
using namespace bench::ws;

int g_runs = 0;  // single-threaded: the load generator runs one io_context at a time

result closed_loop(unsigned short port, bool bot, std::size_t n, double seconds,
                   bool fallback = false, pid_t server = 0) {
  net::io_context io(1);
  run_state st;
  st.fallback = fallback;
  st.prefix = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(++g_runs) + "-";
  st.bot = bot;
  st.port = port;
  auto all = open_all(io, st, n, true);
  const result r = measure(io, st, seconds, server);
  close_all(io, st, all);
  return r;
}

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Opens n idle connections and reports the server's memory growth per connection.
double idle_memory(unsigned short port, bool bot, std::size_t n, pid_t pid, std::size_t* opened) {
  net::io_context io(1);
  run_state st;
  st.prefix = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(++g_runs) + "-";
  st.bot = bot;
  st.port = port;
  run_until(io, [] { return false; }, std::chrono::milliseconds(300));
  const long before = rss_kib(pid);
  auto all = open_all(io, st, n, false);
  run_until(io, [] { return false; }, std::chrono::milliseconds(1000));  // settle
  const long after = rss_kib(pid);
  *opened = st.ready;
  st.stopping = true;
  for (auto& c : all) c->close();
  run_until(io, [] { return false; }, std::chrono::milliseconds(1000));
  return st.ready ? static_cast<double>(after - before) / static_cast<double>(st.ready) : 0.0;
}

#if defined(PARLEY_ECHO_BIN) && defined(PARLEY_GREETINGS_BIN)
int suite(double seconds, std::size_t idle_n, int server_threads, int rounds) {
  const std::string tmp = "/tmp/parley-bench-" + std::to_string(::getpid());
  std::system(("mkdir -p " + tmp).c_str());
  const unsigned short echo_port = free_port(), bot_port = free_port();
  const std::string threads = std::to_string(server_threads);
  const pid_t echo = spawn({PARLEY_ECHO_BIN, "--port", std::to_string(echo_port), "--threads", threads},
                           tmp + "/echo.log");
  const pid_t bot = spawn({PARLEY_GREETINGS_BIN, "--port", std::to_string(bot_port), "--threads", threads,
                           "--db", tmp + "/bench.db", "--log-level", "warn",
                           "--set", "platforms.websocket.rate_limit=0",
                           "--set", "platforms.websocket.max_connections=20000"},
                          tmp + "/bot.log");
  wait_listening(echo_port);
  wait_listening(bot_port);
  std::printf("server threads: %d each; load generator: 1 thread; %.0f s per run; cores: %u\n\n",
              server_threads, seconds, std::thread::hardware_concurrency());
  std::printf("greetings: hello/good turns (1.5 reply frames per message); greetings-fb: a\n"
              "message the bot answers with its fallback (1 frame, as echo)\n\n");
  std::printf("%-14s %8s %12s %9s %9s %12s\n", "server", "conns", "msgs/s", "p50 ms", "p99 ms", "x echo");
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{1000}}) {
    const result e = closed_loop(echo_port, false, n, seconds, false, echo);
    const result b = closed_loop(bot_port, true, n, seconds, false, bot);
    const result f = closed_loop(bot_port, true, n, seconds, true, bot);
    const double base = e.msgs_per_s > 0 ? e.msgs_per_s : 1.0;
    std::printf("%-14s %8zu %12.0f %9.3f %9.3f %12s\n", "echo", n, e.msgs_per_s, e.p50_ms, e.p99_ms, "");
    std::printf("%-14s %8zu %12.0f %9.3f %9.3f %12.2f\n", "greetings", n, b.msgs_per_s, b.p50_ms,
                b.p99_ms, b.msgs_per_s / base);
    std::printf("%-14s %8zu %12.0f %9.3f %9.3f %12.2f\n", "greetings-fb", n, f.msgs_per_s, f.p50_ms,
                f.p99_ms, f.msgs_per_s / base);
    if (e.failed || b.failed || f.failed)
      std::printf("  (failed connections: echo %zu, bot %zu, fallback %zu)\n", e.failed, b.failed, f.failed);
    if (n == 100) {
      // Where the time goes: the ratio is what the CPU per message allows on these cores.
      std::printf("  thread CPU per message (/proc), us:\n");
      e.cpu.print("echo");
      b.cpu.print("greetings");
      f.cpu.print("greetings-fb");
    }
    std::fflush(stdout);
  }
  if (rounds > 0) {
    // This VM's speed drifts by 10-40 % within minutes: one pair of runs can land on either
    // side of a drift. Rounds of back-to-back pairs give the ratio's spread, and its median.
    std::vector<double> ratios;
    for (int i = 0; i < rounds; ++i) {
      const result e = closed_loop(echo_port, false, 100, seconds, false);
      const result b = closed_loop(bot_port, true, 100, seconds, false);
      if (e.msgs_per_s > 0) ratios.push_back(b.msgs_per_s / e.msgs_per_s);
    }
    std::sort(ratios.begin(), ratios.end());
    if (!ratios.empty())
      std::printf("\ngreetings / echo at 100 connections, %zu rounds of back-to-back runs: median "
                  "%.2f (%.2f to %.2f)\n", ratios.size(), ratios[ratios.size() / 2], ratios.front(),
                  ratios.back());
  }
  if (idle_n) {
    std::size_t opened_b = 0, opened_e = 0;
    const double kb_bot = idle_memory(bot_port, true, idle_n, bot, &opened_b);
    const double kb_echo = idle_memory(echo_port, false, idle_n, echo, &opened_e);
    std::printf("\nidle connections: greetings %zu open, %.1f KiB each (connection + session); "
                "echo %zu open, %.1f KiB each\n", opened_b, kb_bot, opened_e, kb_echo);
  }
  stop(echo);
  stop(bot);
  std::system(("rm -rf " + tmp).c_str());
  return 0;
}
#else
int suite(double, std::size_t, int, int) {
  std::fprintf(stderr, "built without the examples: give --port (see websocket_bench.cpp)\n");
  return 2;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  unsigned short port = 0;
  bool bot = false, fallback = false;
  std::size_t conns = 0, idle = 0, suite_idle = 10000;
  double seconds = 3;
  int threads = 1, rounds = 5;
  pid_t pid = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") port = static_cast<unsigned short>(std::stoi(v));
    else if (k == "--mode") { bot = v != "echo"; fallback = v == "fallback"; }
    else if (k == "--connections") conns = std::stoul(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--idle") idle = suite_idle = std::stoul(v);
    else if (k == "--pid") pid = std::stoi(v);
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--rounds") rounds = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of websocket_bench.cpp)\n", k.c_str());
      return 2;
    }
  }
  if (!port) return suite(seconds, suite_idle, threads, rounds);
  if (idle) {
    std::size_t opened = 0;
    const double kb = idle_memory(port, bot, idle, pid, &opened);
    std::printf("%zu idle connections open, %.1f KiB each\n", opened, kb);
    return 0;
  }
  const result r = closed_loop(port, bot, conns ? conns : 1, seconds, fallback, pid);
  std::printf("%zu connections: %.0f msgs/s, p50 %.3f ms, p99 %.3f ms (%zu failed)\n", conns,
              r.msgs_per_s, r.p50_ms, r.p99_ms, r.failed);
  if (pid) r.cpu.print("server");
  return 0;
}
