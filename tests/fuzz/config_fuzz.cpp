// Fuzzes the configuration loader: a YAML (or JSON) config file, then a command line, as an
// agent reads them at start. The input is the file's text, optionally followed by a NUL byte
// and the command-line arguments, one per line. Checks, besides the sanitizers: the only
// exception is parley::config_error (what the API documents), and after a load that
// succeeded every declared key reads back with its declared type.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <parley/config.hpp>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "config fuzz: %s\n", what);
    std::abort();
  }
}

// Every declared key must read back as its type (get_* throw nlohmann's type_error if not).
void check_types(const parley::config& cfg) {
  for (const auto& [name, key] : cfg.declared()) {
    switch (key.type) {
      case parley::config_type::boolean: (void)cfg.get_bool(name); break;
      case parley::config_type::integer: (void)cfg.get_int(name); break;
      case parley::config_type::number: (void)cfg.get_double(name); break;
      case parley::config_type::string: (void)cfg.get_string(name); break;
      case parley::config_type::string_list: (void)cfg.get_strings(name); break;
    }
  }
}

parley::config make_config() {
  parley::config cfg;
  // Keys of a bot's own, one of each type, as agents declare them.
  cfg.declare("bot.greeting", parley::config_type::string, "hi");
  cfg.declare("bot.retries", parley::config_type::integer, 3);
  cfg.declare("bot.ratio", parley::config_type::number, 0.5);
  cfg.declare("bot.verbose", parley::config_type::boolean, false);
  cfg.declare("bot.names", parley::config_type::string_list, parley::json::array({"a"}));
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string_view yaml = input.substr(0, nul);

  parley::config cfg = make_config();
  try {
    cfg.load_yaml(yaml, "fuzz.yaml");
    check_types(cfg);
  } catch (const parley::config_error&) {
    return 0;  // a bad file is refused with a message: expected
  }
  if (nul == std::string_view::npos) return 0;

  // The command line: "prog" then one argument per line. --config would read a file: not here.
  std::vector<std::string> args{"agent"};
  std::string_view rest = input.substr(nul + 1);
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    args.emplace_back(rest.substr(0, nl));
    if (args.back().rfind("--config", 0) == 0) return 0;
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    (void)parley::parse_command_line(static_cast<int>(argv.size()), argv.data(), cfg);
    check_types(cfg);
  } catch (const parley::config_error&) {
  }
  return 0;
}
