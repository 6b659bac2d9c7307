#pragma once
/// Everything a bot needs: the runtime, plus `parley::run`, which turns the command line and
/// the config file into platforms and a DB handler and runs the agent.
///
///   int main(int argc, char** argv) {
///     parley::agent agent("greetings");
///     ... states, intents, transitions ...
///     return parley::run(agent, argc, argv);
///   }
#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/log.hpp>

namespace parley {

/// Parses the standard flags (see parse_command_line), adds the platforms the config asks
/// for (WebSocket by default, the console with --console) and the DB handler (db.path), runs
/// the agent until SIGINT/SIGTERM (or the end of console input) and returns the exit code:
/// 0 after a clean stop, 2 for a definition or configuration error, 3 when the database cannot
/// be opened, 1 otherwise. Errors are printed to stderr in one line naming the fix.
int run(agent& a, int argc, const char* const* argv);

/// The same for bots that read configuration while they are defined: makes the agent `name`,
/// reads the flags and config file, then calls `define(agent)` (so `agent.config()` already
/// holds --set values and the file's keys), then runs it.
int run(std::string name, int argc, const char* const* argv,
        const std::function<void(agent&)>& define);

/// Adds platforms and a DB handler to `a` from its config, as run() does (for programs that
/// call a.start() themselves). @throws config_error, db_error.
void configure(agent& a);

/// Declares the keys of every library run() and configure() use: `platforms.*` and `db.*`
/// (the runtime's own are declared by config itself). Call it before reading flags or a file
/// into a config you build yourself. Idempotent.
void declare_config(config& cfg);

}  // namespace parley
