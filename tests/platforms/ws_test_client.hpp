#pragma once
// A WebSocket test client over real loopback sockets. Each test owns its io_context; every
// wait runs that io_context with a deadline (run_one_until), so a broken server fails a test
// instead of hanging it.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace wstest {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto default_wait = 5s;

/// Runs `io` until `done` or the deadline. Returns `done`.
inline bool run_until(net::io_context& io, const bool& done,
                      std::chrono::steady_clock::duration limit = default_wait) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done && std::chrono::steady_clock::now() < deadline)
    if (io.run_one_until(deadline) == 0 && io.stopped()) break;
  return done;
}

/// Waits until `pred` holds (checking every millisecond on `io`), at most `limit`.
inline bool wait_for(net::io_context& io, const std::function<bool()>& pred,
                     std::chrono::steady_clock::duration limit = default_wait) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  net::steady_timer t(io);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    bool fired = false;
    t.expires_after(1ms);
    t.async_wait([&](beast::error_code) { fired = true; });
    run_until(io, fired);
  }
  return true;
}

template <class Stream>
class basic_client {
 public:
  explicit basic_client(net::io_context& io) : io_(io), ws_(io) {}
  basic_client(net::io_context& io, ssl::context& ctx) : io_(io), ws_(io, ctx) {}

  /// Connects and upgrades. Returns the handshake's error (upgrade_declined on a refusal:
  /// then response() holds the server's answer).
  beast::error_code connect(std::uint16_t port, const std::string& target = "/",
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
    beast::error_code ec;
    bool done = false;
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    if (receive_buffer_) {
      // Set before connecting, so the kernel does not grow it (the window stays small).
      tcp_layer.socket().open(tcp::v4());
      tcp_layer.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer_));
    }
    tcp_layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                            [&](beast::error_code e) { ec = e; done = true; });
    REQUIRE(run_until(io_, done));
    if (ec) return ec;
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      done = false;
      ws_.next_layer().async_handshake(ssl::stream_base::client,
                                       [&](beast::error_code e) { ec = e; done = true; });
      REQUIRE(run_until(io_, done));
      if (ec) return ec;
    }
    ws_.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (const auto& [k, v] : headers) req.set(k, v);
    }));
    done = false;
    ws_.async_handshake(response_, "127.0.0.1:" + std::to_string(port), target,
                        [&](beast::error_code e) { ec = e; done = true; });
    REQUIRE(run_until(io_, done));
    return ec;
  }

  /// Caps the socket's receive buffer (call before connect): a client that stops reading then
  /// backs TCP up after a little data, not after the tens of MiB loopback may buffer.
  void receive_buffer(int bytes) { receive_buffer_ = bytes; }

  void send_text(const std::string& text) { write(text, false); }
  void send_binary(const std::string& data) { write(data, true); }
  void send(const json& frame) { send_text(frame.dump()); }
  void say(const std::string& text) { send({{"action", "user_message"}, {"message", text}}); }

  /// The next frame, parsed; fails the test if none comes in time.
  json read(std::chrono::steady_clock::duration limit = default_wait) {
    auto r = try_read(limit);
    REQUIRE_MESSAGE(r.has_value(), "no frame within the wait (" << last_error_.message() << ")");
    return *r;
  }

  /// Reads until a frame with this action; the skipped ones are returned in `skipped`.
  json read_action(const std::string& action, std::vector<json>* skipped = nullptr) {
    for (int i = 0; i < 1000; ++i) {
      json f = read();
      if (f.value("action", "") == action) return f;
      if (skipped) skipped->push_back(f);
    }
    FAIL("no frame with action " << action);
    return {};
  }

  /// The next frame, or nothing when the read fails (see last_error()).
  std::optional<json> try_read(std::chrono::steady_clock::duration limit = default_wait) {
    bool done = false;
    beast::error_code ec;
    buffer_.clear();
    ws_.async_read(buffer_, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
    if (!run_until(io_, done, limit)) {
      // Give up on this read: cancel it (the stream is unusable afterwards).
      beast::get_lowest_layer(ws_).cancel();
      run_until(io_, done, 1s);
      last_error_ = beast::error::timeout;
      return std::nullopt;
    }
    last_error_ = ec;
    if (ec) return std::nullopt;
    return json::parse(beast::buffers_to_string(buffer_.data()));
  }

  /// Reads (discarding frames) until the connection ends; returns the final error.
  beast::error_code read_until_closed(std::size_t* frames = nullptr,
                                      std::chrono::steady_clock::duration limit = default_wait) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      bool done = false;
      beast::error_code ec;
      buffer_.clear();
      ws_.async_read(buffer_, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
      const auto left = deadline - std::chrono::steady_clock::now();
      if (!run_until(io_, done, left > 0s ? left : 1ms)) {
        beast::get_lowest_layer(ws_).cancel();
        run_until(io_, done, 1s);
        return beast::error::timeout;
      }
      if (ec) return ec;
      if (frames) ++*frames;
    }
  }

  void close() {
    bool done = false;
    ws_.async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
    run_until(io_, done);
  }

  websocket::close_reason reason() const { return ws_.reason(); }
  const websocket::response_type& response() const { return response_; }
  http::status status() const { return response_.result(); }
  const beast::error_code& last_error() const { return last_error_; }
  websocket::stream<Stream>& stream() { return ws_; }

 private:
  void write(const std::string& data, bool binary) {
    bool done = false;
    beast::error_code ec;
    ws_.binary(binary);
    ws_.async_write(net::buffer(data), [&](beast::error_code e, std::size_t) { ec = e; done = true; });
    REQUIRE(run_until(io_, done));
    REQUIRE_MESSAGE(!ec, "write failed: " << ec.message());
  }

  net::io_context& io_;
  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  websocket::response_type response_;
  beast::error_code last_error_;
  int receive_buffer_ = 0;
};

using client = basic_client<beast::tcp_stream>;
using tls_client = basic_client<beast::ssl_stream<beast::tcp_stream>>;

/// One plain HTTP GET (with `headers`); returns the response (status 0 if the connection failed).
inline http::response<http::string_body> http_get(
    net::io_context& io, std::uint16_t port, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  beast::tcp_stream s(io);
  http::response<http::string_body> res;
  bool done = false;
  beast::error_code ec;
  s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                  [&](beast::error_code e) { ec = e; done = true; });
  REQUIRE(run_until(io, done));
  REQUIRE(!ec);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  done = false;
  http::async_write(s, req, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
  REQUIRE(run_until(io, done));
  beast::flat_buffer b;
  done = false;
  http::async_read(s, b, res, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
  REQUIRE(run_until(io, done));
  REQUIRE_MESSAGE(!ec, ec.message());
  return res;
}

}  // namespace wstest
