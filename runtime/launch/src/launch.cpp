#include <parley/parley.hpp>

#include <cstdio>
#include <iostream>

#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/console_platform.hpp>
#include <parley/platforms/websocket_platform.hpp>

namespace parley {

void configure(agent& a) {
  auto& cfg = a.config();
  set_log_level(parse_log_level(cfg.get_string("log.level")));
  if (cfg.get_bool("platforms.console.enabled")) {
    a.use_platform(std::make_shared<platforms::console_platform>());
  } else if (cfg.get_bool("platforms.websocket.enabled")) {
    a.use_platform(std::make_shared<platforms::websocket_platform>(
        platforms::websocket_options::from_config(cfg)));
  }
  // The SQLite DB handler, unless the bot brought its own; `--db ''` disables recording.
  if (!a.db() && cfg.get_bool("db.enabled") && !cfg.get_string("db.path").empty()) {
    db::sqlite_options o;
    o.path = cfg.get_string("db.path");
    o.sync_commit = cfg.get_bool("db.sync_commit");
    const auto interval = cfg.get_int("db.commit_interval_ms");
    if (interval < 0 || interval > 10000)
      throw config_error("db.commit_interval_ms must be between 0 and 10000, got " +
                         std::to_string(interval));
    o.commit_interval = std::chrono::milliseconds(interval);
    const auto nice = cfg.get_int("db.writer_nice");
    if (nice < 0 || nice > 19)
      throw config_error("db.writer_nice must be between 0 and 19, got " + std::to_string(nice));
    o.writer_nice = static_cast<int>(nice);
    const auto queued = cfg.get_int("db.max_queued");
    if (queued < 1)
      throw config_error("db.max_queued must be at least 1, got " + std::to_string(queued));
    o.max_queued = static_cast<std::size_t>(queued);
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
