// One greetings node recording to PostgreSQL against the same node recording to SQLite, in one
// run (issue 16's ratio). Run it with a server:
//
//   ./dev pg $PWD/build/bench/bench_pg_ratio [--connections 100] [--seconds 3] [--rounds 3]
//                                            [--keep 1]
//
// Each round starts the bot three times, one after the other, and loads each with
// --connections clients in a closed loop (bench_websocket's): on a fresh SQLite file (the
// default: a reply goes out before its commit), on a fresh SQLite file with
// db.sync_commit=true (a reply only after its commit), and on a fresh PostgreSQL database
// (always after its commit; made with psql, dropped after the round). With --keep 1 each of
// the three records into the same database in every round instead (one SQLite file each, and
// PARLEY_PG_URL's database), so they grow from round to round, as a server's would. It
// prints messages per second, p50 and p99 of each, then the ratios: PostgreSQL to SQLite's
// default (the aim: 0.5x) and to SQLite with the same guarantee.
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
  bool keep = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--connections") conns = std::stoul(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--rounds") rounds = std::stoi(v);
    else if (k == "--keep") keep = v == "1";
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
    const auto file = keep ? std::string("1") : n;  // the same files in every round with --keep
    const auto sqlite = run_bot(tmp + "/default" + file + ".db", {}, conns, seconds, tmp + "/sqlite.log", "s" + n + "-");
    print("SQLite (reply before its commit)", sqlite);
    const auto durable = run_bot(tmp + "/sync" + file + ".db", {"--set", "db.sync_commit=true"}, conns, seconds,
                                 tmp + "/sync.log", "d" + n + "-");
    print("SQLite, db.sync_commit=true", durable);
    std::string pg_url = url;
    const std::string db = "pgratio_" + tag + "_" + n;
    auto psql = [&](const std::string& sql) {
      return std::system(("psql -qX '" + std::string(url) + "' -c '" + sql + "' >/dev/null").c_str()) == 0;
    };
    if (!keep) {
      const auto slash = pg_url.find("/postgres");
      if (slash == std::string::npos || !psql("CREATE DATABASE " + db)) {
        std::fprintf(stderr, "cannot make database %s (PARLEY_PG_URL must name /postgres; or pass --keep 1)\n",
                     db.c_str());
        return 2;
      }
      pg_url = pg_url.substr(0, slash) + "/" + db + pg_url.substr(slash + 9);
    }
    const auto pg = run_bot(pg_url, {}, conns, seconds, tmp + "/pg.log", "p" + tag + "-" + n + "-");
    if (!keep) psql("DROP DATABASE " + db + " WITH (FORCE)");
    print("PostgreSQL (reply after its commit)", pg);
    std::printf("  ratio: PostgreSQL / SQLite default %.2fx, / SQLite with the same guarantee %.2fx\n",
                pg.res.msgs_per_s / sqlite.res.msgs_per_s, pg.res.msgs_per_s / durable.res.msgs_per_s);
    failed += static_cast<int>(sqlite.failed + durable.failed + pg.failed);
  }
  std::system(("rm -rf " + tmp).c_str());
  return failed ? 1 : 0;
}
