#pragma once
// The A2A client's HTTP connections: one request/answer at a time over a keep-alive connection
// (plain or TLS) taken from a small per-origin pool of idle ones, or a fresh one. One pool per
// A2A client (per agent), never global.
//
// Rules: a connection goes back to the pool only once its answer was read completely (an SSE
// stream to its final chunk), nothing more came after it, and the server did not ask to close
// (`Connection: close`, HTTP/1.0, a body that ends at EOF). At most `max_idle` idle connections
// per origin (scheme://host:port); an idle one is closed after `idle_timeout`, or sooner when
// the server's `Keep-Alive: timeout=N` says it will close first (one second before). A pooled
// connection the server closed while it sat idle (it reads as EOF, or the request's write
// fails, or EOF comes before any byte of the answer) is retried once on a fresh connection;
// nothing else is retried, so a request the peer may have processed is never sent twice.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "a2a_http.hpp"

namespace parley::platforms::detail::a2a {

class connection_pool : public std::enable_shared_from_this<connection_pool> {
 public:
  /// `ex`: the io_context the connections and the idle sweep run on. `max_idle` 0 = no reuse.
  connection_pool(net::any_io_executor ex, std::size_t max_idle, std::chrono::milliseconds idle_timeout);
  ~connection_pool();
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  /// One request: GET when `body` is empty, else POST of JSON. `on_sse` (optional) gets the
  /// bytes of a 200 text/event-stream answer as they come; if it throws, the connection is
  /// dropped and the exception goes on. Answers bigger than `max` throw. Any thread, from a
  /// coroutine on any executor; the connection used is the coroutine's alone meanwhile.
  /// With `a2a` false it is a plain HTTP request (no A2A-Version header; the OTLP exporter's).
  /// @throws boost::system::system_error (timeout: beast::error::timeout), std::runtime_error.
  net::awaitable<http_answer> exchange(const url_parts& url, std::string body,
                                       clock::time_point deadline, std::size_t max,
                                       const std::function<void(std::string_view)>* on_sse,
                                       bool a2a = true);

 private:
  struct connection;
  using connection_ptr = std::unique_ptr<connection>;

  connection_ptr take(const std::string& origin);
  void put_back(const std::string& origin, connection_ptr c, clock::time_point until);
  net::awaitable<connection_ptr> connect(const url_parts& url, clock::time_point deadline);
  void arm_sweep(clock::time_point at);  // on strand_
  void sweep();                          // on strand_

  net::any_io_executor ex_;
  net::strand<net::any_io_executor> strand_;  // the sweep timer's
  net::steady_timer sweep_timer_;
  std::size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<connection_ptr>> idle_;  // origin -> oldest first
  bool sweep_armed_ = false;
};

}  // namespace parley::platforms::detail::a2a
