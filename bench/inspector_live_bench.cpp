// What live follow costs the writer (issue 15 section 6; bench_inspect times the reads).
//
//   bench_inspector_live [--seconds 5] [--connections 10] [--pages 10]
//
// The greetings bot recording to SQLite, --connections chat connections in a closed loop
// (bench/ws_load.hpp); measured once alone, then with --pages inspector pages following those
// sessions over /inspect/live. Prints messages/s and each of the bot's threads' CPU per message
// for both runs: the writer's ("parley-db") is the figure.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "bench_process.hpp"
#include "ws_load.hpp"

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using json = nlohmann::json;
using namespace bench::ws;

namespace {

struct options {
  double seconds = 5;
  std::size_t connections = 10;
  std::size_t pages = 10;
};

// ---- HTTP ------------------------------------------------------------------------------------

struct timed_get {
  std::string body;
  double round_trip_ms = 0;
  unsigned status = 0;
};

timed_get get(unsigned short port, const std::string& target) {
  net::io_context io;
  beast::tcp_stream s(io);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  const auto t0 = steady::now();
  http::write(s, req);
  http::read(s, buf, res);
  timed_get r;
  r.round_trip_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
  r.status = res.result_int();
  r.body = std::move(res.body());
  beast::error_code ignored;
  s.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return r;
}

// ---- 2. live pages ---------------------------------------------------------------------------

// One inspector page following a session: reads frames until closed.
struct page {
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  std::thread reader;
  std::atomic<long> frames{0};

  bool open(unsigned short port, long row) {
    beast::error_code ec;
    beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) ws.handshake("127.0.0.1", "/inspect/live?session=" + std::to_string(row), ec);
    if (ec) {
      std::fprintf(stderr, "inspector page for session %ld: %s\n", row, ec.message().c_str());
      return false;
    }
    reader = std::thread([this] {
      beast::flat_buffer b;
      beast::error_code e;
      while (!e) {
        ws.read(b, e);
        if (!e) ++frames;
        b.clear();
      }
    });
    return true;
  }
  void close() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (reader.joinable()) reader.join();
  }
};

void print(const char* label, const result& r) {
  std::printf("  %-22s %.0f msgs/s, p50 %.2f ms, p99 %.2f ms (%zu failed)\n", label, r.msgs_per_s,
              r.p50_ms, r.p99_ms, r.failed);
  r.cpu.print("  CPU/message");
}

int live_follow(const options& o, const fs::path& dir) {
  const unsigned short port = bench::free_port();
  const pid_t bot = bench::spawn({PARLEY_GREETINGS_BIN, "--port", std::to_string(port), "--db",
                                  (dir / "live.db").string(), "--set",
                                  "platforms.websocket.rate_limit=0", "--set", "log.level=warn"},
                                 (dir / "greetings.log").string());
  bench::wait_listening(port);
  net::io_context io(1);
  run_state st;
  st.prefix = "live-" + std::to_string(::getpid()) + "-";
  st.bot = true;
  st.port = port;
  auto all = open_all(io, st, o.connections, true);
  const result alone = measure(io, st, o.seconds, bot);
  // The sessions' rows in the file (the search matches an exact session id).
  std::vector<std::unique_ptr<page>> pages;
  for (std::size_t i = 0; i < o.pages; ++i) {
    const auto r = get(port, "/inspect/api/sessions?q=" + st.prefix + std::to_string(i % o.connections));
    long row = -1;
    try {
      const auto j = json::parse(r.body);
      if (!j.at("sessions").empty()) row = j["sessions"][0].at("row").get<long>();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sessions search: HTTP %u %s\n", r.status, e.what());
    }
    if (row < 0) break;
    pages.push_back(std::make_unique<page>());
    if (!pages.back()->open(port, row)) pages.pop_back();
  }
  const result followed = measure(io, st, o.seconds, bot);
  long frames = 0;
  for (auto& p : pages) {
    p->close();
    frames += p->frames.load();
  }
  close_all(io, st, all);
  bench::stop(bot);
  std::printf("\nlive follow: greetings with SQLite, %zu chat connections in a closed loop, %.0f s each\n",
              o.connections, o.seconds);
  print("no inspector pages", alone);
  print((std::to_string(pages.size()) + " pages following").c_str(), followed);
  std::printf("  the pages received %ld frames\n", frames);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") o.seconds = std::stod(v);
    else if (k == "--connections") o.connections = std::max<std::size_t>(1, std::stoul(v));
    else if (k == "--pages") o.pages = std::stoul(v);
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of inspector_live_bench.cpp)\n", k.c_str());
      return 2;
    }
  }
  const fs::path dir = fs::temp_directory_path() / ("parley-bench-inspector-live-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const int rc = live_follow(o, dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}
