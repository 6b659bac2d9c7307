// A session's WebSocket link to another agent: connect lazily, write the queue, read answers
// into events for the session, reconnect with backoff, report every failure as an event.
#include "ws_agent_link.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley::platforms::detail {

namespace {
constexpr auto tuple_token = net::as_tuple(net::use_awaitable);

std::string clip(std::string s, std::size_t n = 200) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}
}  // namespace

agent_url parse_agent_url(std::string_view url) {
  agent_url u;
  std::string_view rest;
  if (url.starts_with("ws://")) {
    rest = url.substr(5);
  } else if (url.starts_with("wss://")) {
    u.tls = true;
    rest = url.substr(6);
  } else {
    u.error = "'" + redact_url(url) +
              "' is not a WebSocket URL; send_to_agent takes ws://HOST:PORT/ or wss://...";
    return u;
  }
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target.front() == '?') u.target.insert(0, "/");
  if (const auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);  // user info is not sent (use a token)
  std::string_view port;
  if (authority.starts_with("[")) {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      u.error = "'" + redact_url(url) + "' has an unclosed '[' in its host";
      return u;
    }
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    u.host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
  } else {
    u.host = std::string(authority);
  }
  if (u.host.empty()) {
    u.error = "'" + redact_url(url) + "' has no host; e.g. ws://localhost:8765/";
    return u;
  }
  if (port.empty()) port = u.tls ? "443" : "80";
  if (port.find_first_not_of("0123456789") != std::string_view::npos || port.size() > 5 ||
      std::stoi(std::string(port)) > 65535 || std::stoi(std::string(port)) == 0) {
    u.error = "'" + redact_url(url) + "' has a bad port '" + std::string(port) + "'";
    return u;
  }
  u.port = std::string(port);
  return u;
}

namespace {

template <class Stream>
class link final : public ws_agent_link, public std::enable_shared_from_this<link<Stream>> {
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;
  using ws_type = websocket::stream<Stream>;

 public:
  link(agent& a, std::string session_id, std::string url, agent_url u,
       const websocket_agent_options& o, ssl::context& ctx)
      : agent_(a),
        session_id_(std::move(session_id)),
        url_(std::move(url)),
        shown_(redact_url(url_)),
        u_(std::move(u)),
        o_(o),
        ssl_(ctx),
        strand_(net::make_strand(a.io_context())),
        wake_(strand_),
        pause_(strand_) {}

  void send(std::shared_ptr<const std::string> frame, lineage l) override {
    net::post(strand_, [self = this->shared_from_this(), frame = std::move(frame),
                        l = std::move(l)]() mutable { self->on_send(std::move(frame), std::move(l)); });
  }
  void open() override {
    net::post(strand_, [self = this->shared_from_this()] {
      if (!self->closed_ && !self->running_) self->start();
    });
  }
  void close() override {
    net::post(strand_, [self = this->shared_from_this()] {
      if (self->closed_) return;
      self->closed_ = true;
      self->queue_.clear();
      self->unanswered_.clear();
      self->pause_.cancel();
      self->wake_.cancel();
    });
  }

 private:
  struct outgoing {
    std::shared_ptr<const std::string> frame;
    lineage l;
  };

  // ---- strand ----
  void on_send(std::shared_ptr<const std::string> frame, lineage l) {
    if (closed_) return;
    if (queue_.size() >= o_.queue_limit) {
      report("the queue to " + shown_ + " is full (" + std::to_string(queue_.size()) +
                 " messages wait, platforms.websocket_agents.queue_limit): the agent does not "
                 "keep up or cannot be reached; this message was not sent",
             l.id);
      return;
    }
    queue_.push_back({std::move(frame), std::move(l)});
    if (!running_) start();
    else wake_.cancel();
  }

  void start() {
    running_ = true;
    net::co_spawn(strand_, run(this->shared_from_this()), net::detached);
  }

  void report(std::string why, std::string message_id) {
    PARLEY_LOG(info, "agent link " << session_tag(session_id_) << " -> " << shown_ << ": " << why);
    (void)agent_.receive_event(session_id_,
                               event::agent_error(url_, std::move(why), std::move(message_id)));
  }

  // Every message waiting, and those without an answer, fail with `why`.
  void fail_all(const std::string& why) {
    if (queue_.empty() && unanswered_.empty()) report(why, "");
    for (auto* q : {&unanswered_, &queue_})
      for (auto& m : *q) report(why, m.l.id);
    queue_.clear();
    unanswered_.clear();
  }

  std::string last_unanswered() const { return unanswered_.empty() ? "" : unanswered_.back().l.id; }

  net::awaitable<void> run(std::shared_ptr<link> /*keep alive*/) {
    int failures = 0;
    while (!closed_) {
      std::string why;
      bool retry = true;
      co_await connect(why, retry);
      if (closed_) break;
      if (!why.empty()) {
        if (!retry || ++failures > o_.reconnect_attempts) {
          fail_all(why + (retry ? " (after " + std::to_string(failures) + " attempts)" : ""));
          break;
        }
        co_await pause(failures);
        continue;
      }
      failures = 0;
      // After a reconnect, what the peer has not answered goes again, first: it drops the ones
      // it handled already (by id).
      while (!unanswered_.empty()) {
        queue_.push_front(std::move(unanswered_.back()));
        unanswered_.pop_back();
      }
      dropped_ = false;
      net::co_spawn(strand_, read_loop(this->shared_from_this(), ws_, ++generation_),
                    net::detached);
      co_await write_loop();
      if (closed_) break;
      const bool again = !queue_.empty() || !unanswered_.empty();
      report(drop_reason_ + (again ? "; reconnecting to send what is unanswered" : ""),
             last_unanswered());
      ws_.reset();
      if (!again) break;  // the next send connects again
      co_await pause(++failures);
    }
    if (closed_ && ws_ && ws_->is_open()) {
      auto [ec] = co_await ws_->async_close(websocket::close_code::normal, tuple_token);
      if (ec) PARLEY_LOG(debug, "agent link -> " << shown_ << ": close: " << ec.message());
    }
    ws_.reset();
    running_ = false;
  }

  net::awaitable<void> pause(int failures) {
    auto wait = o_.backoff * (1 << std::min(failures - 1, 16));
    pause_.expires_after(std::min<clock::duration>(wait, o_.backoff_max));
    co_await pause_.async_wait(tuple_token);
  }

  std::shared_ptr<ws_type> make_stream() {
    if constexpr (tls)
      return std::make_shared<ws_type>(strand_, ssl_);
    else
      return std::make_shared<ws_type>(strand_);
  }

  net::awaitable<void> connect(std::string& why, bool& retry) {
    ws_ = make_stream();
    auto& tcp_layer = beast::get_lowest_layer(*ws_);
    tcp::resolver resolver(strand_);
    auto [rec, results] = co_await resolver.async_resolve(u_.host, u_.port, tuple_token);
    if (rec) {
      why = "cannot resolve the host of " + shown_ + ": " + rec.message();
      co_return;
    }
    tcp_layer.expires_after(o_.connect_timeout);
    auto [cec, ep] = co_await tcp_layer.async_connect(results, tuple_token);
    if (cec) {
      why = "cannot connect to " + shown_ + ": " + cec.message() + " (is the agent running?)";
      co_return;
    }
    if constexpr (tls) {
      auto& s = ws_->next_layer();
      if (!SSL_set_tlsext_host_name(s.native_handle(), u_.host.c_str())) {
        why = "cannot set the TLS server name for " + shown_;
        retry = false;
        co_return;
      }
      if (o_.tls_verify) s.set_verify_callback(ssl::host_name_verification(u_.host));
      auto [hec] = co_await s.async_handshake(ssl::stream_base::client, tuple_token);
      if (hec) {
        why = "the TLS handshake with " + shown_ + " failed: " + hec.message() +
              (o_.tls_verify ? " (platforms.websocket_agents.tls_verify checks its certificate)" : "");
        retry = false;
        co_return;
      }
    }
    tcp_layer.expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = o_.connect_timeout;
    t.idle_timeout = o_.idle_timeout;
    t.keep_alive_pings = true;
    ws_->set_option(t);
    ws_->set_option(websocket::stream_base::decorator(
        [sid = remote_session_, token = o_.token](websocket::request_type& req) {
          req.set(http::field::user_agent, "parley-agent");
          req.set("X-Session-ID", sid);
          if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
        }));
    ws_->read_message_max(o_.max_size);
    websocket::response_type res;
    auto [wec] = co_await ws_->async_handshake(res, u_.host + ":" + u_.port, u_.target, tuple_token);
    if (wec) {
      if (wec == websocket::error::upgrade_declined) {
        why = "the agent at " + shown_ + " refused the WebSocket handshake: HTTP " +
              std::to_string(res.result_int()) +
              (res.body().empty() ? std::string() : " " + clip(res.body())) +
              (res.result() == http::status::unauthorized
                   ? " (set platforms.websocket_agents.token, or ?token= in the URL)"
                   : "");
        retry = res.result() == http::status::service_unavailable;
      } else {
        why = "the WebSocket handshake with " + shown_ + " failed: " + wec.message();
      }
      co_return;
    }
  }

  net::awaitable<void> write_loop() {
    while (!closed_ && !dropped_) {
      if (queue_.empty()) {
        wake_.expires_at(clock::time_point::max());
        co_await wake_.async_wait(tuple_token);
        continue;
      }
      outgoing m = std::move(queue_.front());
      queue_.pop_front();
      ws_->text(true);
      auto [ec, n] = co_await ws_->async_write(net::buffer(*m.frame), tuple_token);
      if (ec) {
        queue_.push_front(std::move(m));
        if (!closed_ && !dropped_) {
          dropped_ = true;
          drop_reason_ = "the connection to " + shown_ + " failed: " + ec.message();
        }
        beast::error_code ignored;
        beast::get_lowest_layer(*ws_).socket().close(ignored);  // ends the read too
        break;
      }
      unanswered_.push_back(std::move(m));
      if (unanswered_.size() > o_.queue_limit) unanswered_.pop_front();
    }
  }

  net::awaitable<void> read_loop(std::shared_ptr<link> /*keep alive*/, std::shared_ptr<ws_type> ws,
                                 std::uint64_t generation) {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws->async_read(buffer, tuple_token);
      if (ec) {
        if (generation == generation_ && !closed_ && !dropped_) {
          dropped_ = true;
          if (ec == websocket::error::closed)
            drop_reason_ = "the agent at " + shown_ + " closed the connection (" +
                           std::to_string(ws->reason().code) +
                           (ws->reason().reason.empty()
                                ? std::string()
                                : " " + clip(std::string(ws->reason().reason.data(),
                                                         ws->reason().reason.size()))) +
                           ")";
          else
            drop_reason_ = "the connection to " + shown_ + " dropped: " + ec.message();
          wake_.cancel();
        }
        co_return;
      }
      if (generation == generation_ && !closed_)
        on_frame(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
    }
  }

  // What the peer sent: an answer (an event for the session), an error frame, or garbage.
  void on_frame(const std::string& text) {
    json f = json::parse(text, nullptr, false);
    if (f.is_discarded() || !f.is_object() || !f.contains("action") || !f["action"].is_string()) {
      report("the agent at " + shown_ + " sent a frame that is not {\"action\",\"message\"} "
             "JSON; is it a Parley or BAF agent?",
             last_unanswered());
      return;
    }
    const std::string action = f["action"].get<std::string>();
    const json message = f.value("message", json());
    if (action == "error") {
      report("the agent at " + shown_ + " answered with an error: " +
                 clip(message.is_string() ? message.get<std::string>() : message.dump()),
             last_unanswered());
      return;
    }
    if (!action.starts_with("agent_reply_")) {
      PARLEY_LOG(debug, "agent link -> " << shown_ << ": ignored action " << clip(action, 60));
      return;
    }
    if (f.value("history", false) == true) return;  // a replay of older chat
    lineage l;
    if (lineage::present_in(f)) {
      std::string why;
      auto parsed = lineage::from_json(f, &why);
      if (!parsed) {
        report("the agent at " + shown_ + " sent an answer with bad lineage (" + why +
                   "); it was dropped",
               last_unanswered());
        return;
      }
      l = std::move(*parsed);
    } else if (!unanswered_.empty()) {
      // A BAF peer sends no lineage: the answer is taken as caused by the last message sent.
      const auto& cause = unanswered_.back().l;
      l.id = random_id();
      l.causation_id = cause.id;
      l.correlation_id = cause.correlation_id;
      l.depth = cause.depth + 1;
    } else {
      l.id = random_id();
      l.correlation_id = l.id;
      l.depth = 1;
    }
    if (!l.causation_id.empty())
      std::erase_if(unanswered_, [&](const outgoing& m) { return m.l.id == l.causation_id; });
    const bool textual = action == "agent_reply_str" || action == "agent_reply_markdown" ||
                         action == "agent_reply_html";
    event e = textual && message.is_string() ? event::text(message.get<std::string>(), false)
              : message.is_object()          ? event::json_payload(message, false)
                                             : event::json_payload({{"action", action}, {"message", message}}, false);
    e.from_agent(url_, std::move(l), "websocket", /*inbound=*/false);
    auto r = agent_.receive_event(session_id_, std::move(e));
    if (!r) PARLEY_LOG(info, "agent link " << session_tag(session_id_) << ": answer from " << shown_
                                           << " not delivered: " << r.error);
  }

  agent& agent_;
  const std::string session_id_;
  const std::string url_;
  const std::string shown_;  // the URL without user info or query (a token may be there)
  const agent_url u_;
  const websocket_agent_options o_;
  ssl::context& ssl_;
  strand_type strand_;
  net::steady_timer wake_;   // wakes the writer: a message was queued, or the link ends
  net::steady_timer pause_;  // backoff between connection attempts
  const std::string remote_session_ = random_id();  // our session at the peer, kept across reconnects

  // Strand.
  std::shared_ptr<ws_type> ws_;
  std::deque<outgoing> queue_;       // not written yet
  std::deque<outgoing> unanswered_;  // written, no answer yet (sent again after a reconnect)
  std::uint64_t generation_ = 0;     // of the connection; a reader of an older one is ignored
  std::string drop_reason_;
  bool running_ = false;  // a run() is connecting or connected
  bool dropped_ = false;  // the current connection failed
  bool closed_ = false;   // the session forgot this link
};

}  // namespace

std::shared_ptr<ws_agent_link> make_ws_agent_link(agent& a, std::string session_id,
                                                  std::string url, agent_url parsed,
                                                  const websocket_agent_options& o,
                                                  ssl::context& ctx) {
  if (parsed.tls)
    return std::make_shared<link<beast::ssl_stream<beast::tcp_stream>>>(
        a, std::move(session_id), std::move(url), std::move(parsed), o, ctx);
  return std::make_shared<link<beast::tcp_stream>>(a, std::move(session_id), std::move(url),
                                                   std::move(parsed), o, ctx);
}

}  // namespace parley::platforms::detail
