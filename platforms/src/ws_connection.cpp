#include "ws_connection.hpp"

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley::platforms::detail {

namespace {
void fail(beast::error_code ec, const char* what, const std::string& sid) {
  // Normal ends of a connection are not errors.
  if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
      ec == net::error::eof || ec == net::ssl::error::stream_truncated ||
      ec == beast::error::timeout || ec == net::error::connection_reset ||
      ec == net::error::broken_pipe || ec == net::error::not_connected)
    PARLEY_LOG(debug, "websocket " << sid << ": " << what << ": " << ec.message());
  else
    PARLEY_LOG(info, "websocket " << sid << ": " << what << ": " << ec.message());
}
}  // namespace

template <class Stream>
ws_connection<Stream>::ws_connection(Stream&& stream, std::shared_ptr<ws_hub> hub,
                                     client_identity who)
    : ws_(std::move(stream)),
      hub_(std::move(hub)),
      who_(std::move(who)),
      close_timer_(ws_.get_executor()),
      last_refill_(clock::now()),
      tokens_(static_cast<double>(hub_->opts.rate_burst)) {}

template <class Stream>
ws_connection<Stream>::~ws_connection() {
  if (id_) hub_->remove(id_, who_.session_id);
  hub_->release();
}

template <class Stream>
void ws_connection<Stream>::run(request req) {
  const auto& o = hub_->opts;
  // The WebSocket timeouts replace the TCP stream's own (Beast wants exactly one of them).
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = o.handshake_timeout;
  t.idle_timeout = o.idle_timeout;
  t.keep_alive_pings = true;  // ping at half the idle time; silence for the whole closes
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "parley"); }));
  ws_.read_message_max(o.max_size);
  ws_.auto_fragment(false);
  ws_.async_accept(req, beast::bind_front_handler(&ws_connection::on_accept, this->shared_from_this()));
}

template <class Stream>
void ws_connection<Stream>::on_accept(beast::error_code ec) {
  if (ec) return fail(ec, "accept", who_.session_id);
  connected_at_ = wall_clock::now();
  ++hub_->accepted;
  // Register before the session exists, so its first replies (the greeting) reach us.
  id_ = hub_->add(who_.session_id, this->weak_from_this());
  PARLEY_LOG(debug, "websocket " << who_.session_id << ": connected (user '" << who_.user << "')");
  if (hub_->stopping.load()) {
    begin_close(websocket::close_code::going_away, "server shutting down", false);
  } else {
    created_ = !hub_->owner->find_session(who_.session_id);
    session();  // make (or resume) the session now: a new one greets at once
  }
  do_read();
}

template <class Stream>
std::shared_ptr<parley::session> ws_connection<Stream>::session() {
  // Not owned: after a reset (or a close) the id names a new session, found again here.
  if (auto s = session_.lock(); s && !s->is_terminal()) return s;
  auto s = hub_->owner->get_or_create_session(who_.session_id, hub_->plat, who_.user,
                                              who_.session_name);
  attachment_ = s->attach();  // not evicted while this connection is open
  s = attachment_.session();  // a successor, if it was evicted meanwhile
  session_ = s;
  return s;
}

template <class Stream>
void ws_connection<Stream>::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_connection::on_read, this->shared_from_this()));
}

template <class Stream>
void ws_connection<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    // Beast has already answered protocol errors with their close code (1009 too big,
    // 1007 invalid UTF-8, 1002 protocol) or timed the peer out.
    dead_ = true;
    while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();  // keep the in-flight one
    close_timer_.cancel();
    return fail(ec, "read", who_.session_id);
  }
  ++hub_->frames_in;
  if (!closing_ && !hub_->stopping.load()) {
    if (!ws_.got_text()) {
      error("binary frames are not supported; send JSON text frames");
    } else {
      const auto data = buffer_.cdata();
      handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
  }
  buffer_.consume(buffer_.size());
  // Do not keep a large buffer around for an idle connection.
  if (buffer_.capacity() > 64 * 1024) buffer_.shrink_to_fit();
  do_read();
}

template <class Stream>
bool ws_connection<Stream>::take_token() {
  const auto& o = hub_->opts;
  if (o.rate_limit <= 0) return true;
  const auto now = clock::now();
  const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min(static_cast<double>(std::max<std::size_t>(1, o.rate_burst)),
                     tokens_ + elapsed * o.rate_limit);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

template <class Stream>
void ws_connection<Stream>::handle(std::string_view text) {
  if (!take_token()) {
    ++hub_->rate_limited;
    error("rate limit: at most " + std::to_string(hub_->opts.rate_limit) +
          " messages per second (platforms.websocket.rate_limit); this message was dropped");
    return;
  }
  client_input in = parse_client_frame(text, hub_->opts.max_file_size);
  if (auto* e = std::get_if<input_event>(&in)) {
    auto r = session()->post(std::move(e->ev));
    if (!r) error(r.error);
  } else if (std::holds_alternative<input_reset>(in)) {
    auto& a = *hub_->owner;
    if (a.find_session(who_.session_id))
      a.reset_session(who_.session_id);
    else
      session();
  } else if (auto* v = std::get_if<input_set_variables>(&in)) {
    auto s = session();
    // Dictionary writes happen on the session's strand, then transitions are re-evaluated.
    net::post(s->strand(), [s, values = std::move(v->values)] {
      for (const auto& [k, val] : values.items()) s->set(k, val);
      s->call_manage_transition();
    });
  } else if (std::holds_alternative<input_fetch_history>(in)) {
    auto s = session();
    if (!s->agent().db()) return;  // nothing is stored without a DB handler
    // Read on the session's strand (it reads its own writes); frames go to this connection
    // only, up to the time it connected (later replies reached it live). The database keeps
    // milliseconds: when this connection made the session, its greeting may share the
    // connection's millisecond and reached it live, so that millisecond is left out; when
    // the session was already there, it is kept (its last reply may be that recent).
    const auto until = created_ ? connected_at_ - std::chrono::milliseconds(1) : connected_at_;
    net::post(s->strand(), [s, self = this->shared_from_this(), until] {
      for (const auto& m : s->get_chat_history(std::nullopt, until))
        self->send(std::make_shared<const std::string>(encode_history(m)));
    });
  } else if (auto* i = std::get_if<input_ignored>(&in)) {
    PARLEY_LOG(debug, "websocket " << who_.session_id << ": ignored action " << i->action);
  } else if (auto* err = std::get_if<input_error>(&in)) {
    error(std::move(err->message));
  }
}

template <class Stream>
void ws_connection<Stream>::error(std::string message) {
  PARLEY_LOG(debug, "websocket " << who_.session_id << ": error frame: " << message);
  enqueue(std::make_shared<const std::string>(encode_error(message)));
}

template <class Stream>
void ws_connection<Stream>::send(std::shared_ptr<const std::string> frame) {
  bool first = false;
  {
    std::lock_guard lock(outbox_mutex_);
    first = outbox_.empty();
    outbox_.push_back(std::move(frame));
  }
  // One handler takes every frame sent until it runs (a turn's replies, usually).
  if (first) net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->take_outbox(); });
}

template <class Stream>
void ws_connection<Stream>::take_outbox() {
  std::vector<std::shared_ptr<const std::string>> frames;
  {
    std::lock_guard lock(outbox_mutex_);
    frames.swap(outbox_);
  }
  for (auto& f : frames) enqueue(std::move(f));
}

template <class Stream>
void ws_connection<Stream>::shutdown() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    self->begin_close(websocket::close_code::going_away, "server shutting down", false);
  });
}

template <class Stream>
void ws_connection<Stream>::enqueue(std::shared_ptr<const std::string> frame) {
  if (closing_ || dead_) return;
  if (queue_.size() >= hub_->opts.send_queue) {
    // The client does not read its replies: close it rather than buffer without bound or
    // slow the session (which only ever posts to us).
    ++hub_->slow_closed;
    PARLEY_LOG(info, "websocket " << who_.session_id << ": closing a client that does not read ("
                                  << queue_.size() << " frames queued)");
    begin_close(websocket::close_code::policy_error, "outgoing queue full: read your replies",
                true);
    return;
  }
  queue_.push_back(std::move(frame));
  if (!writing_) {
    // Start on the next turn of the strand, after the frames queued with this one.
    writing_ = true;
    net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->do_write(); });
  }
}

template <class Stream>
void ws_connection<Stream>::do_write() {
  if (dead_ || queue_.empty()) {
    writing_ = false;
    ws_.next_layer().hold(false);  // a close frame sends whatever is held
    if (!dead_ && close_pending_) do_close();
    return;
  }
  writing_ = true;
  // More frames behind this one: hold it, so they all leave with the last in one send (one
  // system call, one segment, one wake-up of the client).
  ws_.next_layer().hold(queue_.size() > 1);
  ws_.text(true);
  ws_.async_write(net::buffer(*queue_.front()),
                  beast::bind_front_handler(&ws_connection::on_write, this->shared_from_this()));
}

template <class Stream>
void ws_connection<Stream>::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) {
    dead_ = true;
    queue_.clear();
    close_timer_.cancel();
    return fail(ec, "write", who_.session_id);
  }
  ++hub_->frames_out;
  queue_.pop_front();
  if (!queue_.empty()) return do_write();
  ws_.next_layer().hold(false);
  if (close_pending_) do_close();
}

template <class Stream>
void ws_connection<Stream>::begin_close(websocket::close_code code, std::string reason,
                                        bool drop_queued) {
  if (closing_ || dead_) return;
  closing_ = true;
  close_reason_ = websocket::close_reason(code, reason);
  // The frame being written stays (its buffer is in use); the rest may go.
  if (drop_queued)
    while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
  close_pending_ = true;
  // A peer that reads nothing can hold the last write forever: cut it off after a bound.
  close_timer_.expires_after(code == websocket::close_code::going_away
                                 ? std::min<clock::duration>(hub_->opts.handshake_timeout,
                                                             std::chrono::seconds(1))
                                 : clock::duration(hub_->opts.handshake_timeout));
  close_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
    if (ec) return;
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
  });
  if (!writing_ && queue_.empty()) do_close();
}

template <class Stream>
void ws_connection<Stream>::do_close() {
  close_pending_ = false;
  ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code ec) {
    self->close_timer_.cancel();
    if (ec) fail(ec, "close", self->who_.session_id);
    // The pending read completes once the peer answers the close (or times out).
  });
}

template class ws_connection<beast::tcp_stream>;
template class ws_connection<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace parley::platforms::detail
