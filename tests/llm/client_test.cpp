// The client against a scripted OpenAI-compatible server on loopback: answers, streams,
// retries, timeouts, cancellation, connection reuse and the API key.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/llm/client.hpp>
#include <parley/llm/config_keys.hpp>
#include <parley/log.hpp>

#include "../stderr_capture.hpp"
#include "scripted_server.hpp"

using namespace std::chrono_literals;
using parley::json;
namespace net = boost::asio;
namespace llm = parley::llm;
using test::exchange;
using test::scripted_server;

namespace {

bool run_until(net::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    if (io.stopped()) io.restart();
    io.run_for(5ms);
  }
  return true;
}

struct call {
  std::optional<llm::chat_result> ok;
  std::optional<llm::error> err;
  bool done = false;
  std::chrono::milliseconds took{0};
};

// Starts a chat from a coroutine on `io` (the awaitable form).
std::shared_ptr<call> start(net::io_context& io, llm::client& c, llm::chat_request req,
                            llm::cancel_handle h = llm::cancel_handle()) {
  auto out = std::make_shared<call>();
  net::co_spawn(
      io,
      [&c, req, h, out]() -> net::awaitable<void> {
        auto t0 = std::chrono::steady_clock::now();
        try {
          out->ok = co_await c.chat(req, h);
        } catch (const llm::error& e) {
          out->err = e;
        }
        out->took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0);
        out->done = true;
      },
      net::detached);
  return out;
}

call chat(net::io_context& io, llm::client& c, llm::chat_request req) {
  auto out = start(io, c, std::move(req));
  REQUIRE(run_until(io, [&] { return out->done; }));
  return *out;
}

llm::chat_request ask(const std::string& text, bool stream = false) {
  llm::chat_request r;
  r.messages = json::array({{{"role", "user"}, {"content", text}}});
  r.stream = stream;
  return r;
}

llm::client_options options(const scripted_server& s) {
  llm::client_options o;
  o.base_url = s.base_url();
  o.model = "scripted-model";
  o.timeout = 5s;
  o.max_retries = 2;
  o.initial_backoff = 1ms;
  o.max_backoff = 5ms;
  return o;
}

std::string chunk(const json& delta, const json& finish = nullptr) {
  return json{
      {"model", "scripted-model"},
      {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}}
      .dump();
}

using test::stderr_capture;

}  // namespace

TEST_CASE(
    "a plain chat gets text, usage and model, POSTing the model and messages to "
    "base_url/chat/completions") {
  scripted_server server;
  server.push(exchange::json_body(test::completion("Hello there")));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.ok);
  CHECK(r.ok->text == "Hello there");
  CHECK(r.ok->finish_reason == "stop");
  CHECK(r.ok->model == "scripted-model");
  CHECK(r.ok->usage->total_tokens == 10);
  CHECK(r.ok->attempts == 1);
  auto got = server.requests();
  REQUIRE(got.size() == 1);
  CHECK(got[0].target == "/v1/chat/completions");
  CHECK(got[0].authorization.empty());
  auto body = json::parse(got[0].body);
  CHECK(body["model"] == "scripted-model");
  CHECK(body["messages"][0]["content"] == "hi");
  CHECK_FALSE(body.contains("stream"));
}

TEST_CASE("a streamed chat joins tool-call deltas by index and reads the usage chunk") {
  scripted_server server;
  server.push(exchange::sse(
      {chunk({{"role", "assistant"}, {"content", ""}}),
       chunk({{"tool_calls",
               json::array({{{"index", 0},
                             {"id", "call_1"},
                             {"type", "function"},
                             {"function", {{"name", "weather"}, {"arguments", ""}}}}})}}),
       chunk({{"tool_calls",
               json::array({{{"index", 0}, {"function", {{"arguments", "{\"city\""}}}}})}}),
       chunk({{"tool_calls",
               json::array({{{"index", 0}, {"function", {{"arguments", ":\"Oslo\"}"}}}}})}}),
       chunk(json::object(), "tool_calls"),
       json{{"choices", json::array()},
            {"usage", {{"prompt_tokens", 20}, {"completion_tokens", 9}, {"total_tokens", 29}}}}
           .dump(),
       "[DONE]"}));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("weather?", true));
  REQUIRE(r.ok);
  REQUIRE(r.ok->tool_calls.size() == 1);
  CHECK(r.ok->tool_calls[0].id == "call_1");
  CHECK(r.ok->tool_calls[0].name == "weather");
  CHECK(r.ok->tool_calls[0].parsed == json{{"city", "Oslo"}});
  CHECK(r.ok->finish_reason == "tool_calls");
  CHECK(r.ok->usage->total_tokens == 29);
  auto body = json::parse(server.requests().at(0).body);
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"]["include_usage"] == true);
}

TEST_CASE(
    "a streamed chat tolerates whole calls in one chunk, object arguments, missing ids and a "
    "reused index") {
  scripted_server server;
  server.push(exchange::sse(
      {chunk({{"tool_calls",
               json::array(
                   {{{"index", 0}, {"function", {{"name", "a"}, {"arguments", {{"n", 1}}}}}}})}}),
       chunk({{"tool_calls",
               json::array({{{"index", 0},
                             {"id", "second"},
                             {"function", {{"name", "b"}, {"arguments", "{\"n\":2}"}}}}})}}),
       chunk(json::object(), "tool_calls"), "[DONE]"}));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("two calls", true));
  REQUIRE(r.ok);
  REQUIRE(r.ok->tool_calls.size() == 2);
  CHECK(r.ok->tool_calls[0].id == "call_0");
  CHECK(r.ok->tool_calls[0].parsed == json{{"n", 1}});
  CHECK(r.ok->tool_calls[1].id == "second");
  CHECK(r.ok->tool_calls[1].name == "b");
  CHECK_FALSE(r.ok->usage.has_value());
}

TEST_CASE("a 429 with retry-after-ms is retried after the delay the server asks") {
  scripted_server server;
  server.push(
      exchange::text(R"({"error":{"message":"slow down"}})", 429).header("retry-after-ms", "60"));
  server.push(exchange::json_body(test::completion("ok")));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.ok);
  CHECK(r.ok->text == "ok");
  CHECK(r.ok->attempts == 2);
  CHECK(r.ok->latency >= 60ms);  // the backoff alone would be 1 ms
  CHECK(server.request_count() == 2);
}

TEST_CASE("a 429 with retry-after in seconds is retried, and one asking too long a wait is not") {
  scripted_server server;
  server.push(
      exchange::text(R"({"error":{"message":"slow down"}})", 429).header("Retry-After", "0.06"));
  server.push(exchange::json_body(test::completion("ok")));
  server.push(exchange::text(R"({"error":{"message":"come back tomorrow"}})", 429)
                  .header("Retry-After", "86400"));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.ok);
  CHECK(r.ok->attempts == 2);
  CHECK(r.ok->latency >= 60ms);
  auto r2 = chat(io, c, ask("again"));
  REQUIRE(r2.err);
  CHECK(r2.err->kind() == llm::error_kind::http_status);
  CHECK(r2.err->status() == 429);
  CHECK(std::string(r2.err->what()).find("come back tomorrow") != std::string::npos);
  CHECK(std::string(r2.err->what()).find("asks to wait") != std::string::npos);
  CHECK(server.request_count() == 3);
}

TEST_CASE("a 503 then a success, and retries stop at max_retries") {
  scripted_server server;
  server.push(exchange::text(
      R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})", 503));
  server.push(exchange::json_body(test::completion("loaded")));
  for (int i = 0; i < 3; ++i) server.push(exchange::text(R"({"error":{"message":"down"}})", 500));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.ok);
  CHECK(r.ok->text == "loaded");
  CHECK(r.ok->attempts == 2);
  auto r2 = chat(io, c, ask("hi"));
  REQUIRE(r2.err);
  CHECK(r2.err->kind() == llm::error_kind::http_status);
  CHECK(r2.err->status() == 500);
  CHECK(server.request_count() == 5);  // 2 + 1 try and max_retries (2) retries
}

TEST_CASE("a hanging response ends with a timeout error within the time limit") {
  scripted_server server;
  server.push(exchange::hang());
  server.push(exchange::hang());
  net::io_context io;
  auto o = options(server);
  o.timeout = 150ms;
  o.max_retries = 1;
  llm::client c(io.get_executor(), o);
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.err);
  CHECK(r.err->kind() == llm::error_kind::timeout);
  CHECK(std::string(r.err->what()).find("llm.timeout") != std::string::npos);
  CHECK(server.request_count() == 2);
  CHECK(r.took < 5s);
}

TEST_CASE("malformed JSON from the server is a clear error, not retried") {
  scripted_server server;
  server.push(exchange::text("{\"choices\": [oops"));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.err);
  CHECK(r.err->kind() == llm::error_kind::malformed_response);
  CHECK(std::string(r.err->what()).find("not a JSON object") != std::string::npos);
  CHECK(server.request_count() == 1);
}

TEST_CASE("an error object inside a 200 stream is an error") {
  scripted_server server;
  server.push(exchange::sse(
      {chunk({{"content", "par"}}),
       R"({"error":{"message":"context overflow","type":"exceed_context_size_error"}})"}));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi", true));
  REQUIRE(r.err);
  CHECK(r.err->kind() == llm::error_kind::server_error);
  CHECK(std::string(r.err->what()).find("context overflow") != std::string::npos);
}

TEST_CASE("a connection closed mid-stream is an error, not retried") {
  scripted_server server;
  server.push(exchange::close_after({chunk({{"content", "Hel"}}), chunk({{"content", "lo"}})}));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi", true));
  REQUIRE(r.err);
  CHECK(r.err->kind() == llm::error_kind::closed_mid_stream);
  CHECK(server.request_count() == 1);
}

TEST_CASE("connections are reused across requests, streamed or not") {
  scripted_server server;
  server.push(exchange::json_body(test::completion("one")));
  server.push(exchange::sse({chunk({{"content", "two"}}, "stop"), "[DONE]"}));
  server.push(exchange::json_body(test::completion("three")));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  CHECK(chat(io, c, ask("1")).ok->text == "one");
  CHECK(chat(io, c, ask("2", true)).ok->text == "two");
  CHECK(chat(io, c, ask("3")).ok->text == "three");
  CHECK(server.accepted() == 1);
}

TEST_CASE("an in-flight request is cancelled by its handle, and a cancelled handle fails at once") {
  scripted_server server;
  server.push(exchange::hang());
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  llm::cancel_handle h;
  auto out = start(io, c, ask("hi"), h);
  REQUIRE(run_until(io, [&] { return server.request_count() == 1; }));
  CHECK_FALSE(out->done);
  h.cancel();
  REQUIRE(run_until(
      io, [&] { return out->done; }, 2s));
  REQUIRE(out->err);
  CHECK(out->err->kind() == llm::error_kind::cancelled);
  auto again = start(io, c, ask("hi"), h);
  REQUIRE(run_until(
      io, [&] { return again->done; }, 2s));
  REQUIRE(again->err);
  CHECK(again->err->kind() == llm::error_kind::cancelled);
  CHECK(server.request_count() == 1);
}

TEST_CASE("the callback form delivers the result") {
  scripted_server server;
  server.push(exchange::json_body(test::completion("via callback")));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  std::optional<std::string> text;
  c.async_chat(ask("hi"), [&](std::exception_ptr e, llm::chat_result r) {
    CHECK_FALSE(e);
    text = r.text;
  });
  REQUIRE(run_until(io, [&] { return text.has_value(); }));
  CHECK(*text == "via callback");
}

TEST_CASE(
    "the API key from llm.api_key_env is sent as a Bearer header and never logged, and 401 names "
    "the variable") {
  ::setenv("PARLEY_TEST_LLM_KEY", "sk-test-secret-4242", 1);
  scripted_server server;
  server.push(exchange::json_body(test::completion("authorised")));
  server.push(exchange::text(
      R"({"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}})", 401));
  net::io_context io;
  auto o = options(server);
  o.api_key_env = "PARLEY_TEST_LLM_KEY";
  llm::client c(io.get_executor(), o);
  auto level = parley::get_log_level();
  parley::set_log_level(parley::log_level::trace);
  stderr_capture capture;
  auto r = chat(io, c, ask("hi"));
  auto r2 = chat(io, c, ask("hi"));
  auto log = capture.finish();
  parley::set_log_level(level);
  REQUIRE(r.ok);
  CHECK(server.requests().at(0).authorization == "Bearer sk-test-secret-4242");
  REQUIRE(r2.err);
  CHECK(r2.err->kind() == llm::error_kind::unauthorized);
  CHECK(std::string(r2.err->what()).find("PARLEY_TEST_LLM_KEY") != std::string::npos);
  CHECK(log.find("POST") != std::string::npos);  // the log did run
  CHECK(log.find("sk-test-secret") == std::string::npos);
  CHECK(std::string(r2.err->what()).find("sk-test-secret") == std::string::npos);
}

TEST_CASE("bad settings are config errors that name the key: base_url, an unset key variable") {
  net::io_context io;
  llm::client_options o;
  for (const char* bad :
       {"ftp://host/v1", "localhost:8080/v1", "http:///v1", "http://host:port/v1"}) {
    CAPTURE(bad);
    o.base_url = bad;
    CHECK_THROWS_WITH_AS(llm::client(io.get_executor(), o), doctest::Contains("llm.base_url"),
                         parley::config_error);
  }
  o.base_url = "https://api.example.com/v1";
  o.api_key_env = "PARLEY_TEST_SURELY_UNSET_VARIABLE";
  ::unsetenv("PARLEY_TEST_SURELY_UNSET_VARIABLE");
  CHECK_THROWS_WITH_AS(llm::client(io.get_executor(), o), doctest::Contains("llm.api_key_env"),
                       parley::config_error);
}

TEST_CASE("llm.* keys are declared by the library and read into client_options") {
  parley::config cfg;
  llm::declare_config(cfg);
  cfg.set_text("llm.base_url", "http://127.0.0.1:11434/v1", "test");
  cfg.set_text("llm.model", "qwen3", "test");
  cfg.set_text("llm.api_key_env", "OPENAI_API_KEY", "test");
  cfg.set_text("llm.timeout", "2.5", "test");
  cfg.set_text("llm.max_retries", "4", "test");
  auto o = llm::client_options::from(cfg);
  CHECK(o.base_url == "http://127.0.0.1:11434/v1");
  CHECK(o.model == "qwen3");
  CHECK(o.api_key_env == "OPENAI_API_KEY");
  CHECK(o.timeout == 2500ms);
  CHECK(o.max_retries == 4);
  CHECK(o.max_retry_wait == 120s);  // the defaults match client_options'
  CHECK(o.tls_verify);
  cfg.set_text("llm.max_retry_wait", "0.25", "test");
  cfg.set_text("llm.max_idle_connections", "2", "test");
  cfg.set_text("llm.tls_verify", "false", "test");
  cfg.set_text("llm.tls_ca_file", "/etc/parley/ca.pem", "test");
  o = llm::client_options::from(cfg);
  CHECK(o.max_retry_wait == 250ms);
  CHECK(o.max_idle_connections == 2);
  CHECK_FALSE(o.tls_verify);
  CHECK(o.tls_ca_file == "/etc/parley/ca.pem");
}

TEST_CASE(
    "https: the client verifies the server's certificate and name, and reuses the TLS connection") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("parley-llm-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '" +
      key + "' -out '" + cert + "' >/dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0,
                  "needs the openssl command (./dev test installs it)");
  {
    scripted_server server(cert, key);
    server.push(exchange::json_body(test::completion("secure")));
    server.push(exchange::sse({chunk({{"content", "also secure"}}, "stop"), "[DONE]"}));
    net::io_context io;
    auto o = options(server);
    o.tls_ca_file = cert;
    llm::client c(io.get_executor(), o);
    auto r = chat(io, c, ask("hi"));
    REQUIRE(r.ok);
    CHECK(r.ok->text == "secure");
    auto r2 = chat(io, c, ask("hi", true));
    REQUIRE(r2.ok);
    CHECK(r2.ok->text == "also secure");
    CHECK(server.accepted() == 1);
    // Without the certificate trusted the handshake fails, and says so.
    auto untrusting = options(server);
    untrusting.max_retries = 0;
    llm::client c2(io.get_executor(), untrusting);
    auto r3 = chat(io, c2, ask("hi"));
    REQUIRE(r3.err);
    CHECK(r3.err->kind() == llm::error_kind::connect);
    CHECK(std::string(r3.err->what()).find("TLS") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a pooled connection the server closed is replaced without counting a retry") {
  scripted_server server;
  auto first = exchange::json_body(test::completion("one"));
  first.close_after_answer = true;
  server.push(first);
  server.push(exchange::json_body(test::completion("two")));
  net::io_context io;
  auto o = options(server);
  o.max_retries = 0;
  llm::client c(io.get_executor(), o);
  CHECK(chat(io, c, ask("1")).ok->text == "one");
  auto r = chat(io, c, ask("2"));
  REQUIRE(r.ok);
  CHECK(r.ok->text == "two");
  CHECK(r.ok->attempts == 1);
  CHECK(server.accepted() == 2);
}

TEST_CASE("a server that is not there is a connect error naming llm.base_url, after the retries") {
  net::io_context io;
  unsigned short port;
  {
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  llm::client_options o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.max_retries = 1;
  o.initial_backoff = 1ms;
  llm::client c(io.get_executor(), o);
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.err);
  CHECK(r.err->kind() == llm::error_kind::connect);
  CHECK(std::string(r.err->what()).find("llm.base_url") != std::string::npos);
}

TEST_CASE(
    "Asio per-operation cancellation (a bound cancellation slot) ends an in-flight chat as "
    "cancelled") {
  scripted_server server;
  server.push(exchange::hang());
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  net::cancellation_signal signal;
  auto out = std::make_shared<call>();
  net::co_spawn(
      io,
      [&c, out]() -> net::awaitable<void> {
        try {
          out->ok = co_await c.chat(ask("hi"));
        } catch (const llm::error& e) {
          out->err = e;
        } catch (const std::exception& e) {
          FAIL("not an llm::error: " << e.what());
        }
        out->done = true;
      },
      net::bind_cancellation_slot(signal.slot(), net::detached));
  REQUIRE(run_until(io, [&] { return server.request_count() == 1; }));
  signal.emit(net::cancellation_type::terminal);
  REQUIRE(run_until(
      io, [&] { return out->done; }, 2s));
  REQUIRE(out->err);
  CHECK(out->err->kind() == llm::error_kind::cancelled);
}

TEST_CASE("twenty chats at once each get an answer, over several connections kept for reuse") {
  scripted_server server;
  for (int i = 0; i < 40; ++i) server.push(exchange::json_body(test::completion("a" + std::to_string(i))));
  net::io_context io;
  auto o = options(server);
  o.max_idle_connections = 4;
  llm::client c(io.get_executor(), o);
  std::vector<std::shared_ptr<call>> calls;
  for (int i = 0; i < 20; ++i) calls.push_back(start(io, c, ask("q" + std::to_string(i))));
  REQUIRE(run_until(io, [&] {
    return std::all_of(calls.begin(), calls.end(), [](auto& k) { return k->done; });
  }));
  std::set<std::string> texts;
  for (auto& k : calls) {
    REQUIRE(k->ok);
    texts.insert(k->ok->text);
  }
  CHECK(texts.size() == 20);
  CHECK(server.accepted() == 20);
  // Four connections were kept: the next four chats at once open none.
  calls.clear();
  for (int i = 0; i < 4; ++i) calls.push_back(start(io, c, ask("again")));
  REQUIRE(run_until(io, [&] {
    return std::all_of(calls.begin(), calls.end(), [](auto& k) { return k->done; });
  }));
  for (auto& k : calls) CHECK(k->ok);
  CHECK(server.accepted() == 20);
}

TEST_CASE("x-should-retry from the server overrides the status: false stops a 503, true retries a 400") {
  scripted_server server;
  server.push(exchange::text(R"({"error":{"message":"no"}})", 503).header("x-should-retry", "false"));
  server.push(exchange::text(R"({"error":{"message":"again"}})", 400).header("x-should-retry", "true"));
  server.push(exchange::json_body(test::completion("fine")));
  net::io_context io;
  llm::client c(io.get_executor(), options(server));
  auto r = chat(io, c, ask("hi"));
  REQUIRE(r.err);
  CHECK(r.err->status() == 503);
  auto r2 = chat(io, c, ask("hi"));
  REQUIRE(r2.ok);
  CHECK(r2.ok->attempts == 2);
}
