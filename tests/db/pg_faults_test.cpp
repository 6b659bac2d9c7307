// Faults while 50 clients chat (issue 16): three greetings processes on one PostgreSQL
// database, each client at one of them (relayed to its session's owner), chatting in a loop
// and reconnecting with its cursor (?since=N) whenever its connection ends or goes quiet.
// Faults: kill -9 of a node (with a timer falling due during the failover), SIGSTOP of a node
// past its lease and SIGCONT, PostgreSQL stopped with -m immediate past the leases and started
// again. After each, every client chats on, and:
//   - each client received every reply number of its session once: 1..N, no gap, no repeat;
//   - each reply a client received is in the database, once, with the same text;
//   - each session's stored replies are numbered 1..N, each once (two owners writing at once
//     would collide on a number, or leave a gap where a refused write was);
//   - each client was greeted once (its session moved with its state) and no session is
//     marked closed (moving is not closing).
// The suite's PostgreSQL is shared by the tests running beside this one, so these run on a
// private cluster of their own (./dev test exports PARLEY_PG_CTL for it).
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <unistd.h>

#include <parley/db/postgres_db_handler.hpp>

#include "pg_support.hpp"
#include "pg_nodes.hpp"
#include "support.hpp"
#include "ws_test_client.hpp"

using namespace std::chrono_literals;
using parley::json;
namespace net = wstest::net;
namespace beast = wstest::beast;
namespace websocket = wstest::websocket;
using tcp = wstest::tcp;

namespace {

// A PostgreSQL cluster of this test's own, in a temp folder (Unix socket only), made with the
// pg_ctl ./dev test uses (as the postgres user when run as root).
struct private_cluster {
  std::string dir, ctl, url;

  private_cluster() {
    const char* c = std::getenv("PARLEY_PG_CTL");
    REQUIRE_MESSAGE((c && *c), "PARLEY_PG_CTL is not set: run the tests with ./dev test");
    ctl = c;
    const auto initdb = ctl.substr(0, ctl.rfind("pg_ctl")) + "initdb";
    char tmpl[] = "/tmp/parley-pgf.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    std::filesystem::create_directory(dir + "/socket");
    std::filesystem::permissions(dir, std::filesystem::perms(0755));
    if (ctl.find("runuser") != std::string::npos) sh("chown -R postgres: " + dir);
    sh(initdb + " -D " + dir + "/data -A trust -U parley --no-sync >" + dir + "/initdb.log 2>&1");
    const int port = 20000 + static_cast<int>(std::random_device{}() % 20000);
    opts = "-k " + dir + "/socket -p " + std::to_string(port) +
           " -c listen_addresses='' -c fsync=off -c max_connections=100";
    start();
    url = "postgresql://parley@/postgres?host=" + dir + "/socket&port=" + std::to_string(port);
  }
  ~private_cluster() {
    std::system((ctl + " -D " + dir + "/data -m immediate -w -s stop >/dev/null 2>&1").c_str());
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  // Crashes the server (no shutdown checkpoint); start() brings it back.
  void stop_immediate() { sh(ctl + " -D " + dir + "/data -m immediate -w -s stop >/dev/null"); }
  void start() {
    sh(ctl + " -D " + dir + "/data -l " + dir + "/server.log -w -s -o \"" + opts + "\" start");
  }
  std::string opts;

  static void sh(const std::string& cmd) { REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd); }
};

using test::node_process;

// One client: says hello, answers "good" when asked how it is, and so on. A turn ends with a
// reply that wants an answer. Whenever its connection ends, or no turn ends for `quiet`, it
// reconnects (to the next node) with its cursor.
class chatter : public std::enable_shared_from_this<chatter> {
 public:
  chatter(net::io_context& io, std::string id, const std::vector<std::uint16_t>& ports, std::size_t first)
      : io_(io), id_(std::move(id)), ports_(ports), node_(first), timer_(io) {}

  void start() { connect(); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    if (ws_) {
      beast::error_code ignored;
      beast::get_lowest_layer(*ws_).socket().close(ignored);
    }
  }

  const std::string& id() const { return id_; }
  int turns() const { return turns_; }
  int reconnects() const { return reconnects_; }
  std::int64_t last_seq() const { return last_seq_; }
  const std::map<std::int64_t, int>& seen() const { return seen_; }
  const std::map<std::int64_t, std::string>& texts() const { return texts_; }
  int count_of(const std::string& text) const {
    int n = 0;
    for (const auto& [seq, t] : texts_) n += t.find(text) != std::string::npos;
    return n;
  }
  // The last 40 things that happened to it (connects, frames, ends), for a failure's message.
  std::string recent() const {
    std::string t;
    for (std::size_t i = trace_.size() > 40 ? trace_.size() - 40 : 0; i < trace_.size(); ++i)
      t += "\n  " + trace_[i];
    return t;
  }
  // Never answers "How are you?" (the bot's idle timer fires instead).
  void go_quiet() { quiet_ = true; }

 private:
  void connect() {
    if (stopped_) return;
    ws_ = std::make_unique<websocket::stream<beast::tcp_stream>>(io_);
    const auto port = ports_[node_ % ports_.size()];
    std::string target = "/?session_id=" + id_;
    // Again: with its cursor (0 when not even the greeting came: all of them again).
    if (reconnects_ > 0) target += "&since=" + std::to_string(last_seq_);
    trace_.push_back("connect " + std::to_string(port) + target);
    auto self = shared_from_this();
    beast::get_lowest_layer(*ws_).expires_after(3s);
    beast::get_lowest_layer(*ws_).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
        [self, target, ws = ws_.get()](beast::error_code ec) {
          if (ws != self->ws_.get()) return;
          if (ec) return self->retry();
          self->ws_->async_handshake("127.0.0.1", target, [self, ws](beast::error_code e2) {
            if (ws != self->ws_.get()) return;
            if (e2) return self->retry();  // 503 while the session changes hands
            beast::get_lowest_layer(*self->ws_).expires_never();
            self->arm_quiet();
            // What it said last may be lost with the old node: said again (said twice, it is
            // answered twice, each answer once). Unless it is quiet and asked.
            if (self->reconnects_ > 0 && self->turns_ > 0 && !(self->quiet_ && self->last_asked_))
              self->say_next();
            self->read();
          });
        });
  }

  void retry() {
    if (stopped_) return;
    ++reconnects_;
    ++node_;
    ws_.reset();
    timer_.expires_after(100ms);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->connect();
    });
  }

  // No turn ended for a while: the node may be paused; try another.
  void arm_quiet() {
    timer_.expires_after(quiet_ ? 30s : 3s);
    timer_.async_wait([self = shared_from_this(), ws = ws_.get()](beast::error_code ec) {
      if (ec || ws != self->ws_.get() || self->stopped_) return;
      beast::error_code ignored;
      beast::get_lowest_layer(*self->ws_).socket().close(ignored);
    });
  }

  void read() {
    auto self = shared_from_this();
    ws_->async_read(buffer_, [self, ws = ws_.get()](beast::error_code ec, std::size_t) {
      if (ws != self->ws_.get()) return;
      if (ec) {
        self->trace_.push_back("read: " + ec.message() + " " + std::to_string(self->ws_->reason().code) +
                               " " + std::string(self->ws_->reason().reason.c_str()));
        return self->retry();
      }
      auto frame = json::parse(beast::buffers_to_string(self->buffer_.data()), nullptr, false);
      self->buffer_.consume(self->buffer_.size());
      self->on_frame(frame);
      self->read();
    });
  }

  void on_frame(const json& f) {
    if (!f.is_object() || !f.contains("seq")) return;
    const auto seq = f["seq"].get<std::int64_t>();
    trace_.push_back("seq " + std::to_string(seq) + " " + f.value("message", std::string()).substr(0, 24));
    ++seen_[seq];
    last_seq_ = std::max(last_seq_, seq);
    const auto text = f.value("message", std::string());
    if (f.value("action", "") != "agent_reply_str") return;
    texts_[seq] = text;
    // A reply that wants an answer ends a turn.
    const bool asked = text.find("How are you?") != std::string::npos;
    if (asked || text.find("glad") != std::string::npos || text.find("Say hello") != std::string::npos ||
        text.find("didn't get that") != std::string::npos) {
      ++turns_;
      last_asked_ = asked;
      waiting_ = false;
      if (quiet_ && asked) return;  // waits for the bot's timer instead
      arm_quiet();
      say_next();
    }
  }

  void say_next() {
    waiting_ = true;
    auto msg = std::make_shared<std::string>(
        json{{"action", "user_message"}, {"message", last_asked_ ? "good" : "hello"}}.dump());
    ws_->text(true);
    ws_->async_write(net::buffer(*msg), [msg](beast::error_code, std::size_t) {});
  }

  net::io_context& io_;
  std::string id_;
  const std::vector<std::uint16_t>& ports_;
  std::size_t node_;
  net::steady_timer timer_;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  std::map<std::int64_t, int> seen_;
  std::map<std::int64_t, std::string> texts_;
  std::int64_t last_seq_ = 0;
  std::vector<std::string> trace_;  // what happened, for a failure's message
  int turns_ = 0, reconnects_ = 0;
  bool last_asked_ = false, waiting_ = false, stopped_ = false, quiet_ = false;
};

struct fault_rig : test::pg_fixture {
  bool skip = false;  // no PostgreSQL here (not run by ./dev test)
  std::optional<private_cluster> pg;
  std::string db_url;
  std::vector<node_process> nodes;
  std::vector<std::uint16_t> ports;
  net::io_context cio;  // the clients'
  std::vector<std::shared_ptr<chatter>> clients;

  fault_rig() {
    if (!std::getenv("PARLEY_PG_CTL")) {
      skip = test::pg_url().empty();  // fails under ./dev test, else says it is skipped
      if (skip) return;
    }
    pg.emplace();
    db_url = fresh_database(pg->url);
    for (int i = 0; i < 3; ++i) nodes.push_back(test::start_node(db_url, {"greetings.idle_seconds=4"}));
    for (auto& n : nodes) ports.push_back(n.port);
    for (int i = 0; i < 50; ++i) {
      clients.push_back(std::make_shared<chatter>(cio, "fault-" + parley::random_id(), ports, i % 3));
      clients.back()->start();
    }
  }
  ~fault_rig() {
    for (auto& c : clients) c->stop();
    cio.restart();
    cio.run_for(1s);  // the clients' handlers end (returns once there are none)
    clients.clear();
    for (auto& n : nodes) n.proc->kill(SIGKILL);
  }

  // Runs the clients until `done`, reading the nodes' logs meanwhile (a full pipe stalls a node).
  template <class Pred>
  void chat_until(Pred done, std::chrono::seconds limit, const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      cio.restart();
      cio.run_for(20ms);
      for (auto& n : nodes)
        for (int k = 0; k < 64; ++k) {  // all there is, 4 KiB at a time
          const auto had = n.proc->err().size();
          n.proc->read_err_until([](const std::string&) { return false; }, 0ms);
          if (n.proc->err().size() == had) break;
        }
    }
    REQUIRE_MESSAGE(done(), "timed out waiting until " << what);
  }

  // Every client ends `n` more turns from now.
  void more_turns(int n, std::chrono::seconds limit, const std::string& what) {
    std::vector<int> from;
    for (auto& c : clients) from.push_back(c->turns());
    INFO("behind: " << [&] {
      std::string s;
      for (std::size_t i = 0; i < clients.size(); ++i)
        if (clients[i]->turns() < from[i] + n)
          s += "\n  " + clients[i]->id() + " (shard " +
               std::to_string(parley::db::shard_of("greetings", clients[i]->id())) + "): " +
               std::to_string(clients[i]->turns() - from[i]) + " turns, " +
               std::to_string(clients[i]->reconnects()) + " reconnects, last seq " +
               std::to_string(clients[i]->last_seq());
      return s;
    }());
    chat_until([&] {
      for (std::size_t i = 0; i < clients.size(); ++i)
        if (clients[i]->turns() < from[i] + n) return false;
      return true;
    }, limit, what);
  }

  // The invariants of the file's comment, for every client's session.
  void check_replies() {
    auto c = connect(db_url);
    int reconnects = 0;
    for (auto& cl : clients) {
      reconnects += cl->reconnects();
      INFO("session " << cl->id() << cl->recent());
      // Seen once each, 1..N.
      std::int64_t expect = 1;
      for (const auto& [seq, times] : cl->seen()) {
        CHECK(seq == expect);
        CHECK(times == 1);
        expect = seq + 1;
      }
      auto r = batch(*c, {{"SELECT c.seq, c.content FROM chat c JOIN session s ON s.id = c.session_id "
                           "WHERE s.session_id = $1 AND c.seq IS NOT NULL ORDER BY c.seq",
                           {cl->id()}}});
      REQUIRE(r.error.empty());
      const auto& rows = r.results[0];
      std::map<std::int64_t, std::string> stored;
      for (int i = 0; i < rows.rows(); ++i) {
        const auto seq = rows.integer(i, 0);
        CHECK(seq == i + 1);  // 1..N, each once
        stored[seq] = std::string(rows.text(i, 1));
      }
      // The session moved with its state: greeted once, never started afresh.
      CHECK(cl->count_of("Hi! I'm the greetings bot") == 1);
      for (const auto& [seq, text] : cl->texts()) {
        auto it = stored.find(seq);
        REQUIRE_MESSAGE(it != stored.end(), "reply " << seq << " reached the client but is not stored");
        CHECK(it->second == text);
      }
    }
    MESSAGE("clients reconnected " << reconnects << " times in all");
    // Moving is not closing: no session row says it was closed.
    auto closed = batch(*c, {{"SELECT count(*) FROM session WHERE closed_reason IS NOT NULL", {}}});
    REQUIRE(closed.error.empty());
    CHECK(closed.results[0].integer(0, 0) == 0);
    c->close();
  }
};

}  // namespace

TEST_CASE_FIXTURE(fault_rig, "postgres faults: 50 clients chat through kill -9 of a node, and a timer due meanwhile fires once") {
  if (skip) return;
  chat_until([&] {
    for (auto& c : clients) if (c->turns() < 2) return false;
    return true;
  }, 30s, "every client has chatted");
  // One more session, at node 0 (in a shard nobody holds yet, so node 0 claims it), asked how
  // it is just before node 0 dies: its idle timer (4 s) falls due during the failover.
  std::set<int> held;
  {
    auto c = connect(db_url);
    auto r = batch(*c, {{"SELECT shard FROM shard_lease", {}}});
    REQUIRE(r.error.empty());
    for (int i = 0; i < r.results[0].rows(); ++i) held.insert(static_cast<int>(r.results[0].integer(i, 0)));
    c->close();
  }
  std::string idle_id;
  for (int i = 0; idle_id.empty(); ++i) {
    auto id = "idle-" + std::to_string(i) + "-" + parley::random_id().substr(0, 8);
    if (!held.count(parley::db::shard_of("greetings", id))) idle_id = id;
  }
  auto idle = std::make_shared<chatter>(cio, idle_id, ports, 0);
  idle->go_quiet();
  idle->start();
  chat_until([&] { return idle->turns() >= 1; }, 10s, "the idle client is greeted");
  // (The greeting ended its first turn; it said hello, and is asked how it is.)
  chat_until([&] { return idle->count_of("How are you?") >= 1; }, 10s, "the idle client is asked");

  const auto killed = std::chrono::steady_clock::now();
  nodes[0].proc->kill(SIGKILL);
  more_turns(3, 40s, "every client chats on after kill -9");
  MESSAGE("every client had 3 more turns " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - killed).count()
                                           << " ms after kill -9");
  // The timer fired on the new owner, once, and the client (reconnected with its cursor) got it.
  chat_until([&] { return idle->count_of("still here") >= 1; }, 30s, "the idle session's timer fires");
  clients.push_back(idle);
  check_replies();
  CHECK(idle->count_of("still here") == 1);
}

TEST_CASE_FIXTURE(fault_rig, "postgres faults: 50 clients chat through SIGSTOP of a node past its lease, then SIGCONT") {
  if (skip) return;
  more_turns(2, 30s, "every client has chatted");
  nodes[1].proc->kill(SIGSTOP);
  // Its sessions move: every client chats on (those of node 1 after its lease ran out).
  more_turns(3, 40s, "every client chats on while node 1 is paused");
  nodes[1].proc->kill(SIGCONT);
  // Node 1 finds it lost its shards and stops serving them; its late writes are refused.
  chat_until([&] { return nodes[1].proc->err().find("no longer owns") != std::string::npos; }, 15s,
             "node 1 says it lost its sessions");
  more_turns(3, 30s, "every client chats on after SIGCONT");
  check_replies();
}

TEST_CASE_FIXTURE(fault_rig, "postgres faults: 50 clients chat through PostgreSQL stopped with -m immediate past the leases, then started") {
  if (skip) return;
  more_turns(2, 30s, "every client has chatted");
  pg->stop_immediate();
  // Down longer than the leases: every node stops acting for its sessions (they "move"), and
  // takes them back once the server is up again, in their state.
  chat_until([&] {
    for (auto& n : nodes)
      if (n.proc->err().find("no longer owns") == std::string::npos) return false;
    return true;
  }, 20s, "every node gives its shards up while the database is down");
  pg->start();
  more_turns(3, 60s, "every client chats on after the restart");
  check_replies();
}
