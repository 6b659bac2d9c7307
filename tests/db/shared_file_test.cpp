// Two agents recording to one database file, each in its own process: every row of both is
// kept. Two greetings processes serve WebSocket clients that chat at full speed at once.
#include <doctest/doctest.h>

#include <csignal>
#include <memory>

#include "support.hpp"
#include "ws_test_client.hpp"

using namespace std::chrono_literals;

namespace {

// Starts the greetings bot on WebSocket (any port) recording to `path`; returns its port.
std::uint16_t start_greetings(test::child& bot) {
  INFO("the bot's log: " << bot.err());
  const auto port = test::listening_port(bot);
  REQUIRE(port != 0);
  return port;
}

}  // namespace

TEST_CASE("two greetings processes on one database file, 50 connections each, keep every row") {
  test::temp_dir dir;
  const auto path = dir.file("shared.db");
  auto args = [&] {
    return std::vector<std::string>{PARLEY_GREETINGS_BIN, "--db", path, "--port", "0",
                                    "--log-level", "info",
                                    "--set", "platforms.websocket.rate_limit=0"};
  };
  test::child a(args()), b(args());
  const std::uint16_t ports[] = {start_greetings(a), start_greetings(b)};

  constexpr int per_process = 50;
  constexpr int pairs = 20;  // "hello" (2 replies) then "good" (1 reply), this many times
  wstest::net::io_context io;
  std::vector<std::unique_ptr<wstest::client>> clients;
  for (int i = 0; i < 2 * per_process; ++i) {
    clients.push_back(std::make_unique<wstest::client>(io));
    REQUIRE(!clients.back()->connect(ports[i % 2]));
    CHECK(clients.back()->read()["message"] == "Hi! I'm the greetings bot. Say hello when you're ready.");
  }
  // Every client sends all its messages at once, so both processes answer and record at full
  // speed at the same time; then each client reads every reply.
  for (auto& c : clients)
    for (int k = 0; k < pairs; ++k) {
      c->say("hello");
      c->say("good");
    }
  for (auto& c : clients)
    for (int k = 0; k < 3 * pairs; ++k) REQUIRE(c->try_read(20s).has_value());

  a.kill(SIGTERM);
  b.kill(SIGTERM);
  CHECK(a.finish() == 0);
  CHECK(b.finish() == 0);
  auto tail = [](const std::string& log) { return log.substr(log.size() - std::min<std::size_t>(log.size(), 2000)); };
  INFO("first process's log ends:\n" << tail(a.err()));
  INFO("second process's log ends:\n" << tail(b.err()));
  CHECK(a.err().find("gave up") == std::string::npos);
  CHECK(b.err().find("gave up") == std::string::npos);

  // Per connection: the greeting, then per pair the two messages and three replies.
  const long long sessions = 2 * per_process;
  CHECK(test::query_count(path, "SELECT count(*) FROM session") == sessions);
  CHECK(test::query_count(path, "SELECT count(*) FROM chat") == sessions * (1 + 5 * pairs));
  CHECK(test::query_count(path, "SELECT count(*) FROM chat WHERE is_user = 1") ==
        sessions * 2 * pairs);
  // Every session has all of its rows, not just the total.
  CHECK(test::query_count(path, "SELECT count(*) FROM (SELECT session_id, count(*) AS n FROM chat "
                                "GROUP BY session_id HAVING n != " +
                                    std::to_string(1 + 5 * pairs) + ")") == 0);
  CHECK(test::query_count(path, "SELECT count(*) FROM transition") == sessions * 3 * pairs);
  CHECK(test::query_count(path, "SELECT count(*) FROM intent_prediction") ==
        sessions * 2 * pairs);
  CHECK(test::query_text(path, "PRAGMA integrity_check") == "ok");
}
