// Configuration: YAML with BAF's dotted keys, flags that override it, unknown keys reported,
// wrong types named.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include <parley/config.hpp>

using parley::config;
using parley::config_error;

namespace {
// The runtime declares only its own keys; a library (here, as the WebSocket platform does)
// declares the rest.
config with_platform_keys() {
  config c;
  using t = parley::config_type;
  c.declare("platforms.console.enabled", t::boolean, false);
  c.declare("platforms.websocket.host", t::string, "127.0.0.1");
  c.declare("platforms.websocket.port", t::integer, 8765);
  c.declare("platforms.websocket.origins", t::string_list, parley::json::array());
  c.declare("db.path", t::string, "parley.db");
  return c;
}
}  // namespace

TEST_CASE("nested and dotted YAML keys both land on dotted names") {
  config c = with_platform_keys();
  c.load_yaml(R"(
agent:
  check_transitions_delay: 0.5
nlp.intent_threshold: 0.6
platforms:
  websocket:
    host: 0.0.0.0
    port: 9000
    origins: [http://a.example, http://b.example]
)");
  CHECK(c.get_double("agent.check_transitions_delay") == doctest::Approx(0.5));
  CHECK(c.get_double("nlp.intent_threshold") == doctest::Approx(0.6));
  CHECK(c.get_string("platforms.websocket.host") == "0.0.0.0");
  CHECK(c.get_int("platforms.websocket.port") == 9000);
  CHECK(c.get_strings("platforms.websocket.origins").size() == 2);
  CHECK(c.unknown_keys().empty());
}

TEST_CASE("defaults hold when nothing is set") {
  config c;
  CHECK(c.get_double("nlp.intent_threshold") == doctest::Approx(0.4));
  CHECK(c.get_int("agent.queue_capacity") == 1024);
  CHECK(c.get_double("agent.session_idle_ttl") == 1800.0);
  CHECK(c.get_int("agent.max_sessions") == 1000000);
  // The runtime does not know its platforms' or database's keys: they declare their own.
  CHECK_FALSE(c.declared().count("platforms.websocket.port"));
  CHECK_FALSE(c.declared().count("db.path"));
  CHECK(c.get_double("agent.check_transitions_delay") == 0.0);
}

TEST_CASE("a wrong type is an error naming the key and the expected type") {
  config c = with_platform_keys();
  try {
    c.load_yaml("platforms:\n  websocket:\n    port: eighty\n", "bot.yaml");
    FAIL("no error");
  } catch (const config_error& e) {
    std::string m = e.what();
    CHECK(m.find("platforms.websocket.port") != std::string::npos);
    CHECK(m.find("integer") != std::string::npos);
    CHECK(m.find("bot.yaml") != std::string::npos);
  }
  CHECK_THROWS_AS(c.set("agent.persist_sessions", "yes please"), config_error);
}

TEST_CASE("unknown keys are reported, not fatal") {
  config c;
  c.load_yaml("nlp:\n  intent_treshold: 0.3\n", "bot.yaml");
  REQUIRE(c.unknown_keys().size() == 1);
  CHECK(c.unknown_keys()[0].find("nlp.intent_treshold") != std::string::npos);
}

TEST_CASE("a key declared after the file was read is type-checked then") {
  config c;
  c.load_yaml("mybot.greeting: hello\nmybot.retries: 3\n");
  CHECK(c.unknown_keys().size() == 2);
  c.declare("mybot.retries", parley::config_type::integer, 1);
  CHECK(c.get_int("mybot.retries") == 3);
  CHECK(c.unknown_keys().size() == 1);
  CHECK_THROWS_AS(c.declare("mybot.greeting", parley::config_type::integer, 0), config_error);
}

TEST_CASE("bad YAML and missing files are clear errors") {
  config c;
  CHECK_THROWS_WITH_AS(c.load_yaml("a: [1, 2", "x.yaml"), doctest::Contains("x.yaml: not valid YAML"),
                       config_error);
  CHECK_THROWS_WITH_AS(c.load_file("/nonexistent/bot.yaml"),
                       doctest::Contains("cannot read config file '/nonexistent/bot.yaml'"),
                       config_error);
}

TEST_CASE("command-line flags override the file whatever their order") {
  auto dir = std::filesystem::temp_directory_path() / ("parley-cfg-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = dir / "bot.yaml";
  std::ofstream(file) << "platforms:\n  websocket:\n    port: 9000\n    host: 10.0.0.1\n"
                         "nlp:\n  intent_threshold: 0.7\n";
  config c = with_platform_keys();
  const std::string f = file.string();
  const char* argv[] = {"bot", "--port", "9100", "--config", f.c_str(), "--set",
                        "nlp.intent_threshold=0.55", "--threads=3", "--db", "x.db",
                        "--log-level", "debug", "--console"};
  auto cl = parley::parse_command_line(13, argv, c);
  CHECK(cl.console);
  CHECK(c.get_int("platforms.websocket.port") == 9100);
  CHECK(c.get_string("platforms.websocket.host") == "10.0.0.1");
  CHECK(c.get_double("nlp.intent_threshold") == doctest::Approx(0.55));
  CHECK(c.get_int("agent.threads") == 3);
  CHECK(c.get_string("db.path") == "x.db");
  CHECK(c.get_string("log.level") == "debug");
  CHECK(c.get_bool("platforms.console.enabled"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad flags are named") {
  config c = with_platform_keys();
  const char* a1[] = {"bot", "--frobnicate"};
  CHECK_THROWS_WITH_AS(parley::parse_command_line(2, a1, c), doctest::Contains("--frobnicate"),
                       config_error);
  const char* a2[] = {"bot", "--port"};
  CHECK_THROWS_WITH_AS(parley::parse_command_line(2, a2, c), doctest::Contains("needs a value"),
                       config_error);
  const char* a3[] = {"bot", "--port", "http"};
  CHECK_THROWS_AS(parley::parse_command_line(3, a3, c), config_error);
  const char* a4[] = {"bot", "--set", "novalue"};
  CHECK_THROWS_WITH_AS(parley::parse_command_line(3, a4, c), doctest::Contains("KEY=VALUE"),
                       config_error);
}

// Inputs found by fuzzing (tests/fuzz/corpus/config/regress-*): each once escaped as another
// exception, overflowed the stack or was undefined behaviour. Each is a config_error now.
TEST_CASE("a wrong-typed value with invalid UTF-8 is a config_error naming the key") {
  config c;
  CHECK_THROWS_WITH_AS(c.load_yaml("agent.threads: \"m\xff\xfe ny\"\n", "bot.yaml"),
                       doctest::Contains("agent.threads"), config_error);
  CHECK_THROWS_WITH_AS(c.load_yaml("agent:\n  persist_sessions: y\xff\xff" "es\n", "bot.yaml"),
                       doctest::Contains("agent.persist_sessions"), config_error);
  CHECK_THROWS_AS(c.set("agent.threads", std::string("\xc3\x28")), config_error);
  // The message itself is valid UTF-8 (the bad bytes are replaced), so it can be logged as JSON.
  try {
    c.load_yaml("agent.threads: \"\xff\"\n", "bot.yaml");
    FAIL("no error");
  } catch (const config_error& e) {
    const std::string m = e.what();
    CHECK(m.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD
    CHECK_NOTHROW((void)parley::json(m).dump());
  }
}

TEST_CASE("a YAML key that is a list or a mapping is a config_error") {
  for (const char* yaml : {"[a]: 1\n", "{a: 1}: 2\n", "? [a, b]\n: 1\n", "agent:\n  [threads]: 1\n",
                           "{\"agent\": {[x]: 1}}"}) {
    CAPTURE(yaml);
    config c;
    CHECK_THROWS_WITH_AS(c.load_yaml(yaml, "bot.yaml"), doctest::Contains("bot.yaml"), config_error);
  }
}

TEST_CASE("an alias that contains itself is a config_error, not a stack overflow") {
  config c = with_platform_keys();
  for (const char* yaml : {"a: &x [*x]\n", "base: &b\n  other: *b\n",
                           "platforms.websocket.origins: &o [*o]\n", "agent: &a\n  more: *a\n"}) {
    CAPTURE(yaml);
    CHECK_THROWS_WITH_AS(c.load_yaml(yaml, "bot.yaml"), doctest::Contains("64 levels"),
                         config_error);
  }
  // Aliases that do not contain themselves still work.
  c.load_yaml("hosts: &h [http://a.example]\nplatforms.websocket.origins: *h\n");
  CHECK(c.get_strings("platforms.websocket.origins").size() == 1);
}

TEST_CASE("a number too large for an integer key is a config_error, not undefined behaviour") {
  // The old test for a whole number converted the double to int64 first: undefined out of
  // range. On x86-64 that gave INT64_MIN and so the same error; only a build that checks float
  // casts (the clang fuzz target's UBSan) saw it. These pin the error and the range.
  config c;
  c.declare("bot.retries", parley::config_type::integer, 1);
  for (const char* value : {"1e300", "-1e300", "9223372036854775808.0", "1e19", "nan", "inf", "2.5"}) {
    CAPTURE(value);
    CHECK_THROWS_WITH_AS(c.load_yaml(std::string("agent.threads: ") + value + "\n", "bot.yaml"),
                         doctest::Contains("agent.threads"), config_error);
    CHECK_THROWS_AS(c.load_yaml(std::string("bot.retries: ") + value + "\n"), config_error);
    CHECK_THROWS_AS(c.set_text("bot.retries", value, "--set"), config_error);
  }
  CHECK_THROWS_AS(c.set("agent.threads", 1e300), config_error);
  const char* flags[] = {"bot", "--set", "agent.threads=1e300"};
  CHECK_THROWS_AS(parley::parse_command_line(3, flags, c), config_error);
  const char* threads[] = {"bot", "--threads", "1e300"};
  CHECK_THROWS_AS(parley::parse_command_line(3, threads, c), config_error);
  // Whole numbers written as floats, within int64's range, are still integers.
  c.load_yaml("agent.threads: 8.0\nbot.retries: -9223372036854775808.0\n");
  CHECK(c.get_int("agent.threads") == 8);
  CHECK(c.get_int("bot.retries") == std::numeric_limits<std::int64_t>::min());
}
