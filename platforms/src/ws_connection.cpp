#include "ws_connection.hpp"

#include <algorithm>
#include <utility>

#include <parley/agent.hpp>
#include <parley/errors.hpp>
#include <parley/log.hpp>

namespace parley::platforms::detail {

namespace {
void fail(beast::error_code ec, const char* what, const std::string& sid) {
  // Normal ends of a connection are not errors. Session ids are secrets: a tag above debug.
  if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
      ec == net::error::eof || ec == net::ssl::error::stream_truncated ||
      ec == beast::error::timeout || ec == net::error::connection_reset ||
      ec == net::error::broken_pipe || ec == net::error::not_connected)
    PARLEY_LOG(debug, "websocket " << session_tag(sid) << ": " << what << ": " << ec.message());
  else
    PARLEY_LOG(info, "websocket " << session_tag(sid) << ": " << what << ": " << ec.message());
}

template <class Stream>
constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

// Rows of the chat log read per page of a replay.
constexpr std::size_t replay_page_rows = 200;
}  // namespace

template <class Stream>
ws_connection<Stream>::ws_connection(Stream&& stream, std::shared_ptr<ws_hub> hub,
                                     client_identity who)
    : ws_(std::move(stream)),
      hub_(std::move(hub)),
      who_(std::move(who)),
      close_timer_(ws_.get_executor()),
      progress_timer_(ws_.get_executor()),
      last_refill_(clock::now()),
      tokens_(static_cast<double>(hub_->opts.rate_burst)) {}

template <class Stream>
ws_connection<Stream>::~ws_connection() {
  leave();
  hub_->release();
}

// ---- joining and leaving the session -------------------------------------------------------

template <class Stream>
std::optional<response> ws_connection<Stream>::join(const request& req, std::exception_ptr claim) {
  // Registered before the session is looked up (a new one greets at once) and before the 101
  // is written: a client that has seen 101 receives every later reply of its session.
  connected_at_ = wall_clock::now();
  id_ = hub_->add(who_.session_id, this->weak_from_this());
  if (hub_->stopping.load()) return std::nullopt;  // accepted, then closed with 1001
  try {
    if (claim) std::rethrow_exception(claim);
    created_ = !hub_->owner->find_session(who_.session_id);
    session();  // make (or resume) the session now
    return std::nullopt;
  } catch (const not_owner_error& e) {
    // Another node owns the session: relayed there, unless this handshake was forwarded
    // already (a second hop would mean the nodes disagree: the client retries instead).
    if (hub_->opts.forward && !e.address.empty() && req.find(forwarded_header) == req.end() &&
        e.address != hub_->advertised) {
      forward_to_ = e.address;
      return std::nullopt;
    }
    leave();
    auto res = text_response(http::status::service_unavailable, req.version(), e.what(), false);
    res.set(http::field::retry_after, "1");
    return res;
  } catch (const db_error& e) {
    leave();
    auto res = text_response(http::status::service_unavailable, req.version(),
                             std::string("cannot claim the session: ") + e.what() + "; try again",
                             false);
    res.set(http::field::retry_after, "1");
    return res;
  } catch (const capacity_error& e) {
    leave();
    std::string why = e.what();
    if (why.find("agent.max_sessions") == std::string::npos)
      why += " (agent.max_sessions)";
    return text_response(http::status::service_unavailable, req.version(),
                         why + "; try again later", false);
  } catch (const std::exception& e) {
    leave();
    return text_response(http::status::internal_server_error, req.version(),
                         std::string("cannot start the session: ") + e.what(), false);
  }
}

template <class Stream>
void ws_connection<Stream>::leave() {
  if (!id_) return;
  hub_->remove(id_, who_.session_id);
  id_ = 0;
}

// ---- handshake ------------------------------------------------------------------------------

template <class Stream>
void ws_connection<Stream>::run(request req) {
  // Several nodes: the database says whether this node may serve the session (claiming it
  // when nobody holds it) without holding this thread; a database that does not answer within
  // the handshake timeout gets the client a 503.
  auto sp = std::make_shared<request>(std::move(req));
  auto self = this->shared_from_this();
  close_timer_.expires_after(hub_->opts.handshake_timeout);
  close_timer_.async_wait([self, sp](beast::error_code ec) {
    if (ec || self->claimed_) return;
    self->claimed(std::move(*sp), std::make_exception_ptr(db_error(
                                      "the database did not answer within the handshake timeout")));
  });
  hub_->owner->async_claim(who_.session_id, [self, sp](std::exception_ptr e) {
    net::post(self->ws_.get_executor(), [self, sp, e] {
      if (self->claimed_) return;
      self->close_timer_.cancel();
      self->claimed(std::move(*sp), e);
    });
  });
}

template <class Stream>
void ws_connection<Stream>::claimed(request req, std::exception_ptr claim) {
  claimed_ = true;
  if (auto refusal = join(req, claim)) return refuse(std::move(*refusal));
  if (!forward_to_.empty()) return start_forward(std::move(req));
  // Joined first: every reply from now on reaches us live; the resend reads what came before
  // (and perhaps some of those too: the cursor drops them).
  if (who_.since && !hub_->stopping.load()) start_resend();
  accept(std::move(req));
}

template <class Stream>
void ws_connection<Stream>::accept(request req) {
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
void ws_connection<Stream>::refuse(response res) {
  ++hub_->rejected;
  // The body may quote the runtime's message, which may name the session: not above debug.
  PARLEY_LOG(info, "websocket " << session_tag(who_.session_id) << ": handshake refused ("
                                << res.result_int() << ")");
  PARLEY_LOG(debug, "websocket " << session_tag(who_.session_id) << ": handshake refused: " << res.body());
  dead_ = true;
  // The HTTP stream's timeout (the handshake's) still bounds this write.
  auto sp = std::make_shared<response>(std::move(res));
  http::async_write(ws_.next_layer(), *sp,
                    [self = this->shared_from_this(), sp](beast::error_code ec, std::size_t) {
                      if (ec) return fail(ec, "write", self->who_.session_id);
                      if constexpr (is_tls<Stream>) {
                        beast::get_lowest_layer(self->ws_).expires_after(std::chrono::seconds(2));
                        self->ws_.next_layer().next_layer().async_shutdown(
                            [self](beast::error_code) {});
                      } else {
                        beast::error_code ignored;
                        beast::get_lowest_layer(self->ws_).socket().shutdown(
                            tcp::socket::shutdown_send, ignored);
                      }
                    });
}

template <class Stream>
void ws_connection<Stream>::on_accept(beast::error_code ec) {
  if (ec) {
    abandon();
    return fail(ec, "accept", who_.session_id);
  }
  accepted_ = true;
  ++hub_->accepted;
  PARLEY_LOG(debug, "websocket " << session_tag(who_.session_id) << ": connected (user '" << who_.user << "')");
  if (hub_->stopping.load()) begin_close(websocket::close_code::going_away, "server shutting down", false);
  // Replies that came while the 101 was being written go now.
  if (!queue_.empty() && !writing_ && !dead_) {
    queue_since_ = clock::now();
    writing_ = true;
    watch_progress();
    do_write();
  } else if (close_pending_ && !writing_) {
    do_close();
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
  if (who_.double_texting) s->set_double_texting(*who_.double_texting);
  session_ = s;
  return s;
}

// ---- reading --------------------------------------------------------------------------------

template <class Stream>
void ws_connection<Stream>::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_connection::on_read, this->shared_from_this()));
}

template <class Stream>
void ws_connection<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    // Beast has already answered protocol errors with their close code (1009 too big,
    // 1007 invalid UTF-8, 1002 protocol) or timed the peer out.
    abandon();
    return fail(ec, "read", who_.session_id);
  }
  ++hub_->frames_in;
  if (!closing_ && !hub_->stopping.load()) {
    if (!ws_.got_text()) {
      error("binary frames are not supported; send JSON text frames");
    } else {
      const auto data = buffer_.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      if (up_)
        forward(text);  // relayed to the session's owner
      else
        handle(text);
    }
  }
  buffer_.consume(buffer_.size());
  if (read_paused_) return;  // relayed: until the link to the owner drains
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
  if (tokens_ < 1.0) {
    ++hub_->rate_limited;
    error("rate limit: at most " + std::to_string(o.rate_limit) +
          " messages per second (platforms.websocket.rate_limit); this message was dropped");
    return false;
  }
  tokens_ -= 1.0;
  return true;
}

template <class Stream>
void ws_connection<Stream>::handle(std::string_view text) {
  if (!take_token()) return;
  client_input in = parse_client_frame(text, hub_->opts.max_file_size);
  // session() may make the session again (after a reset or a close), which can be refused.
  try {
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
      if (replay_ && replay_->resend)
        history_after_resend_ = true;  // after the resend, not instead of it
      else
        start_replay();
    } else if (auto* i = std::get_if<input_ignored>(&in)) {
      PARLEY_LOG(debug, "websocket " << session_tag(who_.session_id) << ": ignored action " << i->action);
    } else if (auto* err = std::get_if<input_error>(&in)) {
      error(std::move(err->message));
    }
  } catch (const std::exception& ex) {
    error(ex.what());
  }
}

template <class Stream>
void ws_connection<Stream>::error(std::string message) {
  PARLEY_LOG(debug, "websocket " << session_tag(who_.session_id) << ": error frame: " << message);
  enqueue(std::make_shared<const std::string>(encode_error(message)));
}

// ---- replay of the stored chat ----------------------------------------------------------------
// A session's history may be long (thousands of turns): it is read a page at a time, and a
// page is asked for only when what is queued has drained below a quarter of send_buffer, so a
// replay never fills the queue and never counts against the client; a client that stops
// reading during it is closed by send_timeout like any other.

template <class Stream>
void ws_connection<Stream>::start_replay() {
  auto s = session();
  if (!s->agent().db()) return;  // nothing is stored without a DB handler
  if (replay_) {
    PARLEY_LOG(debug, "websocket " << session_tag(who_.session_id) << ": a replay is running; ignored");
    return;
  }
  // Frames go to this connection only, up to the time it joined (later replies reached it
  // live). The database keeps milliseconds: when this connection made the session, its
  // greeting may share the join's millisecond and reached it live, so that millisecond is
  // left out; when the session was already there, it is kept (its last reply may be that
  // recent).
  replay_.emplace();
  replay_->session = std::move(s);
  replay_->until = created_ ? connected_at_ - std::chrono::milliseconds(1) : connected_at_;
  fetch_page();
}

// The resend of the replies after the client's cursor (?since=N): stored replies with seq > N
// in order, then the live ones held meanwhile, each number once. The connection joined the
// session before the first page is asked for, so a reply is either in the pages (recorded
// before the read), or reaches us live, or both (then the cursor drops the second).
template <class Stream>
void ws_connection<Stream>::start_resend() {
  // Nothing sent on this connection yet. Live replies are compared with what this connection
  // sent, not with N: a reply that comes live after the join is newer than every stored one,
  // so it is new to an honest client; and a client whose N is beyond the session's last reply
  // (the session was deleted meanwhile) still gets the live ones.
  cursor_ = 0;
  auto s = session();
  if (!s->agent().db()) return;  // nothing stored: only live replies
  replay_.emplace();
  replay_->session = std::move(s);
  replay_->resend = true;
  replay_->after_id = *who_.since;
  fetch_page();
}

template <class Stream>
void ws_connection<Stream>::end_resend() {
  replay_.reset();
  // The live replies that came meanwhile, in number order, without those resent.
  auto held = std::move(held_);
  held_.clear();
  held_bytes_ = 0;
  std::stable_sort(held.begin(), held.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [seq, frame] : held) deliver_live(std::move(frame), seq);
  if (std::exchange(history_after_resend_, false)) start_replay();
}

template <class Stream>
void ws_connection<Stream>::fetch_page() {
  auto& r = *replay_;
  r.fetching = true;
  // Asked on the session's strand, so the read sees every row the session recorded before
  // (read-your-writes); the answer may come on any thread, so it is posted back to ours.
  net::post(r.session->strand(), [s = r.session, self = this->shared_from_this(),
                                   after = r.after_id, until = r.until, resend = r.resend] {
    // Holds the session until the page is read (the handler reads from it).
    auto answer = [self, s](std::vector<chat_message> rows, std::exception_ptr error) {
      net::post(self->ws_.get_executor(), [self, rows = std::move(rows), error]() mutable {
        self->on_page(std::move(rows), error);
      });
    };
    if (auto* db = s->agent().db()) {
      if (resend)
        db->async_replies_since(*s, after, replay_page_rows, answer);
      else
        db->async_chat_page(*s, after, replay_page_rows, until, answer);
    } else {
      answer({}, nullptr);
    }
  });
}

template <class Stream>
void ws_connection<Stream>::on_page(std::vector<chat_message> rows, std::exception_ptr error) {
  if (!replay_ || closing_ || dead_) return replay_.reset();
  auto& r = *replay_;
  r.fetching = false;
  if (error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    PARLEY_LOG(info, "websocket " << session_tag(who_.session_id)
                                  << ": replaying the chat failed: " << what);
    if (r.resend) {
      this->error("cannot resend the replies after since=" + std::to_string(*who_.since) + ": " +
                  what + "; reconnect with the same since to try again");
      return end_resend();
    }
    replay_.reset();
    this->error("cannot replay the chat history: " + what);
    return;
  }
  r.last_page = rows.size() < replay_page_rows;
  if (!rows.empty()) r.after_id = r.resend ? rows.back().seq : rows.back().id;
  for (auto& m : rows) r.rows.push_back(std::move(m));
  pump_replay();
}

template <class Stream>
void ws_connection<Stream>::pump_replay() {
  if (!replay_ || closing_ || dead_) return;
  auto& r = *replay_;
  const std::size_t high = hub_->opts.send_buffer / 2, low = hub_->opts.send_buffer / 4;
  // Rows go in while the queue is under half of send_buffer (a row bigger than that goes
  // alone), so live replies always find room.
  while (!r.rows.empty() &&
         (queue_.empty() || queued_bytes_ + r.rows.front().content.size() <= high)) {
    auto& m = r.rows.front();
    if (!r.resend) {
      push(std::make_shared<const std::string>(encode_history(m)));
    } else if (m.seq > *cursor_) {
      // Resent as it went live (history: false), with its number.
      push(std::make_shared<const std::string>(encode_history(m, false)));
      cursor_ = m.seq;
    }
    r.rows.pop_front();
  }
  if (!r.rows.empty() || r.fetching) return;
  if (r.last_page) return r.resend ? end_resend() : replay_.reset();
  if (queued_bytes_ <= low) fetch_page();
}

// ---- writing --------------------------------------------------------------------------------

template <class Stream>
void ws_connection<Stream>::send(std::shared_ptr<const std::string> frame, std::int64_t seq) {
  bool first = false;
  {
    std::lock_guard lock(outbox_mutex_);
    first = outbox_.empty();
    outbox_.emplace_back(std::move(frame), seq);
  }
  // One handler takes every frame sent until it runs (a turn's replies, usually).
  if (first) net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->take_outbox(); });
}

template <class Stream>
void ws_connection<Stream>::take_outbox() {
  std::vector<std::pair<std::shared_ptr<const std::string>, std::int64_t>> frames;
  {
    std::lock_guard lock(outbox_mutex_);
    frames.swap(outbox_);
  }
  // Relayed: the owner sends this session's replies (this node took it over only after the
  // owner closed the link, and then this connection closes too).
  if (up_) return;
  for (auto& [f, seq] : frames) deliver_live(std::move(f), seq);
}

template <class Stream>
void ws_connection<Stream>::deliver_live(std::shared_ptr<const std::string> frame,
                                         std::int64_t seq) {
  if (!cursor_ || seq <= 0) return enqueue(std::move(frame));
  if (closing_ || dead_) return;
  if (replay_ && replay_->resend) {
    // Held until the stored ones before it are sent. A client that cannot take the resend
    // while its session keeps replying is closed like a slow one; it reconnects with its
    // cursor and loses nothing.
    held_bytes_ += frame->size();
    held_.emplace_back(seq, std::move(frame));
    if (held_bytes_ > hub_->opts.send_buffer)
      close_slow(std::to_string(held_bytes_) + " bytes of live replies held during the resend "
                 "from since=N, over platforms.websocket.send_buffer");
    return;
  }
  if (seq <= *cursor_) return;  // resent already
  cursor_ = seq;
  enqueue(std::move(frame));
}

template <class Stream>
void ws_connection<Stream>::shutdown() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    self->begin_close(websocket::close_code::going_away, "server shutting down", false);
  });
}

template <class Stream>
void ws_connection<Stream>::moved() {
  net::post(ws_.get_executor(), [self = this->shared_from_this()] {
    self->begin_close(websocket::close_code::service_restart,
                      "moved: another node serves this session now; reconnect", false);
  });
}

template <class Stream>
void ws_connection<Stream>::enqueue(std::shared_ptr<const std::string> frame) {
  if (closing_ || dead_) return;
  // A client that does not read its replies is closed rather than buffered without bound (or
  // than slowing the session, which only ever posts to us). A frame bigger than the whole
  // buffer still goes when nothing else is queued.
  if (!queue_.empty() && queued_bytes_ + frame->size() > hub_->opts.send_buffer)
    return close_slow(std::to_string(queued_bytes_) + " bytes queued, over "
                      "platforms.websocket.send_buffer");
  push(std::move(frame));
}

template <class Stream>
void ws_connection<Stream>::push(std::shared_ptr<const std::string> frame) {
  if (queue_.empty()) queue_since_ = clock::now();
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  if (!writing_ && accepted_) {
    // Start on the next turn of the strand, after the frames queued with this one.
    writing_ = true;
    watch_progress();
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
void ws_connection<Stream>::abandon() {
  dead_ = true;
  if (up_) up_->close(websocket::close_reason(websocket::close_code::going_away, "the client went away"));
  while (queue_.size() > (writing_ ? 1u : 0u)) {  // the one being written stays until it ends
    queued_bytes_ -= queue_.back()->size();
    queue_.pop_back();
  }
  replay_.reset();
  held_.clear();
  held_bytes_ = 0;
  close_timer_.cancel();
  progress_timer_.cancel();
}

template <class Stream>
void ws_connection<Stream>::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (ec) {
    abandon();
    return fail(ec, "write", who_.session_id);
  }
  ++hub_->frames_out;
  queued_bytes_ -= queue_.front()->size();
  queue_.pop_front();
  if (replay_) pump_replay();
  if (!queue_.empty()) return do_write();
  ws_.next_layer().hold(false);
  if (close_pending_) do_close();
}

// ---- slow readers ---------------------------------------------------------------------------
// Judged by bytes (enqueue) and by time: while frames are queued, the socket must take some of
// them every send_timeout. A client that reads slowly but steadily is kept.

template <class Stream>
void ws_connection<Stream>::watch_progress() {
  if (watching_ || closing_ || dead_ || hub_->opts.send_timeout <= clock::duration::zero()) return;
  watching_ = true;
  progress_timer_.expires_after(hub_->opts.send_timeout);
  progress_timer_.async_wait(
      beast::bind_front_handler(&ws_connection::on_progress_check, this->shared_from_this()));
}

template <class Stream>
void ws_connection<Stream>::on_progress_check(beast::error_code ec) {
  watching_ = false;
  if (ec || closing_ || dead_ || queue_.empty()) return;
  const auto timeout = hub_->opts.send_timeout;
  const auto last = std::max(queue_since_, ws_.next_layer().last_progress());
  if (clock::now() - last >= timeout)
    return close_slow("no write progress for " +
                      std::to_string(std::chrono::duration<double>(timeout).count()) +
                      " s, platforms.websocket.send_timeout");
  watching_ = true;
  progress_timer_.expires_at(last + timeout);
  progress_timer_.async_wait(
      beast::bind_front_handler(&ws_connection::on_progress_check, this->shared_from_this()));
}

template <class Stream>
void ws_connection<Stream>::close_slow(std::string why) {
  ++hub_->slow_closed;
  PARLEY_LOG(info, "websocket " << session_tag(who_.session_id)
                                << ": closing a client that does not read (" << why << ")");
  begin_close(websocket::close_code::policy_error, "too slow: read your replies", true);
}

// ---- closing --------------------------------------------------------------------------------

template <class Stream>
void ws_connection<Stream>::begin_close(websocket::close_code code, std::string reason,
                                        bool drop_queued) {
  if (closing_ || dead_) return;
  closing_ = true;
  replay_.reset();
  held_.clear();
  held_bytes_ = 0;
  progress_timer_.cancel();
  close_reason_ = websocket::close_reason(code, reason);
  // The frame being written stays (its buffer is in use); the rest may go.
  if (drop_queued)
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back()->size();
      queue_.pop_back();
    }
  close_pending_ = true;
  if (up_) up_->close(websocket::close_reason(websocket::close_code::going_away, reason));
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
  // Before the 101 is written, on_accept sends what is queued and then closes.
  if (accepted_ && !writing_ && queue_.empty()) do_close();
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

// ---- forwarding to the owner --------------------------------------------------------------

template <class Stream>
void ws_connection<Stream>::start_forward(request req) {
  // The owner sees the same target (cursor, policy, token in the query) and headers, and the
  // session id this node settled on (a fresh one is made here when the client brought none).
  std::vector<std::pair<std::string, std::string>> headers{
      {"X-Session-ID", who_.session_id}, {forwarded_header, hub_->advertised}};
  if (!who_.user.empty()) headers.emplace_back("X-User-ID", who_.user);
  for (auto f : {http::field::authorization, http::field::origin})
    if (auto h = req.find(f); h != req.end()) headers.emplace_back(std::string(h->name_string()), std::string(h->value()));
  PARLEY_LOG(debug, "websocket " << session_tag(who_.session_id) << ": relayed to its owner at " << forward_to_);
  auto self = this->shared_from_this();
  std::weak_ptr<ws_connection> weak = self;  // the link's other handlers: it must not hold us
  auto target = std::string(req.target());
  auto sp = std::make_shared<request>(std::move(req));
  up_ = std::make_shared<ws_upstream>(
      ws_.get_executor(),
      ws_upstream::handlers{
          // Holds the connection until the owner answers (nothing else does meanwhile).
          [self, sp](std::optional<ws_upstream::refusal> no) {
            self->on_forward_open(std::move(*sp), std::move(no));
          },
          [weak](std::string frame) {
            if (auto c = weak.lock()) c->enqueue(std::make_shared<const std::string>(std::move(frame)));
          },
          [weak] {
            if (auto c = weak.lock(); c && c->read_paused_ && !c->dead_) {
              c->read_paused_ = false;
              c->do_read();
            }
          },
          [weak](websocket::close_reason why) {
            auto c = weak.lock();
            if (!c) return;
            c->up_.reset();  // nothing to close any more
            const auto code = why.code == websocket::close_code::none
                                  ? websocket::close_code::service_restart
                                  : static_cast<websocket::close_code>(why.code);
            c->begin_close(code, std::string(why.reason.c_str()), false);
          }});
  const auto& o = hub_->opts;
  // A live owner on the same network answers at once; one that is paused or cut off is given
  // up on soon (the client retries, and meanwhile its lease runs out).
  up_->open(forward_to_, std::move(target), std::move(headers),
            std::min<std::chrono::steady_clock::duration>(o.handshake_timeout, std::chrono::seconds(2)),
            o.idle_timeout, o.max_size);
}

template <class Stream>
void ws_connection<Stream>::on_forward_open(request req, std::optional<ws_upstream::refusal> no) {
  if (no) {
    up_.reset();
    leave();
    const auto status = static_cast<http::status>(no->status);
    auto res = text_response(status, req.version(),
                             no->status == 503 && no->body.find("node") == std::string::npos
                                 ? "the node serving this session (" + forward_to_ +
                                       ") cannot be reached: " + no->body + "; retry shortly"
                                 : no->body,
                             false);
    if (no->status == 503) res.set(http::field::retry_after, "1");
    if (no->status == 401) res.set(http::field::www_authenticate, "Bearer");
    return refuse(std::move(res));
  }
  ++hub_->forwarded;
  accept(std::move(req));  // an ordinary accept; frames are relayed from on_read on
}

template <class Stream>
void ws_connection<Stream>::forward(std::string_view text) {
  // The same rate limit as for a local session; the owner checks the frame itself.
  if (!take_token()) return;
  if (!up_->send(std::string(text))) read_paused_ = true;
}

template class ws_connection<beast::tcp_stream>;
template class ws_connection<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace parley::platforms::detail
