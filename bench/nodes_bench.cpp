// Several greetings nodes on one PostgreSQL database (issue 16). Run it with a server:
//
//   ./dev pg $PWD/build/bench/bench_nodes [--nodes 3] [--connections 300] [--seconds 5]
//                                         [--rounds 3] [--lease-ms 10000]
//
// 1. Takeover after kill -9, with the default lease: a session is made at node 0 (in a shard
//    no node holds yet, so node 0 owns it) and asked how it is; node 0 is killed; a client at
//    node 1 reconnects with its cursor until it is served, and answers. The time from the kill
//    to that answer's reply is the takeover. Node 0 is started again for the next round.
// 2. Throughput: --connections clients in a closed loop (bench_websocket's), spread over the
//    nodes (each node relays the clients whose sessions another owns), then the same number at
//    one node alone (its sessions still spread over the nodes' shards), messages per second
//    and p50/p99.
#include <chrono>
#include <csignal>

#include <sys/socket.h>
#include <sys/time.h>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <parley/db/postgres_db_handler.hpp>

#include "bench_process.hpp"
#include "ws_load.hpp"

namespace {

using namespace bench::ws;

struct node {
  pid_t pid = 0;
  unsigned short port = 0;
};

node start_node(const std::string& url, int i, long lease_ms, const std::string& tmp) {
  node n;
  n.port = bench::free_port();
  n.pid = bench::spawn({PARLEY_GREETINGS_BIN, "--port", std::to_string(n.port), "--db", url,
                        "--log-level", "warn", "--set", "platforms.websocket.rate_limit=0",
                        "--set", "platforms.websocket.max_connections=20000", "--set",
                        "agent.persist_sessions=true", "--set",
                        "db.lease_ttl_ms=" + std::to_string(lease_ms)},
                       tmp + "/node" + std::to_string(i) + ".log");
  bench::wait_listening(n.port);
  return n;
}

// One blocking client turn: connects (false when refused), reads until `expect`.
struct sync_client {
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};

  bool connect(unsigned short port, const std::string& target) {
    beast::error_code ec;
    beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    if (ec) return false;
    // Blocking reads ignore the stream's timer: the socket's own timeout bounds them.
    const timeval tv{10, 0};
    ::setsockopt(beast::get_lowest_layer(ws).socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ws.handshake("127.0.0.1", target, ec);
    return !ec;
  }
  void say(const std::string& text) {
    ws.write(net::buffer(std::string(R"({"action":"user_message","message":")") + text + "\"}"));
  }
  bool read_until(const std::string& expect) {
    beast::flat_buffer b;
    for (;;) {
      beast::error_code ec;
      ws.read(b, ec);
      if (ec) return false;
      const auto s = beast::buffers_to_string(b.data());
      b.consume(b.size());
      if (s.find(expect) != std::string::npos) return true;
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const char* url_env = std::getenv("PARLEY_PG_URL");
  if (!url_env || !*url_env) {
    std::fprintf(stderr, "PARLEY_PG_URL is not set: run ./dev pg %s\n", argv[0]);
    return 2;
  }
  const std::string url = url_env;
  std::size_t n_nodes = 3, conns = 300;
  double seconds = 5;
  int rounds = 3;
  long lease_ms = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--nodes") n_nodes = std::max<std::size_t>(2, std::stoul(v));
    else if (k == "--connections") conns = std::stoul(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--rounds") rounds = std::stoi(v);
    else if (k == "--lease-ms") lease_ms = std::stol(v);
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of nodes_bench.cpp)\n", k.c_str());
      return 2;
    }
  }
  char tmpl[] = "/tmp/parley-nodes-bench.XXXXXX";
  const std::string tmp = ::mkdtemp(tmpl);
  std::vector<node> nodes;
  for (std::size_t i = 0; i < n_nodes; ++i) nodes.push_back(start_node(url, static_cast<int>(i), lease_ms, tmp));

  // 1. Takeover.
  std::printf("takeover after kill -9 of the owner, lease %ld ms:\n", lease_ms);
  std::set<int> used;
  std::vector<double> took;
  for (int r = 0; r < rounds; ++r) {
    std::string id;
    for (int k = 0; id.empty(); ++k) {
      auto c = "takeover-" + std::to_string(::getpid()) + "-" + std::to_string(r) + "-" + std::to_string(k);
      if (used.insert(parley::db::shard_of("greetings", c)).second) id = c;
    }
    {
      sync_client c;
      if (!c.connect(nodes[0].port, "/?session_id=" + id) || !c.read_until("Say hello")) return 1;
      c.say("hello");
      if (!c.read_until("How are you?")) return 1;
    }
    const auto killed = steady::now();
    ::kill(nodes[0].pid, SIGKILL);
    ::waitpid(nodes[0].pid, nullptr, 0);
    int refused = 0;
    for (;;) {
      sync_client c;
      if (c.connect(nodes[1].port, "/?session_id=" + id + "&since=3")) {
        c.say("good");
        if (c.read_until("glad")) break;
      }
      ++refused;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // retry pace, as a client would
      if (steady::now() - killed > std::chrono::seconds(60)) {
        std::fprintf(stderr, "no takeover within 60 s\n");
        return 1;
      }
    }
    took.push_back(std::chrono::duration<double>(steady::now() - killed).count());
    std::printf("  round %d: %.2f s (%d handshakes refused meanwhile)\n", r + 1, took.back(), refused);
    nodes[0] = start_node(url, 0, lease_ms, tmp);
  }

  // 2. Throughput.
  auto load = [&](const std::vector<unsigned short>& ports) {
    net::io_context io(1);
    run_state st;
    st.bot = true;
    st.prefix = "nodes-" + std::to_string(::getpid()) + "-" + std::to_string(ports.size()) + "-";
    st.port = ports.front();
    st.ports = ports;
    auto all = open_all(io, st, conns, true);
    const result res = measure(io, st, seconds);
    close_all(io, st, all);
    return std::make_pair(res, st.failed);
  };
  std::vector<unsigned short> ports;
  for (auto& n : nodes) ports.push_back(n.port);
  const auto [spread, failed_spread] = load(ports);
  std::printf("\n%zu connections over %zu nodes: %.0f msgs/s, p50 %.2f ms, p99 %.2f ms (%zu failed)\n",
              conns, nodes.size(), spread.msgs_per_s, spread.p50_ms, spread.p99_ms, failed_spread);
  // The others stop (handing their shards over at once): node 0 alone, owning every session.
  for (std::size_t i = 1; i < nodes.size(); ++i) bench::stop(nodes[i].pid);
  const auto [one, failed_one] = load({nodes[0].port});
  std::printf("%zu connections, one node alone: %.0f msgs/s, p50 %.2f ms, p99 %.2f ms (%zu failed)\n",
              conns, one.msgs_per_s, one.p50_ms, one.p99_ms, failed_one);
  bench::stop(nodes[0].pid);
  std::system(("rm -rf " + tmp).c_str());
  return 0;
}
