#include <parley/config.hpp>

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace parley {

std::string_view to_string(config_type t) {
  switch (t) {
    case config_type::boolean: return "boolean";
    case config_type::integer: return "integer";
    case config_type::number: return "number";
    case config_type::string: return "string";
    case config_type::string_list: return "list of strings";
  }
  return "?";
}

config::config() {
  using t = config_type;
  // The runtime's own keys (BAF's dotted names where BAF has them). Platforms and DB handlers
  // declare theirs (platforms::declare_config, db::declare_config; parley::run calls both).
  declare("agent.check_transitions_delay", t::number, 0.0,
          "seconds between polls of condition transitions; 0 = no polling");
  declare("agent.threads", t::integer, 0, "worker threads; 0 = one per core");
  declare("agent.queue_capacity", t::integer, 1024, "events a session may have queued");
  declare("agent.max_auto_moves", t::integer, 64, "moves without an event before a loop error");
  declare("agent.persist_sessions", t::boolean, false, "resume known sessions after a restart");
  declare("agent.session_idle_ttl", t::number, 1800.0,
          "seconds a session with no connection and nothing to do stays in memory; 0 = forever");
  declare("agent.max_sessions", t::integer, 1000000,
          "live sessions; beyond it new ones are refused (WebSocket: 503)");
  declare("agent.error_reply", t::string, "Sorry, something went wrong.",
          "reply sent when a body throws");
  declare("agent.max_agent_depth", t::integer, 8,
          "agent-to-agent hops since a human spoke beyond which a message is not sent");
  declare("agent.agent_message_ids", t::integer, 1024,
          "ids of handled agent messages each session remembers, to drop resends");
  declare("agent.double_texting", t::string, "enqueue",
          "a user message arriving while the last is being handled: enqueue (wait), reject "
          "(error to the sender) or interrupt (cancel the running coroutine body)");
  declare("nlp.intent_threshold", t::number, 0.4, "minimum score for an intent to match");
  declare("nlp.language", t::string, "en", "language of the training sentences");
  declare("log.level", t::string, "info", "trace, debug, info, warn, error or off");
}

void config::declare(std::string name, config_type type, json default_value, std::string help) {
  auto it = keys_.find(name);
  if (it != keys_.end() && it->second.type != type)
    throw config_error("config key '" + name + "' is already declared as " +
                       std::string(to_string(it->second.type)) + ", not " +
                       std::string(to_string(type)));
  config_key k{name, type, json(), std::move(help)};
  k.default_value = coerce(k, std::move(default_value), "declaration");
  keys_[name] = std::move(k);
  // A value set before the key was declared (from a file) is now checked.
  if (auto v = values_.find(name); v != values_.end()) {
    v->second = coerce(keys_[name], v->second, "config");
    std::erase_if(unknown_, [&](const std::string& u) { return u.rfind(name + " ", 0) == 0; });
  }
}

json config::coerce(const config_key& k, json v, std::string_view source) const {
  auto wrong = [&]() -> config_error {
    return config_error("config key '" + k.name + "' (from " + std::string(source) +
                        ") must be a " + std::string(to_string(k.type)) + ", got " +
                        v.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  switch (k.type) {
    case config_type::boolean:
      if (!v.is_boolean()) throw wrong();
      return v;
    case config_type::integer:
      if (v.is_number_integer()) return v;
      if (v.is_number_float()) {
        // A whole number in int64's range ("8.0"); converting anything else is undefined.
        const double d = v.get<double>();
        if (d >= -0x1p63 && d < 0x1p63 && d == std::trunc(d)) return static_cast<std::int64_t>(d);
      }
      throw wrong();
    case config_type::number:
      if (!v.is_number()) throw wrong();
      return v.get<double>();
    case config_type::string:
      if (!v.is_string()) throw wrong();
      return v;
    case config_type::string_list:
      if (v.is_string()) return json::array({v});
      if (!v.is_array()) throw wrong();
      for (const auto& x : v)
        if (!x.is_string()) throw wrong();
      return v;
  }
  return v;
}

const json* config::find_set_value(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

void config::set(const std::string& key, json value, std::string_view source) {
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    std::string entry = key + " (" + std::string(source) + ")";
    if (std::find(unknown_.begin(), unknown_.end(), entry) == unknown_.end())
      unknown_.push_back(std::move(entry));
    values_[key] = std::move(value);
    return;
  }
  values_[key] = coerce(it->second, std::move(value), source);
}

namespace {

// A YAML scalar as JSON: booleans, integers, numbers, else the string.
json scalar_to_json(const std::string& s, bool quoted) {
  if (quoted) return s;
  if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "False" || s == "no" || s == "off") return false;
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  std::int64_t i{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  try {
    std::size_t used = 0;
    double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

// Nesting deeper than this is a mistake, or an alias that contains itself ("a: &x [*x]"),
// which would recurse until the stack overflows.
constexpr int max_depth = 64;
struct too_deep {};

json yaml_to_json(const YAML::Node& n, int depth = 0) {
  if (depth > max_depth) throw too_deep{};
  switch (n.Type()) {
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& x : n) a.push_back(yaml_to_json(x, depth + 1));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second, depth + 1);
      return o;
    }
    case YAML::NodeType::Scalar: return scalar_to_json(n.Scalar(), n.Tag() == "!");
    default: return nullptr;
  }
}

}  // namespace

void config::load_yaml(std::string_view yaml, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw config_error(std::string(source) + ": not valid YAML: " + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap())
    throw config_error(std::string(source) +
                       ": the top level must be a mapping of keys (e.g. 'nlp:' or "
                       "'nlp.intent_threshold: 0.5')");
  // Flatten nested mappings into dotted keys; a mapping under a declared list/scalar key is
  // kept whole so the type check names it.
  int depth = 0;
  std::function<void(const std::string&, const YAML::Node&)> walk = [&](const std::string& prefix,
                                                                        const YAML::Node& n) {
    if (++depth > max_depth) throw too_deep{};
    for (const auto& kv : n) {
      std::string key = prefix.empty() ? kv.first.as<std::string>()
                                       : prefix + "." + kv.first.as<std::string>();
      if (kv.second.IsMap() && !keys_.count(key))
        walk(key, kv.second);
      else
        set(key, yaml_to_json(kv.second), source);
    }
    --depth;
  };
  try {
    walk("", root);
  } catch (const YAML::Exception& e) {
    // A key that is a list or a mapping ("[a]: 1") cannot be read as a name.
    throw config_error(std::string(source) + ": " + e.what() +
                       "; keys must be names (e.g. 'nlp:' or 'nlp.intent_threshold: 0.5')");
  } catch (const too_deep&) {
    throw config_error(std::string(source) + ": nested more than " + std::to_string(max_depth) +
                       " levels deep; is there an alias that contains itself?");
  }
}

void config::load_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw config_error("cannot read config file '" + file.string() +
                       "': check the path given to --config");
  std::stringstream ss;
  ss << in.rdbuf();
  load_yaml(ss.str(), file.string());
}

void config::set_text(const std::string& key, std::string_view text, std::string_view source) {
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    set(key, scalar_to_json(std::string(text), false), source);
    return;
  }
  json v;
  switch (it->second.type) {
    case config_type::string: v = std::string(text); break;
    case config_type::string_list: {
      v = json::array();
      std::string item;
      std::stringstream ss{std::string(text)};
      while (std::getline(ss, item, ','))
        if (!item.empty()) v.push_back(item);
      break;
    }
    default: v = scalar_to_json(std::string(text), false);
  }
  set(key, std::move(v), source);
}

bool config::contains(const std::string& key) const {
  return keys_.count(key) || values_.count(key);
}

const json& config::value(const std::string& key) const {
  if (auto v = values_.find(key); v != values_.end()) return v->second;
  if (auto k = keys_.find(key); k != keys_.end()) return k->second.default_value;
  throw config_error("unknown config key '" + key +
                     "': declare it with agent.config().declare(...) or set it in the file");
}

double config::get_double(const std::string& key) const { return value(key).get<double>(); }

std::vector<std::string> config::get_strings(const std::string& key) const {
  const json& v = value(key);
  if (v.is_string()) return {v.get<std::string>()};
  return v.get<std::vector<std::string>>();
}

command_line parse_command_line(int argc, const char* const* argv, config& cfg) {
  command_line out;
  out.usage =
      "usage: " + std::string(argc > 0 ? argv[0] : "agent") +
      " [options]\n"
      "  --config FILE       YAML configuration (flags below override it)\n"
      "  --console           talk to the agent on this terminal instead of WebSocket\n"
      "  --host HOST         WebSocket address (platforms.websocket.host)\n"
      "  --port N            WebSocket port (platforms.websocket.port)\n"
      "  --db PATH           SQLite database file (db.path); --db '' disables recording\n"
      "  --threads N         worker threads (agent.threads; 0 = one per core)\n"
      "  --log-level LEVEL   trace, debug, info, warn, error or off (log.level)\n"
      "  --set KEY=VALUE     any config key, e.g. --set nlp.intent_threshold=0.5\n"
      "  --help              this text\n";
  struct pending {
    std::string key, value, flag;
  };
  std::vector<pending> overrides;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string inline_value;
    bool has_inline = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos &&
                                  flag.rfind("--set", 0) != 0) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    auto next = [&]() -> std::string {
      if (has_inline) return inline_value;
      if (i + 1 >= argc) throw config_error("flag " + flag + " needs a value; see --help");
      return argv[++i];
    };
    if (flag == "--help" || flag == "-h") {
      out.help = true;
    } else if (flag == "--console") {
      out.console = true;
      overrides.push_back({"platforms.console.enabled", "true", flag});
    } else if (flag == "--config") {
      config_file = next();
    } else if (flag == "--host") {
      overrides.push_back({"platforms.websocket.host", next(), flag});
    } else if (flag == "--port") {
      overrides.push_back({"platforms.websocket.port", next(), flag});
    } else if (flag == "--db") {
      overrides.push_back({"db.path", next(), flag});
    } else if (flag == "--threads") {
      overrides.push_back({"agent.threads", next(), flag});
    } else if (flag == "--log-level") {
      overrides.push_back({"log.level", next(), flag});
    } else if (flag == "--set" || flag.rfind("--set=", 0) == 0) {
      std::string kv = flag == "--set" ? next() : flag.substr(6);
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw config_error("--set needs KEY=VALUE, got '" + kv + "'");
      overrides.push_back({kv.substr(0, eq), kv.substr(eq + 1), "--set"});
    } else {
      throw config_error("unknown flag '" + flag + "'; see --help for the flags");
    }
  }
  if (!config_file.empty()) cfg.load_file(config_file);
  for (const auto& o : overrides) cfg.set_text(o.key, o.value, o.flag);
  return out;
}

}  // namespace parley
