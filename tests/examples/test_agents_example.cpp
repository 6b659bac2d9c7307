// The agents example end to end: the specialist and the front desk as real processes on
// loopback, once over BAF's WebSocket way and once over A2A, and with the specialist gone.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <regex>

#include "../db/support.hpp"

using namespace std::chrono_literals;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Waits for the specialist to listen; returns its port (0 if it did not come up).
int specialist_port(test::child& s) {
  const std::regex port_re("listening; open http://127\\.0\\.0\\.1:([0-9]+)/");
  std::smatch m;
  if (!s.read_err_until([&](const std::string& err) { return std::regex_search(err, m, port_re); }, 20s))
    return 0;
  return std::stoi(m[1]);
}

// Asks the front desk one question on its console; returns what it printed.
std::string ask(const std::string& db, const std::string& specialist, const std::string& via,
                const std::string& question, const std::string& expect) {
  test::child desk({FRONT_DESK_BIN, "--console", "--db", db, "--log-level", "warn", "--set",
                    "front_desk.specialist=" + specialist, "--set", "front_desk.via=" + via});
  REQUIRE(desk.read_until([](const std::string& out) { return has(out, "front desk"); }, 20s));
  desk.write(question + "\n");
  CHECK_MESSAGE(desk.read_until([&](const std::string& out) { return has(out, expect); }, 20s),
                desk.out(), desk.err());
  CHECK(desk.finish() == 0);  // end of input: the front desk stops cleanly
  return desk.out();
}

// A loopback port nobody listens on: bound, read, closed.
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("the front desk relays the specialist's answers over BAF's WebSocket way and A2A") {
  test::temp_dir dir;
  test::child specialist({SPECIALIST_BIN, "--port", "0", "--db", dir.file("specialist.db"),
                          "--log-level", "info"});
  const int port = specialist_port(specialist);
  REQUIRE_MESSAGE(port > 0, specialist.err());

  const auto front = dir.file("front.db");
  auto out = ask(front, "ws://127.0.0.1:" + std::to_string(port), "websocket",
                 "When are you open?", "Our specialist says: We are open 9:00 to 17:00");
  CHECK(has(out, "Let me ask our specialist"));
  ask(front, "http://127.0.0.1:" + std::to_string(port), "a2a", "What are your prices?",
      "Our specialist says: Repairs start at 40 euros");

  // Both sides recorded the messages with their lineage: the specialist's answer was caused
  // by the front desk's question, one hop deeper.
  specialist.kill(SIGTERM);
  CHECK(specialist.finish() == 0);
  CHECK(test::query_count(front, "SELECT count(*) FROM agent_message WHERE direction = 'out'") >= 2);
  CHECK(test::query_count(front, "SELECT count(*) FROM agent_message a JOIN agent_message q "
                                 "ON a.causation_id = q.message_id WHERE q.direction = 'out' "
                                 "AND a.depth = q.depth + 1") >= 1);
}

TEST_CASE("the front desk says so when the specialist cannot be reached") {
  test::temp_dir dir;
  const int port = unused_port();
  auto out = ask(dir.file("front.db"), "ws://127.0.0.1:" + std::to_string(port), "websocket",
                 "When are you open?", "Sorry, I could not reach our specialist");
  CHECK_FALSE(has(out, "Our specialist says"));
}
