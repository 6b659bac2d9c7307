// The web inspector's costs (issue 15 section 6).
//
//   bench_inspector [--rows 1000000] [--repeat 20] [--seconds 5] [--connections 10] [--pages 10]
//
// 1. Reads: a SQLite file with --rows chat rows (100 sessions; one of them holds 10,000 rows of
//    chat, intent predictions and transitions, the others share the rest), written in bulk
//    into the schema the real handler makes; then `parley-inspect FILE serve` and, --repeat
//    times each, GETs of the sessions page, a search by user and the 10,000-row session's
//    timeline. Prints the server's time (its Server-Timing header) and the loopback round
//    trip, median and max.
// 2. Live follow: the greetings bot recording to SQLite, --connections chat connections in a
//    closed loop (bench/ws_load.hpp); measured once alone, then with --pages inspector pages
//    following those sessions over /inspect/live. Prints messages/s and each of the bot's
//    threads' CPU per message for both runs: the writer's ("parley-db") is the figure.
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

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <parley/db/sqlite_db_handler.hpp>
#include <parley/db/timestamp.hpp>

#include "bench_process.hpp"
#include "ws_load.hpp"

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using json = nlohmann::json;
using namespace bench::ws;

namespace {

struct options {
  long rows = 1'000'000;
  int repeat = 20;
  double seconds = 5;
  std::size_t connections = 10;
  std::size_t pages = 10;
};

// ---- 1. a big file ---------------------------------------------------------------------------

constexpr int sessions = 100;
constexpr int big_rows = 10'000;  // the session whose timeline is timed (row id 1)

void fill(const fs::path& file, long chat_rows) {
  {  // the schema, as the real handler makes it
    parley::db::sqlite_options o;
    o.path = file.string();
    parley::db::sqlite_db_handler h(std::move(o));
    h.open(std::string("greetings"));
    h.close();
  }
  SQLite::Database db(file.string(), SQLite::OPEN_READWRITE);
  db.exec("PRAGMA synchronous=OFF");
  SQLite::Transaction tx(db);
  const auto t0 = parley::wall_clock::now() - std::chrono::hours(24);
  auto ts = [&](long i) { return parley::db::format_timestamp(t0 + std::chrono::milliseconds(i * 20)); };
  long id = sessions;  // session rows are 1..100; every other row's id follows (one counter)
  SQLite::Statement s(db,
                      "INSERT INTO session (id, agent_name, session_id, username, platform_name, "
                      "timestamp, current_state, last_activity) VALUES (?, 'greetings', ?, ?, "
                      "'websocket', ?, ?, ?)");
  for (int i = 1; i <= sessions; ++i) {
    s.bind(1, i);
    s.bind(2, "fill-session-" + std::to_string(i));
    s.bind(3, "user-" + std::to_string(i));
    s.bind(4, ts(i));
    s.bind(5, i % 2 ? "greet" : "good");
    s.bind(6, ts(chat_rows + i));
    s.exec();
    s.reset();
  }
  SQLite::Statement chat(db,
                         "INSERT INTO chat (id, session_id, type, content, is_user, timestamp) "
                         "VALUES (?, ?, 'str', ?, ?, ?)");
  SQLite::Statement intent(db,
                           "INSERT INTO intent_prediction (id, session_id, message, timestamp, "
                           "intent_classifier, intent, score) VALUES (?, 1, 'hello', ?, 'simple', "
                           "'hello_intent', 0.93)");
  SQLite::Statement transition(db,
                               "INSERT INTO transition (id, session_id, source_state, dest_state, "
                               "event, condition, timestamp) VALUES (?, 1, 'greet', 'good', "
                               "'user_message', 'intent_matched(hello_intent)', ?)");
  auto add_chat = [&](int session, bool user, long i) {
    chat.bind(1, ++id);
    chat.bind(2, session);
    chat.bind(3, user ? "hello there, how are you today?" : "I am fine, thanks! How are you?");
    chat.bind(4, user ? 1 : 0);
    chat.bind(5, ts(i));
    chat.exec();
    chat.reset();
  };
  long written = 0;
  for (int i = 0; i < big_rows / 4; ++i, written += 2) {  // user, prediction, transition, reply
    add_chat(1, true, written);
    intent.bind(1, ++id);
    intent.bind(2, ts(written));
    intent.exec();
    intent.reset();
    transition.bind(1, ++id);
    transition.bind(2, ts(written));
    transition.exec();
    transition.reset();
    add_chat(1, false, written + 1);
  }
  for (long i = written; i < chat_rows; ++i) add_chat(2 + static_cast<int>(i % (sessions - 1)), i % 2 == 0, i);
  tx.commit();
  db.exec("ANALYZE");
}

// ---- HTTP ------------------------------------------------------------------------------------

struct timed_get {
  std::string body;
  double round_trip_ms = 0;
  double server_ms = -1;  // from Server-Timing, when sent
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
  if (auto h = res.find("Server-Timing"); h != res.end()) {
    const std::string v(h->value());
    if (const auto d = v.find("dur="); d != std::string::npos) r.server_ms = std::stod(v.substr(d + 4));
  }
  r.body = std::move(res.body());
  beast::error_code ignored;
  s.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return r;
}

void time_requests(unsigned short port, const char* what, const std::string& target, int repeat) {
  const auto first = get(port, target);  // warm the page cache
  if (first.status != 200) {
    std::printf("  %-34s HTTP %u: %.200s\n", what, first.status, first.body.c_str());
    return;
  }
  std::vector<double> rt, server;
  for (int i = 0; i < repeat; ++i) {
    const auto r = get(port, target);
    rt.push_back(r.round_trip_ms);
    if (r.server_ms >= 0) server.push_back(r.server_ms);
  }
  std::sort(rt.begin(), rt.end());
  std::sort(server.begin(), server.end());
  std::printf("  %-34s server %s ms (max %s), round trip %.1f ms (max %.1f), %zu KiB\n", what,
              server.empty() ? "?" : std::to_string(server[server.size() / 2]).substr(0, 6).c_str(),
              server.empty() ? "?" : std::to_string(server.back()).substr(0, 6).c_str(),
              rt[rt.size() / 2], rt.back(), first.body.size() / 1024);
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
    if (k == "--rows") o.rows = std::stol(v);
    else if (k == "--repeat") o.repeat = std::max(1, std::stoi(v));
    else if (k == "--seconds") o.seconds = std::stod(v);
    else if (k == "--connections") o.connections = std::max<std::size_t>(1, std::stoul(v));
    else if (k == "--pages") o.pages = std::stoul(v);
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of inspector_bench.cpp)\n", k.c_str());
      return 2;
    }
  }
  const fs::path dir = fs::temp_directory_path() / ("parley-bench-inspector-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto t0 = steady::now();
  fill(dir / "big.db", o.rows);
  std::printf("reads: %ld chat rows in %d sessions (one of %d rows), written in %.1f s, %.0f MiB\n",
              o.rows, sessions, big_rows, std::chrono::duration<double>(steady::now() - t0).count(),
              static_cast<double>(fs::file_size(dir / "big.db")) / (1 << 20));
  const unsigned short port = bench::free_port();
  const pid_t server = bench::spawn({PARLEY_INSPECT_BIN, (dir / "big.db").string(), "serve", "--port",
                                     std::to_string(port)},
                                    (dir / "serve.log").string());
  bench::wait_listening(port);
  time_requests(port, "sessions page (50)", "/inspect/api/sessions?limit=50", o.repeat);
  time_requests(port, "sessions page 2 (50)", "/inspect/api/sessions?offset=50&limit=50", o.repeat);
  time_requests(port, "search by user", "/inspect/api/sessions?q=user-42", o.repeat);
  time_requests(port, "10,000-row timeline", "/inspect/api/session/1?limit=20000", o.repeat);
  time_requests(port, "diagram SVG", "/inspect/api/diagram.svg?session=1", o.repeat);
  bench::stop(server);
  const int rc = live_follow(o, dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}
