#pragma once
// The WebSocket load generator's parts (closed-loop clients against the echo server or the
// greetings bot, latency and per-thread CPU per message), shared by bench_websocket and
// bench_inspector.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "thread_cpu.hpp"

namespace bench::ws {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

inline const std::string hello_frame =
    R"({"action":"user_message","message":"hello","history":false,"timestamp":null})";
inline const std::string good_frame =
    R"({"action":"user_message","message":"good","history":false,"timestamp":null})";
inline const std::string other_frame =
    R"({"action":"user_message","message":"tell me a joke","history":false,"timestamp":null})";

struct run_state {
  std::string prefix;  // session ids are new in every run: each conversation starts afresh
  bool bot = false;
  bool fallback = false;  // bot: always "tell me a joke": one fallback reply
  unsigned short port = 0;
  std::vector<unsigned short> ports;  // when given: connection i goes to ports[i % size]
  std::size_t ready = 0, failed = 0;
  bool measuring = false, stopping = false;
  std::uint64_t done = 0;
  std::vector<std::uint32_t> latency_us;
};

class client : public std::enable_shared_from_this<client> {
 public:
  client(net::io_context& io, run_state& st, std::size_t index, bool loop)
      : ws_(io), st_(st), index_(index), loop_(loop) {}

  void start() {
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"),
                      st_.ports.empty() ? st_.port : st_.ports[index_ % st_.ports.size()]),
        [self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->fail();
          self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
          beast::get_lowest_layer(self->ws_).expires_never();
          self->ws_.async_handshake("127.0.0.1", "/?session_id=" + self->st_.prefix + std::to_string(self->index_),
                                    [self](beast::error_code e) {
                                      if (e) return self->fail();
                                      if (self->st_.bot)
                                        self->read_greeting();
                                      else
                                        self->ready();
                                    });
        });
  }

  void close() {
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }

 private:
  void fail() {
    if (!st_.stopping) ++st_.failed;  // errors after the run are the closes
  }
  void read_greeting() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail();
      self->buf_.clear();
      self->ready();
    });
  }
  void ready() {
    ++st_.ready;
    if (loop_)
      send();
    else
      idle();
  }
  void idle() {  // keep a read pending, so the server's pings are answered
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->buf_.clear();
      self->idle();
    });
  }
  void send() {
    if (st_.stopping) return;
    const bool hello = !st_.bot || (!st_.fallback && turn_ % 2 == 0);
    expect_ = st_.bot && hello ? 2 : 1;
    got_ = 0;
    sent_ = steady::now();
    const std::string& frame = st_.fallback ? other_frame : hello ? hello_frame : good_frame;
    ws_.async_write(net::buffer(frame),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return self->fail();
                      self->receive();
                    });
  }
  void receive() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail();
      self->buf_.clear();
      if (++self->got_ < self->expect_) return self->receive();
      ++self->turn_;
      if (self->st_.measuring) {
        ++self->st_.done;
        self->st_.latency_us.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - self->sent_).count()));
      }
      self->send();
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  run_state& st_;
  std::size_t index_;
  bool loop_;
  int expect_ = 1, got_ = 0;
  std::uint64_t turn_ = 0;
  steady::time_point sent_;
};

// Runs `io` until `pred` or `limit`.
template <class Pred>
inline bool run_until(net::io_context& io, Pred pred, steady::duration limit) {
  const auto deadline = steady::now() + limit;
  while (!pred() && steady::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return pred();
}

inline std::vector<std::shared_ptr<client>> open_all(net::io_context& io, run_state& st, std::size_t n,
                                              bool loop) {
  std::vector<std::shared_ptr<client>> all;
  all.reserve(n);
  // Connect in waves so the listen backlog is never the bottleneck.
  for (std::size_t i = 0; i < n; ++i) {
    all.push_back(std::make_shared<client>(io, st, i, loop));
    all.back()->start();
    if ((i + 1) % 200 == 0)
      run_until(io, [&] { return st.ready + st.failed >= i + 1; }, std::chrono::seconds(30));
  }
  run_until(io, [&] { return st.ready + st.failed >= n; }, std::chrono::seconds(60));
  return all;
}

// Idle and iowait ticks of all cores (/proc/stat), and the number of cores they cover.
inline long idle_ticks() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  long user, nice, system, idle = 0, iowait = 0;
  f >> cpu >> user >> nice >> system >> idle >> iowait;
  return idle + iowait;
}

// Where the CPU went during a measured run: per message, for each server thread (by name)
// and the load generator; and how idle the machine's cores were.
struct cpu_report {
  std::vector<std::pair<std::string, double>> server_us;  // per message
  double generator_us = 0;
  double idle_pct = 0;  // of all cores
  void print(const char* label) const {
    std::printf("  %-13s", label);
    for (const auto& [name, us] : server_us) std::printf(" %s %.1f,", name.c_str(), us);
    std::printf(" load generator %.1f us per message; cores idle %.0f %%\n", generator_us, idle_pct);
  }
};

struct result {
  double msgs_per_s = 0, p50_ms = 0, p99_ms = 0;
  std::size_t failed = 0;
  cpu_report cpu;  // when the server's pid was given
};

// Measures a closed loop on connections that open_all made: a warm-up, then `seconds` of
// traffic; with the server's pid, its threads' CPU per message. Leaves the connections open.
inline result measure(net::io_context& io, run_state& st, double seconds, pid_t server = 0) {
  run_until(io, [] { return false; }, std::chrono::milliseconds(500));  // warm-up
  st.done = 0;
  st.latency_us.clear();
  st.measuring = true;
  st.latency_us.reserve(1 << 20);
  const auto server0 = server ? thread_cpu_by_name(server) : std::map<std::string, double>{};
  const auto self0 = thread_cpu_by_name(::getpid());
  const long idle0 = idle_ticks();
  const auto t0 = steady::now();
  run_until(io, [] { return false; }, std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds)));
  st.measuring = false;
  const double elapsed = std::chrono::duration<double>(steady::now() - t0).count();
  const long idle1 = idle_ticks();
  const auto self1 = thread_cpu_by_name(::getpid());
  const auto server1 = server ? thread_cpu_by_name(server) : std::map<std::string, double>{};
  result r;
  r.failed = st.failed;
  r.msgs_per_s = static_cast<double>(st.done) / elapsed;
  const double msgs = std::max<double>(1.0, static_cast<double>(st.done));
  auto used = [](const std::map<std::string, double>& a, const std::map<std::string, double>& b) {
    std::vector<std::pair<std::string, double>> out;  // CPU seconds per thread name
    for (const auto& [name, t] : b) {
      const auto it = a.find(name);
      const double d = t - (it == a.end() ? 0 : it->second);
      if (d > 0) out.emplace_back(name, d);
    }
    return out;
  };
  for (const auto& [name, d] : used(server0, server1)) r.cpu.server_us.emplace_back(name, d * 1e6 / msgs);
  for (const auto& [name, d] : used(self0, self1)) r.cpu.generator_us += d * 1e6 / msgs;
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  r.cpu.idle_pct = static_cast<double>(idle1 - idle0) / static_cast<double>(::sysconf(_SC_CLK_TCK)) /
                   (elapsed * cores) * 100.0;
  auto& v = st.latency_us;
  if (!v.empty()) {
    std::sort(v.begin(), v.end());
    r.p50_ms = v[v.size() / 2] / 1000.0;
    r.p99_ms = v[std::min(v.size() - 1, v.size() * 99 / 100)] / 1000.0;
  }
  return r;
}

/// Closes every connection and lets the closes go out.
inline void close_all(net::io_context& io, run_state& st, std::vector<std::shared_ptr<client>>& all) {
  st.stopping = true;
  for (auto& c : all) c->close();
  run_until(io, [] { return false; }, std::chrono::milliseconds(300));
}

}  // namespace bench::ws
