#pragma once
// One WebSocket connection (plain or TLS), on its own strand: one read and one write in
// flight, an outgoing queue bounded in bytes and in time without progress, a per-connection
// rate limit, the paced replay of the stored chat, and the resend of the replies after a
// client's cursor (?since=N), each reply number once. Instantiated twice, in ws_server.cpp
// only.
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <parley/session.hpp>

#include "beast.hpp"
#include "held_writes.hpp"
#include "ws_http.hpp"
#include "ws_protocol.hpp"
#include "ws_upstream.hpp"

namespace parley::platforms::detail {

template <class Stream>
class ws_connection final : public ws_connection_base,
                            public std::enable_shared_from_this<ws_connection<Stream>> {
 public:
  /// Takes a reserved slot of `hub` (released when the connection is gone).
  ws_connection(Stream&& stream, std::shared_ptr<ws_hub> hub, client_identity who);
  ~ws_connection() override;

  /// Strand: joins the session, then accepts the upgrade `req` and starts reading; or, when
  /// the session cannot be had (agent.max_sessions), answers `req` with the refusal.
  void run(request req);

  void send(std::shared_ptr<const std::string> frame, std::int64_t seq) override;
  void shutdown() override;
  void moved() override;
  const std::string& session_id() const override { return who_.session_id; }

 private:
  // Joining and leaving the session: the only two places that do (strand / destructor).
  /// `claim`: what agent::async_claim answered (a not_owner_error: relayed, or refused).
  std::optional<response> join(const request& req, std::exception_ptr claim);
  void claimed(request req, std::exception_ptr claim);
  void leave();

  void accept(request req);
  void refuse(response res);
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t n);
  void handle(std::string_view text);
  /// The rate limit: false (and an error frame) when this frame is over it.
  bool take_token();
  void error(std::string message);
  void take_outbox();
  /// A live reply numbered `seq`: held while the resend from a cursor runs, dropped when the
  /// cursor is past it, else queued.
  void deliver_live(std::shared_ptr<const std::string> frame, std::int64_t seq);
  void enqueue(std::shared_ptr<const std::string> frame);
  void push(std::shared_ptr<const std::string> frame);
  void do_write();
  void on_write(beast::error_code ec, std::size_t n);
  /// The socket failed: nothing queued will be sent (the frame being written, if any, stays
  /// until its write ends), no timer is needed.
  void abandon();
  void watch_progress();
  void on_progress_check(beast::error_code ec);
  void close_slow(std::string why);
  void begin_close(websocket::close_code code, std::string reason, bool drop_queued);
  void do_close();
  std::shared_ptr<parley::session> session();

  // Forwarding: the session is another node's (forward_to_: its address). The client is
  // relayed there (ws_upstream.hpp) once that node accepts; its refusal is the client's.
  void start_forward(request req);
  void on_forward_open(request req, std::optional<ws_upstream::refusal> no);
  void forward(std::string_view text);

  // Replay of the stored chat (fetch_user_messages), or resend of the replies after the
  // client's cursor (?since=N), a page at a time, paced by our writes.
  void start_replay();
  void start_resend();
  void end_resend();
  void fetch_page();
  void on_page(std::vector<chat_message> rows, std::exception_ptr error);
  void pump_replay();

  websocket::stream<held_writes<Stream>> ws_;
  std::shared_ptr<ws_hub> hub_;
  client_identity who_;
  std::weak_ptr<parley::session> session_;  // the last session looked up (strand)
  parley::session_attachment attachment_;   // holds session_ from eviction while connected
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::size_t queued_bytes_ = 0;  // of queue_
  // Frames sent from other strands (a session's turn), taken by one handler on ours: the
  // replies of one turn are queued together, and sent in one write (held_writes).
  std::mutex outbox_mutex_;
  std::vector<std::pair<std::shared_ptr<const std::string>, std::int64_t>> outbox_;  // frame, seq
  net::steady_timer close_timer_;
  net::steady_timer progress_timer_;
  websocket::close_reason close_reason_;
  wall_clock::time_point connected_at_{};
  clock::time_point last_refill_{};
  clock::time_point queue_since_{};  // when queue_ last went from empty to non-empty
  double tokens_ = 0;
  std::uint64_t id_ = 0;  // in the hub while joined
  bool created_ = false;  // the session was not live when this connection came
  bool claimed_ = false;  // the database answered the claim (or the wait for it timed out)
  bool accepted_ = false;  // the 101 is written: frames may go
  bool writing_ = false;  // a write is in flight, or posted (do_write)
  bool watching_ = false;  // progress_timer_ is armed
  bool closing_ = false;
  bool close_pending_ = false;
  bool dead_ = false;  // a read or write failed: the socket is gone

  // A client that came with ?since=N: the highest reply number queued to it (0: none yet).
  // Live replies at or below it were resent already (dropped); those that come while the
  // resend runs wait in held_ (bounded by send_buffer) and go, in number order, when it ends.
  std::optional<std::int64_t> cursor_;
  std::vector<std::pair<std::int64_t, std::shared_ptr<const std::string>>> held_;
  std::size_t held_bytes_ = 0;
  bool history_after_resend_ = false;  // fetch_user_messages came during the resend

  struct replay_state {
    std::shared_ptr<parley::session> session;
    bool resend = false;  // replies after the cursor (by seq), not the chat log (by id)
    wall_clock::time_point until;
    std::int64_t after_id = 0;  // the last row's id, or seq when resending
    std::deque<chat_message> rows;  // fetched, not yet queued
    bool fetching = false;
    bool last_page = false;  // no page after the rows held
  };
  std::optional<replay_state> replay_;

  std::string forward_to_;              // the owner's address: this connection is relayed
  std::shared_ptr<ws_upstream> up_;     // the link to it (strand)
  bool read_paused_ = false;            // the link's queue is full: no read until it drains
};

}  // namespace parley::platforms::detail
