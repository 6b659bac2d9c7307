// parley-inspect: reads what an agent recorded in its database (a SQLite file or PostgreSQL):
// sessions, chat, transitions, reasoning steps, events, all of them merged into a timeline, the
// chain of an agent-to-agent message across databases, and the agent's state diagram. Works on
// a live database: it only reads, in short statements, and never blocks the agent's writer.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <parley/db/inspect.hpp>
#include <parley/db/reader.hpp>
#include <parley/db/timestamp.hpp>
#include <parley/errors.hpp>
#include <parley/platforms/inspector.hpp>

#include "chain.hpp"
#include "queries.hpp"

namespace {
using namespace parley::inspect;

constexpr const char* usage_text =
    "usage: parley-inspect DB COMMAND [SESSION] [options]\n"
    "       parley-inspect DB [DB...] chain MESSAGE_ID [--json]\n"
    "DB: a SQLite file, or a PostgreSQL database as a URI (postgresql://user@host:5432/dbname)\n"
    "\n"
    "commands:\n"
    "  sessions [--user U] [--limit N]     sessions, most recently active first\n"
    "  chat SESSION [--last N] [--until T] the chat log (T: 2024-05-01T12:00:00.000Z or 2024-05-01)\n"
    "  transitions SESSION                 state changes and why\n"
    "  reasoning SESSION                   reasoning steps and the reply each led to\n"
    "  events SESSION                      unhandled events, errors, closes\n"
    "  timeline SESSION                    chat, intents, transitions and reasoning in time order\n"
    "  diagram [SESSION]                   the state diagram (DOT; --format mermaid), with visit\n"
    "                                      counts, and the SESSION's path and current state\n"
    "  chain MESSAGE_ID                    an agent-to-agent message's causes and effects, across\n"
    "                                      sessions and agents; give every agent's database before\n"
    "                                      it (files and postgresql:// URIs may be mixed)\n"
    "  serve [--host H] [--port N] [--token T]\n"
    "                                      the web inspector for this database, with no agent (first\n"
    "                                      line of output: its URL; Ctrl-C stops)\n"
    "\n"
    "options:\n"
    "  --json             JSON for scripts (an array; one object per line with --follow)\n"
    "  --follow           keep printing new rows as the agent writes them (Ctrl-C stops)\n"
    "  --agent NAME       only this agent's sessions (when several agents share the file)\n"
    "  --color WHEN       auto (default: only on a terminal), always or never\n"
    "  --format F         diagram: dot (default), mermaid or svg (laid out by Graphviz)\n"
    "  --host H           serve: the address to listen on (127.0.0.1)\n"
    "  --port N           serve: the port (8780; 0 = any free port)\n"
    "  --token T          serve: the bearer token the inspector's API asks for\n"
    "  --help             this text\n";

volatile std::sig_atomic_t g_stop = 0;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct args {
  std::string db;
  std::vector<std::string> dbs;  // chain: every file given
  bool chain = false;
  command cmd{};
  std::string session;
  query_options q;
  bool json = false, follow = false;
  std::string color = "auto";
  int interval_ms = 200;
  bool diagram = false;
  parley::diagram_format format = parley::diagram_format::dot;
  bool svg = false;
  bool serve = false;
  parley::platforms::inspector_options serve_options;
};

std::size_t number(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || n < 0) throw usage_error(flag + " needs a number, got '" + v + "'");
  return static_cast<std::size_t>(n);
}

args parse(int argc, char** argv) {
  args a;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw usage_error(f + " needs a value");
      return argv[++i];
    };
    if (f == "--help" || f == "-h") {
      std::cout << usage_text;
      std::exit(0);
    } else if (f == "--json") {
      a.json = true;
    } else if (f == "--follow" || f == "-f") {
      a.follow = true;
    } else if (f == "--user") {
      a.q.user = value();
    } else if (f == "--agent") {
      a.q.agent = value();
    } else if (f == "--last") {
      a.q.last = number(f, value());
    } else if (f == "--limit") {
      a.q.limit = number(f, value());
    } else if (f == "--interval-ms") {
      a.interval_ms = static_cast<int>(std::max<std::size_t>(10, number(f, value())));
    } else if (f == "--until") {
      const auto v = value();
      auto t = parley::db::parse_timestamp(v);
      if (!t) throw usage_error("--until needs a time like 2024-05-01T12:00:00.000Z, got '" + v + "'");
      // A bare date means the whole day.
      if (v.size() == 10) *t += std::chrono::hours(24) - std::chrono::milliseconds(1);
      a.q.until = parley::db::format_timestamp(*t);
    } else if (f == "--color" || f == "--colour") {
      a.color = value();
      if (a.color != "auto" && a.color != "always" && a.color != "never")
        throw usage_error("--color takes auto, always or never");
    } else if (f == "--format") {
      const auto v = value();
      const auto fmt = parley::parse_diagram_format(v);
      a.svg = v == "svg";
      if (!fmt && !a.svg) throw usage_error("--format takes dot or mermaid (or svg), got '" + v + "'");
      a.format = fmt.value_or(parley::diagram_format::dot);
    } else if (f == "--host") {
      a.serve_options.host = value();
    } else if (f == "--port") {
      const auto n = number(f, value());
      if (n > 65535) throw usage_error("--port must be from 0 to 65535");
      a.serve_options.port = static_cast<std::uint16_t>(n);
    } else if (f == "--token") {
      a.serve_options.token = value();
    } else if (f == "--no-color") {
      a.color = "never";
    } else if (f.size() > 1 && f[0] == '-') {
      throw usage_error("unknown option '" + f + "'");
    } else {
      pos.push_back(f);
    }
  }
  if (pos.size() < 2) throw usage_error("need a database and a command");
  // chain reads several files: DB [DB...] chain ID.
  if (auto it = std::find(pos.begin() + 1, pos.end(), "chain"); it != pos.end()) {
    a.dbs.assign(pos.begin(), it);
    a.db = a.dbs.front();
    a.chain = true;
    if (pos.end() - it != 2) throw usage_error("chain needs one MESSAGE_ID");
    a.session = *(it + 1);
    if (a.follow) throw usage_error("chain does not --follow");
    return a;
  }
  a.db = pos[0];
  const auto& c = pos[1];
  if (c == "serve") {
    if (pos.size() > 2) throw usage_error("serve takes no SESSION");
    a.serve = true;
    a.serve_options.db = a.db;
    return a;
  }
  if (c == "diagram") {
    if (pos.size() > 3) throw usage_error("diagram takes at most one SESSION id");
    if (a.follow) throw usage_error("diagram does not --follow");
    a.diagram = true;
    if (pos.size() == 3) a.session = pos[2];
    return a;
  }
  static const std::pair<const char*, command> names[] = {
      {"sessions", command::sessions}, {"chat", command::chat},
      {"transitions", command::transitions}, {"reasoning", command::reasoning},
      {"events", command::events}, {"timeline", command::timeline}};
  bool known = false;
  for (const auto& [n, k] : names)
    if (c == n) {
      a.cmd = k;
      known = true;
    }
  if (!known) throw usage_error("unknown command '" + c + "'");
  if (a.cmd == command::sessions) {
    if (pos.size() > 2) throw usage_error("sessions takes no SESSION (use --user U)");
  } else {
    if (pos.size() != 3) throw usage_error(c + " needs one SESSION id");
    a.session = pos[2];
  }
  if (a.follow && a.q.until) throw usage_error("--follow and --until do not go together");
  return a;
}

// The web inspector until SIGINT or SIGTERM. Its URL is the first line of output (tests read
// the port from it).
int serve(const args& a) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // Blocked before the server's threads start, so they inherit the mask and sigwait gets them.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  parley::platforms::inspector_server server(a.serve_options);
  server.start();
  std::cout << "inspector: " << server.url() << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.stop();
  return 0;
}

int inspect(const args& a) {
  if (a.chain) {
    const bool colour = a.color == "always" || (a.color == "auto" && ::isatty(1) && !std::getenv("NO_COLOR"));
    printer out(chain_headers(), a.json, false, colour && !a.json);
    out.print(chain(a.dbs, a.session));
    out.finish();
    return 0;
  }
  auto db = parley::db::open_reader(a.db);
  if (a.serve) return serve(a);
  if (a.diagram) {
    parley::db::diagram_request r{std::nullopt, a.q.agent, a.format};
    if (!a.session.empty()) r.session_row = find_session(*db, a.session, a.q.agent).row;
    const auto dot = parley::db::draw_diagram(*db, r);
    std::cout << (a.svg ? parley::platforms::dot_to_svg(dot) : dot);
    return 0;
  }
  std::optional<session_ref> s;
  if (a.cmd != command::sessions) s = find_session(*db, a.session, a.q.agent);
  const bool colour = a.color == "always" || (a.color == "auto" && ::isatty(1) && !std::getenv("NO_COLOR"));
  printer out(headers(a.cmd), a.json, a.follow, colour && !a.json);
  std::map<std::string, std::int64_t> seen;
  out.print(fetch(*db, a.cmd, s ? &*s : nullptr, a.q, seen));
  if (a.follow) {
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    std::signal(SIGPIPE, SIG_IGN);
    // Polling in short read statements: readers never block the agent's writer (SQLite's WAL,
    // PostgreSQL's MVCC).
    while (!g_stop && std::cout.good()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
      out.print(fetch(*db, a.cmd, s ? &*s : nullptr, a.q, seen));
    }
  }
  out.finish();
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  args a;
  try {
    a = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "parley-inspect: " << e.what() << "; see parley-inspect --help\n";
    return 2;
  }
  try {
    return inspect(a);
  } catch (const std::exception& e) {
    std::cerr << "parley-inspect: " << e.what() << "\n";
    return 1;
  }
}
