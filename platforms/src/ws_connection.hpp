#pragma once
// One WebSocket connection (plain or TLS), on its own strand: one read and one write in
// flight, a bounded outgoing queue, a per-connection rate limit. Instantiated twice, in
// ws_server.cpp only.
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parley/session.hpp>

#include "beast.hpp"
#include "held_writes.hpp"
#include "ws_http.hpp"
#include "ws_protocol.hpp"

namespace parley::platforms::detail {

template <class Stream>
class ws_connection final : public ws_connection_base,
                            public std::enable_shared_from_this<ws_connection<Stream>> {
 public:
  /// Takes a reserved slot of `hub` (released when the connection is gone).
  ws_connection(Stream&& stream, std::shared_ptr<ws_hub> hub, client_identity who);
  ~ws_connection() override;

  /// Strand: accepts the upgrade `req`, then registers and starts reading.
  void run(request req);

  void send(std::shared_ptr<const std::string> frame) override;
  void shutdown() override;
  const std::string& session_id() const override { return who_.session_id; }

 private:
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t n);
  void handle(std::string_view text);
  bool take_token();
  void error(std::string message);
  void take_outbox();
  void enqueue(std::shared_ptr<const std::string> frame);
  void do_write();
  void on_write(beast::error_code ec, std::size_t n);
  void begin_close(websocket::close_code code, std::string reason, bool drop_queued);
  void do_close();
  std::shared_ptr<parley::session> session();

  websocket::stream<held_writes<Stream>> ws_;
  std::shared_ptr<ws_hub> hub_;
  client_identity who_;
  std::weak_ptr<parley::session> session_;  // the last session looked up (strand)
  parley::session_attachment attachment_;   // holds session_ from eviction while connected
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  // Frames sent from other strands (a session's turn), taken by one handler on ours: the
  // replies of one turn are queued together, and sent in one write (held_writes).
  std::mutex outbox_mutex_;
  std::vector<std::shared_ptr<const std::string>> outbox_;
  net::steady_timer close_timer_;
  websocket::close_reason close_reason_;
  wall_clock::time_point connected_at_{};
  clock::time_point last_refill_{};
  double tokens_ = 0;
  std::uint64_t id_ = 0;
  bool created_ = false;  // the session was not live when this connection came
  bool writing_ = false;  // a write is in flight, or posted (do_write)
  bool closing_ = false;
  bool close_pending_ = false;
  bool dead_ = false;  // a read or write failed: the socket is gone
};

}  // namespace parley::platforms::detail
