// One greetings node recording to PostgreSQL against the same node recording to SQLite, in one
// run (issue 16's ratio). Run it with a server:
//
//   ./dev pg $PWD/build/bench/bench_pg_ratio [--connections 100] [--seconds 3] [--rounds 3]
//
// Each round starts the bot three times, one after the other, and loads each with
// --connections clients in a closed loop (bench_websocket's): on a fresh SQLite file (the
// default: a reply goes out before its commit), on a fresh SQLite file with
// db.sync_commit=true (a reply only after its commit), and on PostgreSQL (always after its
// commit; the database is kept between rounds, as a server's would be). It prints messages per
// second, p50 and p99 of each, then the ratios: PostgreSQL to SQLite's default (the issue's
// aim: 0.5x) and to SQLite with the same guarantee.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_process.hpp"
#include "ws_load.hpp"

namespace {

using namespace bench::ws;

struct measured {
  result res;
  std::size_t failed = 0;
};

measured run_bot(const std::string& db, const std::vector<std::string>& extra, std::size_t conns,
                 double seconds, const std::string& log, const std::string& prefix) {
  const auto port = bench::free_port();
  std::vector<std::string> argv{PARLEY_GREETINGS_BIN, "--port", std::to_string(port), "--db", db,
                                "--log-level", "warn", "--set", "platforms.websocket.rate_limit=0",
                                "--set", "platforms.websocket.max_connections=20000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const pid_t pid = bench::spawn(argv, log);
  bench::wait_listening(port);
  net::io_context io(1);
  run_state st;
  st.bot = true;
  st.prefix = prefix;
  st.port = port;
  auto all = open_all(io, st, conns, true);
  measured m{measure(io, st, seconds), 0};
  close_all(io, st, all);
  m.failed = st.failed;
  bench::stop(pid);
  return m;
}

void print(const char* what, const measured& m) {
  std::printf("  %-34s %8.0f msgs/s  p50 %6.2f ms  p99 %6.2f ms  (%zu failed)\n", what, m.res.msgs_per_s,
              m.res.p50_ms, m.res.p99_ms, m.failed);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const char* url = std::getenv("PARLEY_PG_URL");
  if (!url || !*url) {
    std::fprintf(stderr, "PARLEY_PG_URL is not set: run ./dev pg %s\n", argv[0]);
    return 2;
  }
  std::size_t conns = 100;
  double seconds = 3;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--connections") conns = std::stoul(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--rounds") rounds = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of pg_ratio_bench.cpp)\n", k.c_str());
      return 2;
    }
  }
  char tmpl[] = "/tmp/parley-pg-ratio.XXXXXX";
  const std::string tmp = ::mkdtemp(tmpl);
  const std::string tag = std::to_string(::getpid());
  std::printf("one greetings node, %zu connections in a closed loop, %.0f s each\n", conns, seconds);
  int failed = 0;
  for (int r = 1; r <= rounds; ++r) {
    const auto n = std::to_string(r);
    std::printf("round %d:\n", r);
    const auto sqlite = run_bot(tmp + "/default" + n + ".db", {}, conns, seconds, tmp + "/sqlite.log", "s" + n + "-");
    print("SQLite (reply before its commit)", sqlite);
    const auto durable = run_bot(tmp + "/sync" + n + ".db", {"--set", "db.sync_commit=true"}, conns, seconds,
                                 tmp + "/sync.log", "d" + n + "-");
    print("SQLite, db.sync_commit=true", durable);
    const auto pg = run_bot(url, {}, conns, seconds, tmp + "/pg.log", "p" + tag + "-" + n + "-");
    print("PostgreSQL (reply after its commit)", pg);
    std::printf("  ratio: PostgreSQL / SQLite default %.2fx, / SQLite with the same guarantee %.2fx\n",
                pg.res.msgs_per_s / sqlite.res.msgs_per_s, pg.res.msgs_per_s / durable.res.msgs_per_s);
    failed += static_cast<int>(sqlite.failed + durable.failed + pg.failed);
  }
  std::system(("rm -rf " + tmp).c_str());
  return failed ? 1 : 0;
}
