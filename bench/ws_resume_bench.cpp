// Resuming sessions under load (issue 12 §4), end to end over WebSocket: how long a client
// that comes back to a stored session waits for its first reply while 100 other connections
// chat at full speed. Every resumed session must be read from SQLite: they are made in a first
// run of the greetings bot, which is then stopped and started again on the same file.
//
//   bench_ws_resume [--resume N] [--load M] [--history T] [--threads K] [--gap-ms G]
//                   [--seconds S] [--readers R] [--greetings PATH] [--set KEY=VALUE ...]
//                   [--trace-ms X]   (also print the timeline of each client slower than X ms)
//
//   1. greetings (persist_sessions on, SQLite in a temp dir, rate limit off) on a free port;
//      2N clients each chat T messages (hello/good, so each session ends in `ready`) and leave.
//   2. The bot is stopped (SIGTERM: it commits what it recorded) and started again.
//   3. M load clients chat in a closed loop (the greetings conversation, as bench_websocket);
//      after a 1 s warm-up their rate is measured for S seconds.
//   4. Two waves of N resuming clients (the first N sessions all at once, then the other N
//      one every G ms), each on the load generator's second thread: connect with
//      ?session_id=, send "hello" as soon as the 101 is in, time the first frame back. Printed:
//      p50 / p99 / max from the send, and from the connect; the load's rate during the wave.
//   5. The control: the first wave's sessions again, all at once, now in memory (no database
//      read; their state is `ask`, so the first frame is the fallback).
//
// A resumed session is in `ready`, so its first frame is "Hello! How are you?"; a session that
// was not found would greet first ("Hi! I'm the greetings bot"): such clients are counted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "bench_process.hpp"
#include "ws_load.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

using bench::ws::good_frame;
using bench::ws::hello_frame;
using bench::ws::run_until;

double ms(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

tcp::endpoint server(unsigned short port) { return {net::ip::make_address("127.0.0.1"), port}; }

// ---- chatting clients: the load, and the makers of the stored sessions ----------------------

struct chat_state {
  unsigned short port = 0;
  std::uint64_t turns = 0;  // per client, then it leaves; 0: until `stopping`
  std::atomic<std::size_t> ready{0}, left{0}, failed{0};
  std::atomic<std::uint64_t> done{0};  // turns answered, all clients
  std::atomic<bool> stopping{false};
};

// Closed loop: sends "hello" (two reply frames) or "good" (one), waits for the whole answer,
// sends again. A new session greets first.
class chatter : public std::enable_shared_from_this<chatter> {
 public:
  chatter(net::io_context& io, chat_state& st, std::string id) : ws_(io), st_(st), id_(std::move(id)) {}

  void start() {
    beast::get_lowest_layer(ws_).async_connect(server(st_.port), [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail();
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.async_handshake("127.0.0.1", "/?session_id=" + self->id_, [self](beast::error_code e) {
        if (e) return self->fail();
        self->ws_.async_read(self->buf_, [self](beast::error_code e2, std::size_t) {  // the greeting
          if (e2) return self->fail();
          self->buf_.clear();
          ++self->st_.ready;
          self->send();
        });
      });
    });
  }

 private:
  void fail() {
    if (!st_.stopping) ++st_.failed;
    ++st_.left;
  }
  void send() {
    if (st_.stopping || (st_.turns && turn_ == st_.turns)) return leave();
    const bool hello = turn_ % 2 == 0;
    expect_ = hello ? 2 : 1;
    got_ = 0;
    ws_.async_write(net::buffer(hello ? hello_frame : good_frame),
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
      self->st_.done.fetch_add(1, std::memory_order_relaxed);
      self->send();
    });
  }
  void leave() {
    ws_.async_close(websocket::close_code::normal,
                    [self = shared_from_this()](beast::error_code) { ++self->st_.left; });
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  chat_state& st_;
  std::string id_;
  int expect_ = 1, got_ = 0;
  std::uint64_t turn_ = 0;
};

// ---- resuming clients ---------------------------------------------------------------------

struct resume_sample {
  steady::time_point connect, connected, open, sent, reply;
  std::uint64_t load_done = 0;  // the load's answered turns when this reply came
  bool ok = false;              // a reply came
  bool greeted = false;         // the first frame was a new session's greeting: not restored
};

class resumer : public std::enable_shared_from_this<resumer> {
 public:
  resumer(net::io_context& io, unsigned short port, std::string id, resume_sample& out,
          const std::atomic<std::uint64_t>& load_done)
      : ws_(io), port_(port), id_(std::move(id)), out_(out), load_done_(load_done) {}

  void start() {
    out_.connect = steady::now();
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(server(port_), [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->out_.connected = steady::now();
      self->ws_.async_handshake("127.0.0.1", "/?session_id=" + self->id_, [self](beast::error_code e) {
        if (e) return;
        self->out_.open = self->out_.sent = steady::now();
        // The stream's 30 s deadline still bounds the write and the read.
        self->ws_.async_write(net::buffer(hello_frame), [self](beast::error_code e2, std::size_t) {
          if (e2) return;
          self->ws_.async_read(self->buf_, [self](beast::error_code e3, std::size_t) {
            if (e3) return;
            self->out_.reply = steady::now();
            self->out_.load_done = self->load_done_.load(std::memory_order_relaxed);
            self->out_.ok = true;
            self->out_.greeted =
                beast::buffers_to_string(self->buf_.data()).find("greetings bot") != std::string::npos;
            beast::get_lowest_layer(self->ws_).expires_after(std::chrono::seconds(2));
            self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
          });
        });
      });
    });
  }

 private:
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  unsigned short port_;
  std::string id_;
  resume_sample& out_;
  const std::atomic<std::uint64_t>& load_done_;
};

struct spread {
  double p50 = 0, p99 = 0, max = 0;
};

spread percentiles(std::vector<double> v) {
  spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const auto rank = [&](std::size_t pct) {  // nearest rank: the 99th of 100 is v[98]
    return v[std::max<std::size_t>(1, (v.size() * pct + 99) / 100) - 1];
  };
  s.p50 = rank(50);
  s.p99 = rank(99);
  s.max = v.back();
  return s;
}

// One wave of resuming clients, on a thread of its own (so their timestamps do not wait for
// the load generator's thread, which runs the load meanwhile). Client i starts at i * gap.
void wave(const char* label, unsigned short port, const std::vector<std::string>& ids,
          std::chrono::milliseconds gap, const chat_state& load, double trace_ms) {
  net::io_context io(1);
  std::vector<resume_sample> samples(ids.size());
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto r = std::make_shared<resumer>(io, port, ids[i], samples[i], load.done);
    timers.push_back(std::make_unique<net::steady_timer>(io, gap * static_cast<int>(i)));
    timers.back()->async_wait([r](beast::error_code) { r->start(); });
  }
  const auto t0 = steady::now();
  const auto done0 = load.done.load();
  std::thread t([&io] { io.run_for(std::chrono::seconds(60)); });
  t.join();
  steady::time_point last = t0;
  std::uint64_t done1 = done0;
  std::vector<double> from_send, from_connect, handshake, tcp;
  std::size_t missing = 0, greeted = 0;
  for (const auto& s : samples) {
    if (!s.ok) {
      ++missing;
      continue;
    }
    greeted += s.greeted;
    if (s.reply > last) {
      last = s.reply;
      done1 = s.load_done;
    }
    from_send.push_back(ms(s.reply - s.sent));
    from_connect.push_back(ms(s.reply - s.connect));
    handshake.push_back(ms(s.open - s.connect));
    tcp.push_back(ms(s.connected - s.connect));
  }
  if (trace_ms > 0)  // each slow client's timeline: stalls show as many 101s at one moment
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const auto& x = samples[i];
      if (x.ok && ms(x.reply - x.connect) > trace_ms)
        std::printf("    #%zu at %.1f ms: tcp %.2f, 101 %.2f, reply %.2f (reply at %.1f)\n", i,
                    ms(x.connect - t0), ms(x.connected - x.connect), ms(x.open - x.connect),
                    ms(x.reply - x.sent), ms(x.reply - t0));
    }
  const auto a = percentiles(from_send), b = percentiles(from_connect);
  const auto h = percentiles(handshake), c = percentiles(tcp);
  const double window = ms(last - t0);
  std::printf("%s (%zu sessions, %.0f ms from the first connect to the last first reply)\n", label,
              ids.size(), window);
  std::printf("  first reply, from the send:    p50 %7.2f  p99 %7.2f  max %7.2f ms\n", a.p50, a.p99, a.max);
  std::printf("  first reply, from the connect: p50 %7.2f  p99 %7.2f  max %7.2f ms "
              "(TCP connected: p50 %.2f, p99 %.2f; 101 in: p50 %.2f, p99 %.2f ms)\n",
              b.p50, b.p99, b.max, c.p50, c.p99, h.p50, h.p99);
  std::printf("  load meanwhile: %.0f msgs/s\n",
              window > 0 ? static_cast<double>(done1 - done0) * 1000.0 / window : 0.0);
  if (missing || greeted)
    std::printf("  NOTE: %zu without a reply, %zu greeted as new sessions (not restored)\n", missing,
                greeted);
  std::fflush(stdout);
}

struct options {
  std::size_t resume = 100, load = 100, history = 20, readers = 0;
  int threads = 1, gap_ms = 5;
  double seconds = 3, trace_ms = 0;
  std::string greetings;
  std::vector<std::string> sets;  // --set KEY=VALUE for the bot, after the bench's own
};

std::vector<std::string> bot_args(const options& o, unsigned short port, const std::string& db) {
  std::vector<std::string> a = {o.greetings, "--port", std::to_string(port), "--threads",
                                std::to_string(o.threads), "--db", db, "--log-level", "warn",
                                "--set", "platforms.websocket.rate_limit=0",
                                "--set", "agent.persist_sessions=true"};
  if (o.readers) {
    a.push_back("--set");
    a.push_back("db.readers=" + std::to_string(o.readers));
  }
  for (const auto& kv : o.sets) {
    a.push_back("--set");
    a.push_back(kv);
  }
  return a;
}

int run(const options& o) {
  const std::string tmp = "/tmp/parley-resume-bench-" + std::to_string(::getpid());
  std::system(("mkdir -p " + tmp).c_str());
  const std::string db = tmp + "/resume.db";
  const unsigned short port = bench::free_port();
  const std::string prefix = "resume-" + std::to_string(::getpid()) + "-";

  // 1. The stored sessions: 2N conversations of T messages each, then the clients leave.
  pid_t bot = bench::spawn(bot_args(o, port, db), tmp + "/bot-1.log");
  bench::wait_listening(port);
  std::vector<std::string> ids;
  {
    net::io_context io(1);
    chat_state st;
    st.port = port;
    st.turns = o.history;
    std::vector<std::shared_ptr<chatter>> all;
    for (std::size_t i = 0; i < 2 * o.resume; ++i) {
      ids.push_back(prefix + std::to_string(i));
      all.push_back(std::make_shared<chatter>(io, st, ids.back()));
      all.back()->start();
    }
    const auto t0 = steady::now();
    if (!run_until(io, [&] { return st.left == all.size(); }, std::chrono::seconds(120)) || st.failed) {
      std::fprintf(stderr, "making the stored sessions failed (%zu of %zu left, %zu failed); see %s\n",
                   st.left.load(), all.size(), st.failed.load(), (tmp + "/bot-1.log").c_str());
      bench::stop(bot);
      return 1;
    }
    std::printf("stored: %zu sessions x %zu messages in %.2f s; bot stopped and started again on "
                "the same file\n", all.size(), o.history, ms(steady::now() - t0) / 1000.0);
  }
  bench::stop(bot);

  // 2. A new process: every stored session must come back from the database.
  bot = bench::spawn(bot_args(o, port, db), tmp + "/bot-2.log");
  bench::wait_listening(port);

  // 3. The load, on a thread of its own.
  net::io_context load_io(1);
  chat_state load;
  load.port = port;
  std::vector<std::shared_ptr<chatter>> chatters;
  for (std::size_t i = 0; i < o.load; ++i) {
    chatters.push_back(std::make_shared<chatter>(load_io, load, "load-" + prefix + std::to_string(i)));
    chatters.back()->start();
  }
  std::thread load_thread([&load_io] { load_io.run(); });
  for (int i = 0; i < 3000 && load.ready + load.failed < o.load; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up
  {
    const auto d0 = load.done.load();
    const auto t0 = steady::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    const double rate = static_cast<double>(load.done.load() - d0) * 1000.0 / ms(steady::now() - t0);
    std::printf("load: %zu connections chatting (greetings, hello/good, recorded), %zu ready: "
                "%.0f msgs/s before the waves\n\n", o.load, load.ready.load(), rate);
  }

  // 4. The waves.
  const std::vector<std::string> first(ids.begin(), ids.begin() + static_cast<long>(o.resume));
  const std::vector<std::string> second(ids.begin() + static_cast<long>(o.resume), ids.end());
  wave("all at once", port, first, std::chrono::milliseconds(0), load, o.trace_ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string label = "one every " + std::to_string(o.gap_ms) + " ms";
  wave(label.c_str(), port, second, std::chrono::milliseconds(o.gap_ms), load, o.trace_ms);
  // The control: the same clients and load, sessions already in memory (no database read).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  wave("control: the first wave's sessions again, in memory, all at once", port, first,
       std::chrono::milliseconds(0), load, o.trace_ms);

  {
    const auto d0 = load.done.load();
    const auto t0 = steady::now();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double rate = static_cast<double>(load.done.load() - d0) * 1000.0 / ms(steady::now() - t0);
    std::printf("\nload after the waves: %.0f msgs/s; load connections failed: %zu\n", rate,
                load.failed.load());
  }
  load.stopping = true;
  for (int i = 0; i < 500 && load.left < o.load; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  load_io.stop();
  load_thread.join();
  bench::stop(bot);
  std::fflush(stdout);
  // What the bot warned about during the run (e.g. the writer falling db.max_queued behind,
  // which holds the I/O thread until the writer takes the queue): part of the picture.
  std::system(("grep -m 5 -E ' (warn|error) ' " + tmp + "/bot-2.log | sed 's/^/bot: /'").c_str());
  std::system(("rm -rf " + tmp).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options o;
#ifdef PARLEY_GREETINGS_BIN
  o.greetings = PARLEY_GREETINGS_BIN;
#endif
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--resume") o.resume = std::stoul(v);
    else if (k == "--load") o.load = std::stoul(v);
    else if (k == "--history") o.history = std::stoul(v);
    else if (k == "--threads") o.threads = std::stoi(v);
    else if (k == "--gap-ms") o.gap_ms = std::stoi(v);
    else if (k == "--seconds") o.seconds = std::stod(v);
    else if (k == "--readers") o.readers = std::stoul(v);
    else if (k == "--greetings") o.greetings = v;
    else if (k == "--set") o.sets.push_back(v);
    else if (k == "--trace-ms") o.trace_ms = std::stod(v);
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of ws_resume_bench.cpp)\n", k.c_str());
      return 2;
    }
  }
  if (o.greetings.empty()) {
    std::fprintf(stderr, "built without the examples: give --greetings PATH\n");
    return 2;
  }
  if (o.history % 2) ++o.history;  // end on "good", so each stored session is in `ready`
  return run(o);
}
