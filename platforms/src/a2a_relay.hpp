#pragma once
// An A2A request relayed to the node that owns its context (several nodes on one database): the
// request goes to the owner as it came (with X-Parley-Forwarded, so the owner never relays it
// again), and the owner's answer, a JSON body or an SSE stream, comes back byte for byte until
// the owner closes. Runs on the client connection's strand; compiled once (not a template).
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "beast.hpp"

#include <parley/net.hpp>

namespace parley::platforms::detail {

/// What an A2A request is about, for relaying: the context (the session) a SendMessage or
/// SendStreamingMessage continues (its contextId, else the context its taskId names), or the
/// one a GetTask, CancelTask or SubscribeToTask's task id names; "" for anything else (a new
/// context, ListTasks, a malformed body: served here). `id` is the JSON-RPC id, for an error
/// the relay answers itself.
struct a2a_target {
  std::string context;
  json id;
};
a2a_target a2a_relay_target(const std::string& body);

class a2a_relay : public std::enable_shared_from_this<a2a_relay> {
 public:
  struct handlers {
    /// Bytes of the owner's answer, for the client; call next(true) once written (false stops).
    std::function<void(std::string_view bytes, std::function<void(bool)> next)> data;
    /// The owner could not be reached or answered nothing: why (nothing was sent to the client).
    std::function<void(std::string why)> failed;
    /// The owner's answer ended (it closed the connection).
    std::function<void()> done;
  };

  a2a_relay(net::any_io_executor strand, handlers h);
  /// Sends `req` (complete, Connection: close) to `address` (host:port); `timeout` bounds the
  /// connect and the request's write, not the answer (an SSE stream lasts as its task does).
  void start(const std::string& address, http::request<http::string_body> req,
             std::chrono::steady_clock::duration timeout);

 private:
  void read();
  void fail(std::string why);

  tcp::resolver resolver_;
  beast::tcp_stream up_;
  handlers h_;
  http::request<http::string_body> req_;
  std::string address_;
  std::array<char, 16384> buf_{};
  bool answered_ = false;  // some of the answer went to the client
};

}  // namespace parley::platforms::detail
