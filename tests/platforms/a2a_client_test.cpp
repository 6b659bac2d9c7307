// The A2A client's keep-alive connections, over real loopback sockets: an agent's session asks
// a tiny Beast A2A peer (in this test, counting the connections it accepts) with
// session::ask_agent. Sequential asks share one connection (plain JSON and SSE answers); a
// connection the peer closed while idle is retried once on a fresh one; a request that failed
// on a fresh connection, or on its retry, is not sent again; idle connections are closed. And a
// Parley agent served over A2A that asks such a peer answers its own task with the peer's reply.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/platforms/a2a_client.hpp>
#include <parley/platforms/websocket_platform.hpp>

#include "beast.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using parley::json;
using namespace std::chrono_literals;

// An A2A peer that answers every SendMessage / SendStreamingMessage with a completed task.
class peer {
 public:
  enum class mode {
    keep_alive,   // serves any number of requests per connection
    one_request,  // closes a connection at its second request, unanswered (closed while idle)
    drop_rpc,     // closes every connection at its JSON-RPC request, unanswered
    garbage,      // answers JSON-RPC with an SSE event that is not JSON-RPC
  };

  peer(mode m, bool streaming) : mode_(m), streaming_(streaming) {
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~peer() {
    io_.stop();
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/";
  }

  std::atomic<int> accepted{0}, closed{0}, rpcs{0};

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++accepted;
      net::co_spawn(io_, serve(std::move(s)), net::detached);
    }
  }

  net::awaitable<void> serve(tcp::socket s) {
    beast::flat_buffer buf;
    for (int n = 0;; ++n) {
      http::request<http::string_body> req;
      auto [ec, got] = co_await http::async_read(s, buf, req, net::as_tuple(net::use_awaitable));
      if (ec) break;
      const bool rpc = req.method() == http::verb::post;
      if (rpc) ++rpcs;
      if ((mode_ == mode::one_request && n > 0) || (mode_ == mode::drop_rpc && rpc)) break;
      http::response<http::string_body> res{http::status::ok, 11};
      res.keep_alive(true);
      if (!rpc) {
        res.set(http::field::content_type, "application/json");
        res.body() = json{{"name", "peer"},
                          {"supportedInterfaces", {{{"url", url() + "rpc"}, {"protocolBinding", "JSONRPC"},
                                                   {"protocolVersion", "1.0"}}}},
                          {"capabilities", {{"streaming", streaming_}}}}.dump();
      } else {
        const json task = {{"id", "t" + std::to_string(rpcs.load())}, {"contextId", "c"},
                           {"status", {{"state", "TASK_STATE_COMPLETED"}}},
                           {"artifacts", {{{"artifactId", "a"}, {"parts", {{{"text", "pong"}}}}}}}};
        const json answer = {{"jsonrpc", "2.0"}, {"id", 1}, {"result", {{"task", task}}}};
        if (streaming_) {  // one SSE event, chunked, then the final chunk
          res.set(http::field::content_type, "text/event-stream");
          res.chunked(true);
          res.body() = "data: " + (mode_ == mode::garbage ? std::string("no json") : answer.dump()) + "\n\n";
        } else {
          res.set(http::field::content_type, "application/json");
          res.body() = answer.dump();
        }
      }
      res.prepare_payload();
      if (auto [wec, n2] = co_await http::async_write(s, res, net::as_tuple(net::use_awaitable)); wec) break;
    }
    beast::error_code ignored;
    s.close(ignored);
    ++closed;
  }

  mode mode_;
  bool streaming_;
  net::io_context io_;
  tcp::acceptor acceptor_{io_, {net::ip::make_address("127.0.0.1"), 0}};
  std::thread thread_;
};

// An agent whose session asks `url` on every "ask", and replies what came back: "status STATE"
// or "error REASON".
struct asker {
  parley::agent agent{"asker"};
  std::shared_ptr<parley::callback_platform> platform;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> replies;

  asker(const std::string& url, parley::platforms::a2a_options o) {
    agent.config().set("agent.threads", 2);
    agent.config().set("log.level", "warn");
    auto& start = agent.new_state("start", true);
    auto& ask = agent.new_state("ask");
    auto& got = agent.new_state("got");
    start.when_event("a2a_status").go_to(got);
    start.when_agent_error().go_to(got);
    start.when_agent_message().go_to(start);
    start.when_event(parley::event_kind::text).go_to(ask);
    ask.set_body([url](parley::session& s) { s.ask_agent(url, "ping"); });
    ask.go_to(start);
    got.set_body([](parley::session& s) {
      const auto& p = s.event().payload();
      s.reply(s.event().name() == parley::agent_error_event ? "error " + p.value("reason", "")
                                                             : "status " + p.value("state", ""));
    });
    got.go_to(start);
    platform = std::make_shared<parley::callback_platform>([this](parley::session&, const parley::reply& r) {
      std::lock_guard l(mu);
      replies.push_back(r.plain_text());
      cv.notify_all();
    });
    agent.use_platform(platform);
    parley::platforms::use_a2a_agents(agent, std::move(o));
    agent.start();
  }
  ~asker() {
    agent.stop();
    agent.wait();
  }

  // Asks once and waits (up to 10 s) for what came back.
  std::string ask() {
    std::unique_lock l(mu);
    const auto before = replies.size();
    l.unlock();
    (void)agent.get_or_create_session("s", platform.get())->post(parley::event::text("ask"));
    l.lock();
    if (!cv.wait_for(l, 10s, [&] { return replies.size() > before; })) return "no answer";
    return replies.back();
  }
};

parley::platforms::a2a_options options(std::size_t max_idle = 100, double idle_seconds = 30) {
  parley::platforms::a2a_options o;
  o.client_timeout = 5s;
  o.max_idle_connections = max_idle;
  o.idle_connection_timeout = std::chrono::milliseconds(static_cast<long>(idle_seconds * 1000));
  return o;
}

// Waits (up to 5 s) until `done` holds.
template <class F>
bool eventually(F done) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST_CASE("a2a client: sequential asks share one keep-alive connection") {
  for (const bool streaming : {false, true}) {
    CAPTURE(streaming);
    peer p(peer::mode::keep_alive, streaming);
    asker a(p.url(), options());
    for (int i = 0; i < 5; ++i) REQUIRE(a.ask() == "status TASK_STATE_COMPLETED");
    CHECK(p.rpcs == 5);
    CHECK(p.accepted == 1);  // the card and five messages, one connection
  }
}

TEST_CASE("a2a client: without pooling every request opens a connection") {
  peer p(peer::mode::keep_alive, true);
  asker a(p.url(), options(0));
  for (int i = 0; i < 3; ++i) REQUIRE(a.ask() == "status TASK_STATE_COMPLETED");
  CHECK(p.accepted == 4);  // the card, then one per message
}

TEST_CASE("a2a client: a connection the peer closed while idle is retried once, on a fresh one") {
  peer p(peer::mode::one_request, true);
  asker a(p.url(), options());
  for (int i = 0; i < 3; ++i) REQUIRE(a.ask() == "status TASK_STATE_COMPLETED");
  // Each message first went on the connection the previous request left idle, which the peer
  // closed at once, then again on a fresh one.
  CHECK(p.rpcs == 6);
  CHECK(p.accepted == 4);
}

TEST_CASE("a2a client: a request is never sent a third time, nor again after a fresh connection failed") {
  SUBCASE("pooled, then retried once") {
    peer p(peer::mode::drop_rpc, false);
    asker a(p.url(), options());
    const auto r = a.ask();
    CHECK(r.rfind("error ", 0) == 0);
    CHECK(r.find("cannot reach it") != std::string::npos);
    CHECK(p.rpcs == 2);  // on the card's connection, then once on a fresh one
  }
  SUBCASE("fresh: not retried") {
    peer p(peer::mode::drop_rpc, false);
    asker a(p.url(), options(0));
    CHECK(a.ask().rfind("error ", 0) == 0);
    CHECK(p.rpcs == 1);
  }
}

TEST_CASE("a2a client: a stream the client gave up on does not go back to the pool") {
  peer p(peer::mode::garbage, true);
  asker a(p.url(), options());
  for (int i = 0; i < 2; ++i) {
    const auto r = a.ask();
    CHECK(r.rfind("error ", 0) == 0);
    CHECK(r.find("not JSON-RPC") != std::string::npos);
  }
  CHECK(p.rpcs == 2);
  CHECK(p.accepted == 2);  // the card's connection carried the first stream, then was dropped
}

TEST_CASE("a2a client: idle connections are closed after the idle timeout") {
  peer p(peer::mode::keep_alive, true);
  asker a(p.url(), options(100, 0.1));
  REQUIRE(a.ask() == "status TASK_STATE_COMPLETED");
  CHECK(p.accepted == 1);
  REQUIRE(eventually([&] { return p.closed == 1; }));  // the client closed it, idle
  REQUIRE(a.ask() == "status TASK_STATE_COMPLETED");
  CHECK(p.accepted == 2);
}

TEST_CASE("a2a server: the task of a turn that asked another agent holds that agent's answer") {
  peer far(peer::mode::keep_alive, true);
  parley::agent relay("relay");
  relay.config().set("agent.threads", 2);
  relay.config().set("log.level", "warn");
  auto& idle = relay.new_state("idle", true);
  auto& wait = relay.new_state("wait");
  auto& answer = relay.new_state("answer");
  idle.when_event(parley::event_kind::text).go_to(wait);
  wait.set_body([url = far.url()](parley::session& s) {
    if (!s.event().is_agent_message()) s.ask_agent(url, s.event().text());
  });
  wait.when_agent_message().go_to(answer);
  wait.when_event("a2a_status").go_to(idle);
  answer.set_body([](parley::session& s) { s.reply("far says " + s.event().text()); });
  answer.go_to(wait);
  parley::platforms::websocket_options o;
  o.port = 0;
  o.rate_limit = 0;
  auto ws = std::make_shared<parley::platforms::websocket_platform>(o);
  relay.use_platform(ws);
  relay.start();

  net::io_context io;
  beast::tcp_stream s(io);
  s.expires_after(10s);
  s.connect({net::ip::make_address("127.0.0.1"), ws->port()});
  http::request<http::string_body> req{http::verb::post, "/a2a", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.set("A2A-Version", "1.0");
  req.body() = json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "SendMessage"},
                    {"params", {{"message", {{"messageId", "m1"}, {"role", "ROLE_USER"},
                                             {"parts", {{{"text", "ping"}}}}}}}}}.dump();
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  const json task = json::parse(res.body())["result"]["task"];
  CHECK(task["status"]["state"] == "TASK_STATE_COMPLETED");
  REQUIRE(task["artifacts"].size() == 1);
  CHECK(task["artifacts"][0]["parts"][0]["text"] == "far says pong");
  CHECK(far.rpcs == 1);
  relay.stop();
  relay.wait();
}
