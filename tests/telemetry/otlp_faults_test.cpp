// A collector that is down, one that never answers, and the flush on stop: the bot answers
// as it does without telemetry, spans are dropped and counted, /health shows the counts.
#include <doctest/doctest.h>

#include <parley/platforms/websocket_platform.hpp>

#include "../platforms/ws_test_client.hpp"
#include "../stderr_capture.hpp"
#include "telemetry_support.hpp"

using namespace std::chrono_literals;
using parley::json;
namespace platforms = parley::platforms;

namespace {

// A port nothing listens on: bound, read back, closed.
std::uint16_t closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acc(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acc.local_endpoint().port();
  acc.close();
  return port;
}

// The greeter behind a WebSocket platform on port 0, exporting to `o.endpoint`.
struct ws_greeter {
  explicit ws_greeter(platforms::otlp_options o, const char* log_level = "error") {
    a.config().set("agent.threads", 2, "test");
    a.config().set("log.level", log_level, "test");
    test::define_greeter(a);
    exporter = std::make_shared<platforms::otlp_exporter>(std::move(o));
    a.set_trace_sink(exporter);
    platforms::websocket_options wo;
    wo.port = 0;
    ws = std::make_shared<platforms::websocket_platform>(wo);
    a.use_platform(ws);
    a.start();
  }
  ~ws_greeter() {
    a.stop();
    a.wait();
  }
  // Says hello and reads the three answers; false when they do not all come.
  bool converse(wstest::client& c) {
    c.say("hello");
    for (const char* want : {"nice to meet you", "done"})
      if (c.read_action("agent_reply_str")["message"] != want) return false;
    return true;
  }
  json health(boost::asio::io_context& io) {
    return json::parse(wstest::http_get(io, ws->port(), "/health").body());
  }

  parley::agent a{"greeter"};
  std::shared_ptr<platforms::otlp_exporter> exporter;
  std::shared_ptr<platforms::websocket_platform> ws;
};

}  // namespace

TEST_CASE("otlp: a collector that is down: the bot answers, spans are dropped, /health counts") {
  // The token in the endpoint must not reach /health or the log.
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(closed_port());
  test::stderr_capture log;
  ws_greeter g(test::quick(endpoint + "/?token=s3cret"), "warn");
  boost::asio::io_context io;
  wstest::client c(io);
  REQUIRE(!c.connect(g.ws->port(), "/?session_id=down-1"));
  REQUIRE(c.read_action("agent_reply_str")["message"] == "welcome");
  REQUIRE(g.converse(c));  // four spans
  for (int i = 0; i < 3; ++i) {  // one span each
    c.say("what now");
    REQUIRE(c.read_action("agent_reply_str")["message"] == "say hello again later");
  }
  REQUIRE(wstest::wait_for(io, [&] { return g.exporter->counts().dropped == 7; }));
  const json h = g.health(io);
  REQUIRE(h.contains("telemetry"));
  CHECK(h["telemetry"]["dropped"] == 7);
  CHECK(h["telemetry"]["exported"] == 0);
  CHECK(h["telemetry"]["failed_requests"].get<int>() >= 1);
  CHECK_FALSE(h["telemetry"]["last_error"].get<std::string>().empty());
  CHECK(h["telemetry"]["endpoint"].get<std::string>().find("/v1/traces") != std::string::npos);
  CHECK(h.dump().find("s3cret") == std::string::npos);
  // One warning (they are rate-limited) says how many were dropped and where to.
  const std::string said = log.finish();
  const std::string line = "span(s) dropped exporting to " + endpoint + "/v1/traces: ";
  const auto at = said.find(line);
  CHECK_MESSAGE(at != std::string::npos, said);
  CHECK(said.find(line, at + 1) == std::string::npos);
  CHECK(said.find("s3cret") == std::string::npos);
}

TEST_CASE("otlp: a collector that never answers: replies do not wait, the queue overflows") {
  test::otlp_receiver hung(test::otlp_receiver::mode::hang);
  auto o = test::quick(hung.endpoint());
  o.queue_capacity = 4;  // one turn makes four spans: the next overflows while a request hangs
  o.batch_size = 2;
  o.export_timeout = 60s;  // longer than the test: requests hang for its whole length
  o.shutdown_timeout = 200ms;
  auto g = std::make_unique<ws_greeter>(o);
  boost::asio::io_context io;
  wstest::client c(io);
  REQUIRE(!c.connect(g->ws->port(), "/?session_id=hung-1"));
  REQUIRE(c.read_action("agent_reply_str")["message"] == "welcome");
  REQUIRE(g->converse(c));
  REQUIRE(hung.wait([&](const auto&) { return hung.requests() >= 1; }));
  // Every turn now finds the exporter stuck on the first request; each still answers.
  for (int i = 0; i < 5; ++i) {
    c.say("what now");
    REQUIRE(c.read_action("agent_reply_str")["message"] == "say hello again later");
  }
  REQUIRE(wstest::wait_for(io, [&] { return g->exporter->counts().dropped >= 1; }));
  const json h = g->health(io);
  CHECK(h["telemetry"]["dropped"].get<int>() >= 1);
  CHECK(h["telemetry"]["queued"].get<int>() <= 4);
  CHECK(hung.requests() == 1);  // one request at a time
  // Stopping does not wait for the hung request longer than telemetry.shutdown_timeout.
  const auto t0 = std::chrono::steady_clock::now();
  g.reset();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("otlp: stopping the agent sends what is queued, and an endpoint with /v1/traces is kept") {
  test::otlp_receiver receiver;
  auto o = test::quick(receiver.endpoint() + "/v1/traces");
  o.batch_interval = 3600s;  // nothing leaves before the stop
  test::reply_box replies;
  parley::agent a("greeter");
  a.config().set("log.level", "error", "test");
  test::define_greeter(a);
  auto exporter = std::make_shared<platforms::otlp_exporter>(o);
  a.set_trace_sink(exporter);
  a.use_platform(replies.platform());
  a.start();
  a.get_or_create_session("f1", a.platforms().front().get());
  REQUIRE(a.receive_event("f1", parley::event::text("hello")).ok);
  REQUIRE(replies.wait("f1", 3));
  CHECK(receiver.requests() == 0);
  a.stop();
  a.wait();
  CHECK(receiver.spans().size() == 4);
  CHECK(receiver.targets() == std::vector<std::string>{"/v1/traces"});
  CHECK(exporter->counts().exported == 4);
  CHECK(exporter->counts().queued == 0);
}

TEST_CASE("otlp: spans a collector rejects (partialSuccess) are counted as dropped") {
  test::otlp_receiver receiver(test::otlp_receiver::mode::reject_one);
  test::reply_box replies;
  parley::agent a("greeter");
  a.config().set("log.level", "error", "test");
  test::define_greeter(a);
  auto exporter = std::make_shared<platforms::otlp_exporter>(test::quick(receiver.endpoint()));
  a.set_trace_sink(exporter);
  a.use_platform(replies.platform());
  a.start();
  a.get_or_create_session("r1", a.platforms().front().get());
  REQUIRE(a.receive_event("r1", parley::event::text("hello")).ok);
  REQUIRE(replies.wait("r1", 3));
  a.stop();
  a.wait();
  const auto c = exporter->counts();
  REQUIRE(receiver.requests() >= 1);
  CHECK(c.dropped == receiver.requests());  // one per request
  CHECK(c.exported + c.dropped == 4);
}
