#pragma once
/// Configuration: dotted keys ("nlp.intent_threshold", "platforms.websocket.port") read from a
/// YAML file (nested or dotted), overridden by command-line flags. Keys are declared with a
/// type and a default; unknown keys are reported, wrong types are errors. Read-only once the
/// agent runs (then safe from every thread).
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <parley/errors.hpp>
#include <parley/net.hpp>

namespace parley {

enum class config_type { boolean, integer, number, string, string_list };
std::string_view to_string(config_type t);

struct config_key {
  std::string name;
  config_type type;
  json default_value;
  std::string help;
};

class config {
 public:
  /// Declares the runtime's own keys, agent.*, nlp.* and log.* (see config.cpp). Each library
  /// declares its own: platforms::declare_config (platforms.*), db::declare_config (db.*);
  /// parley::run calls them (parley::declare_config) before it reads flags and the file.
  config();

  /// Declares a key of the bot's own. Redeclaring with the same type updates the default.
  /// @throws config_error when the name is declared with another type.
  void declare(std::string name, config_type type, json default_value, std::string help = {});

  /// @throws config_error naming the file (missing, unreadable, bad YAML) or a key whose value
  /// has the wrong type.
  void load_file(const std::filesystem::path& file);
  void load_yaml(std::string_view yaml, std::string_view source = "<yaml>");
  /// Sets a value, checking its type. @throws config_error naming key and expected type.
  void set(const std::string& key, json value, std::string_view source = "code");
  /// Sets from text ("8765", "true", "a,b"), converted to the key's type.
  void set_text(const std::string& key, std::string_view text, std::string_view source);

  bool contains(const std::string& key) const;
  /// The value set for `key` from a file, a flag or code, declared or not (a library that
  /// finds its keys by prefix, like mcp.servers.NAME.*, reads them this way before declaring
  /// them); nullptr when none was set.
  const json* find_set_value(const std::string& key) const;
  /// The value (or the declared default). @throws config_error for an unknown key.
  const json& value(const std::string& key) const;
  bool get_bool(const std::string& key) const { return value(key).get<bool>(); }
  std::int64_t get_int(const std::string& key) const { return value(key).get<std::int64_t>(); }
  double get_double(const std::string& key) const;
  std::string get_string(const std::string& key) const { return value(key).get<std::string>(); }
  std::vector<std::string> get_strings(const std::string& key) const;

  /// Keys set from a file or flag that nobody declared ("key (source)").
  const std::vector<std::string>& unknown_keys() const { return unknown_; }
  const std::map<std::string, config_key>& declared() const { return keys_; }

 private:
  json coerce(const config_key& k, json v, std::string_view source) const;
  std::map<std::string, config_key> keys_;
  std::map<std::string, json> values_;
  std::vector<std::string> unknown_;
};

/// What the standard command line asked for, beyond config values.
struct command_line {
  bool help = false;
  bool console = false;
  std::string usage;  ///< the help text
};

/// Parses `--config FILE`, `--console`, `--port N`, `--host H`, `--db PATH`, `--threads N`,
/// `--log-level L`, `--set key=value` (repeatable) and `--help`; the file is loaded first and
/// every flag overrides it, whatever the order. @throws config_error naming the bad flag.
command_line parse_command_line(int argc, const char* const* argv, config& cfg);

}  // namespace parley
