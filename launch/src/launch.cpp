#include <parley/parley.hpp>

#include <cstdio>
#include <iostream>

#include <parley/db/config_keys.hpp>
#include <parley/db/postgres_db_handler.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/a2a_client.hpp>
#include <parley/platforms/config_keys.hpp>
#include <parley/platforms/console_platform.hpp>
#include <parley/platforms/otlp_exporter.hpp>
#include <parley/platforms/websocket_agents.hpp>
#include <parley/platforms/websocket_platform.hpp>

namespace parley {

namespace {
// The integer `key`, which must lie in [lo, hi] (no upper bound when hi is 0).
std::int64_t int_in(const config& cfg, const std::string& key, std::int64_t lo, std::int64_t hi = 0) {
  const auto v = cfg.get_int(key);
  if (v < lo || (hi && v > hi))
    throw config_error(key + " must be " +
                       (hi ? "between " + std::to_string(lo) + " and " + std::to_string(hi)
                           : "at least " + std::to_string(lo)) +
                       ", got " + std::to_string(v));
  return v;
}
}  // namespace

void declare_config(config& cfg) {
  platforms::declare_config(cfg);
  db::declare_config(cfg);
}

void configure(agent& a) {
  auto& cfg = a.config();
  declare_config(cfg);
  set_log_level(parse_log_level(cfg.get_string("log.level")));
  // The database we record to (below), unless the bot brought its own handler: PostgreSQL when
  // db.url is set or --db names a postgresql:// URI, else the SQLite file db.path; `--db ''`
  // disables recording.
  std::string pg_url = cfg.get_string("db.url");
  if (pg_url.empty() && db::is_postgres_url(cfg.get_string("db.path"))) pg_url = cfg.get_string("db.path");
  const bool use_sqlite = !a.db() && cfg.get_bool("db.enabled") && pg_url.empty() &&
                          !cfg.get_string("db.path").empty();
  if (cfg.get_bool("platforms.console.enabled")) {
    a.use_platform(std::make_shared<platforms::console_platform>());
    // No WebSocket platform to register them: the clients that reach other agents on their
    // own (session::send_to_agent, session::ask_agent).
    if (!a.find_agent_transport("websocket"))
      platforms::use_websocket_agents(a, platforms::websocket_agent_options::from_config(cfg));
    if (cfg.get_bool("platforms.a2a.enabled"))
      platforms::use_a2a_agents(a, platforms::a2a_options::from_config(cfg));
  } else if (cfg.get_bool("platforms.websocket.enabled")) {
    auto o = platforms::websocket_options::from_config(cfg);
    // The web inspector reads the same database, on connections of its own.
    if (use_sqlite) o.inspector_db = cfg.get_string("db.path");
    if (!a.db() && cfg.get_bool("db.enabled") && !pg_url.empty()) o.inspector_db = pg_url;
    a.use_platform(std::make_shared<platforms::websocket_platform>(std::move(o)));
  }
  // Traces over OTLP/HTTP when telemetry.otlp_endpoint is set, unless the bot set a sink.
  if (!a.traces()) platforms::use_otlp_exporter(a, cfg);
  if (!a.db() && cfg.get_bool("db.enabled") && !pg_url.empty()) {
    db::postgres_options o;
    o.url = pg_url;
    o.max_queued = static_cast<std::size_t>(int_in(cfg, "db.max_queued", 1));
    o.lease_ttl = std::chrono::milliseconds(int_in(cfg, "db.lease_ttl_ms", 300, 600000));
    // The node's address is published by the WebSocket platform once it has bound its port.
    a.use_db(std::make_shared<db::postgres_db_handler>(std::move(o)));
  }
  if (use_sqlite) {
    db::sqlite_options o;
    o.path = cfg.get_string("db.path");
    o.sync_commit = cfg.get_bool("db.sync_commit");
    o.commit_interval = std::chrono::milliseconds(int_in(cfg, "db.commit_interval_ms", 0, 10000));
    o.writer_nice = static_cast<int>(int_in(cfg, "db.writer_nice", 0, 19));
    o.max_queued = static_cast<std::size_t>(int_in(cfg, "db.max_queued", 1));
    o.readers = static_cast<std::size_t>(int_in(cfg, "db.readers", 1, 64));
    a.use_db(std::make_shared<db::sqlite_db_handler>(std::move(o)));
  }
}

namespace {
template <class F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const definition_error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const config_error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const db_error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
}  // namespace

int run(agent& a, int argc, const char* const* argv) {
  return guarded([&] {
    declare_config(a.config());  // before the flags and the file are read, so --set knows them
    const command_line cl = parse_command_line(argc, argv, a.config());
    if (cl.help) {
      std::cout << cl.usage;
      return 0;
    }
    configure(a);
    return a.run();
  });
}

int run(std::string name, int argc, const char* const* argv,
        const std::function<void(agent&)>& define) {
  return guarded([&] {
    agent a(std::move(name));
    declare_config(a.config());
    const command_line cl = parse_command_line(argc, argv, a.config());
    if (cl.help) {
      std::cout << cl.usage;
      return 0;
    }
    define(a);
    configure(a);
    return a.run();
  });
}

}  // namespace parley
