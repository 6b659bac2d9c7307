#pragma once
// Forwarding between nodes (several nodes on one PostgreSQL database, docs/multinode.md): a
// client connected to a node that does not own its session is relayed to the node that does,
// over one WebSocket client connection per client connection (this class). It runs on the
// client connection's strand, so the two never need a lock: frames go up in the order the
// client sent them, and every reply the owner sends comes back down, the same bytes.
//
// The owner sees an ordinary connection of the session (with the client's cursor, user and
// policy), so the session's replies reach every connection on every node. A forwarded
// handshake carries X-Parley-Forwarded: a node that does not own the session either refuses it
// (503) rather than forwarding again, so a stale ownership view can never make a loop.
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "beast.hpp"

namespace parley::platforms::detail {

/// The header a forwarded handshake carries (its value: the forwarding node's address).
inline constexpr const char* forwarded_header = "X-Parley-Forwarded";

/// host:port or [v6]:port into its parts (false when there is no port, or port 0).
bool split_address(const std::string& address, std::string& host, std::string& port);

class ws_upstream : public std::enable_shared_from_this<ws_upstream> {
 public:
  /// How the owner answered a handshake it did not accept (or why it could not be reached).
  struct refusal {
    unsigned status = 503;
    std::string body;
  };
  /// Called on the strand. `opened`: once, with nothing when the link is up, else why not.
  /// `frame`: each frame the owner sends. `drained`: what send() queued is written (more may
  /// be read from the client). `closed`: once, after the link opened, with the owner's close
  /// frame, or 1012 and the error when the owner went away without one.
  struct handlers {
    std::function<void(std::optional<refusal>)> opened;
    std::function<void(std::string)> frame;
    std::function<void()> drained;
    std::function<void(websocket::close_reason)> closed;
  };

  ws_upstream(net::any_io_executor strand, handlers h);

  /// Strand: connects to `address` (host:port, [v6]:port), then makes the WebSocket handshake
  /// for `target` with `headers`, all within `handshake_timeout`. `idle_timeout` (with pings
  /// at half of it) notices an owner that stopped answering.
  void open(const std::string& address, std::string target,
            std::vector<std::pair<std::string, std::string>> headers,
            std::chrono::steady_clock::duration handshake_timeout,
            std::chrono::steady_clock::duration idle_timeout, std::size_t max_frame);

  /// Strand: queues a text frame for the owner. Returns whether the queue is small enough to
  /// take more now; when not, `drained` says when.
  bool send(std::string frame);

  /// Strand: closes the link (with `why` as the close frame) and stops calling the handlers.
  void close(websocket::close_reason why);

 private:
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results);
  void on_connect(beast::error_code ec, tcp::endpoint);
  void on_handshake(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t);
  void do_write();
  void on_write(beast::error_code ec, std::size_t);
  void fail_open(unsigned status, std::string why);
  void finish(websocket::close_reason why);

  tcp::resolver resolver_;
  websocket::stream<beast::tcp_stream> ws_;
  handlers h_;
  std::string address_, host_, port_, target_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::chrono::steady_clock::duration handshake_timeout_{}, idle_timeout_{};
  websocket::response_type answer_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool open_ = false, writing_ = false, done_ = false, closing_ = false;
};

}  // namespace parley::platforms::detail
