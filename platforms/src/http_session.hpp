#pragma once
// One HTTP connection on the WebSocket platform's port (TLS first when configured), on its own
// strand: it serves the page, /health and the A2A card, answers A2A JSON-RPC (a whole JSON
// answer, or an SSE stream of chunks), or hands the stream to a ws_connection. One request at
// a time; every read and write has a timeout. Included by ws_server.cpp only.
#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/post.hpp>

#include "a2a_relay.hpp"
#include "a2a_server.hpp"
#include "beast.hpp"
#include "inspector_live.hpp"
#include "inspector_service.hpp"
#include "ws_connection.hpp"
#include "ws_http.hpp"
#include "ws_upstream.hpp"

#include <parley/agent.hpp>
#include <parley/errors.hpp>
#include <parley/log.hpp>

namespace parley::platforms::detail {

inline void http_fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == beast::error::timeout ||
      ec == http::error::end_of_stream || ec == net::ssl::error::stream_truncated ||
      ec == net::error::eof || ec == net::error::connection_reset ||
      ec == net::error::broken_pipe)
    PARLEY_LOG(debug, "http: " << what << ": " << ec.message());
  else
    PARLEY_LOG(info, "http: " << what << ": " << ec.message());
}

template <class Stream>
constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;

template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
 public:
  http_session(Stream&& stream, std::shared_ptr<ws_hub> hub)
      : stream_(std::move(stream)), hub_(std::move(hub)), keep_alive_timer_(stream_.get_executor()) {}

  void run() {
    // The whole handshake (TLS, request) must fit in the handshake timeout.
    beast::get_lowest_layer(stream_).expires_after(hub_->opts.handshake_timeout);
    if constexpr (is_tls<Stream>) {
      stream_.async_handshake(ssl::stream_base::server,
                              beast::bind_front_handler(&http_session::on_tls, this->shared_from_this()));
    } else {
      do_read();
    }
  }

 private:
  using request_header = http::request_header<>;

  // The A2A server's view of the request being answered: posts to our strand.
  class a2a_exchange final : public a2a::exchange {
   public:
    explicit a2a_exchange(std::shared_ptr<http_session> s) : s_(std::move(s)) {}
    net::any_io_executor executor() override { return s_->stream_.get_executor(); }
    void respond(std::string body) override {
      net::post(s_->stream_.get_executor(), [s = s_, body = std::move(body)]() mutable {
        s->write(s->json_response(http::status::ok, std::move(body)));
      });
    }
    void event(std::string body, bool last) override {
      net::post(s_->stream_.get_executor(), [s = s_, body = std::move(body), last]() mutable {
        s->sse(std::move(body), last);
      });
    }

   private:
    std::shared_ptr<http_session> s_;
  };

  void on_tls(beast::error_code ec) {
    if (ec) return http_fail(ec, "tls handshake");
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    // Narrowed in on_header once the target is known; a Content-Length over this fails there.
    parser_->body_limit(std::max<std::size_t>(hub_->opts.a2a.max_body, 16 * 1024));
    beast::get_lowest_layer(stream_).expires_after(hub_->opts.handshake_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&http_session::on_header, this->shared_from_this()));
  }

  bool is_a2a_post(const request_header& h) const {
    return hub_->a2a && h.method() == http::verb::post && path_of(h.target()) == hub_->opts.a2a.path;
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit) return too_large();
    if (ec == http::error::end_of_stream) return do_eof();
    if (ec) return http_fail(ec, "read");
    // A2A requests may be larger than the page's (platforms.a2a.max_body).
    parser_->body_limit(is_a2a_post(parser_->get().base()) ? hub_->opts.a2a.max_body : 16 * 1024);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
  }

  // The body is not read: answer and close.
  void too_large() {
    version_ = parser_->get().version();
    keep_alive_ = false;
    auto res = json_response(http::status::payload_too_large,
                               a2a::error_response(nullptr, {a2a::error_code::invalid_request,
                                                             "the request body is over " +
                                                                 std::to_string(hub_->opts.a2a.max_body) +
                                                                 " bytes (platforms.a2a.max_body)"})
                                   .dump());
    write(std::move(res));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit) return too_large();
    if (ec == http::error::end_of_stream) return do_eof();
    if (ec) return http_fail(ec, "read");
    request req = parser_->release();
    if (hub_->inspector && is_inspector_path(path_of(req.target()))) {
      if (websocket::is_upgrade(req)) return inspector_upgrade(std::move(req));
      return inspector_request(std::move(req));
    }
    if (websocket::is_upgrade(req)) return upgrade(std::move(req));
    if (is_a2a_post(req.base())) return a2a_request(std::move(req));
    write(handle_http(req, *hub_));
  }

  void a2a_request(request req) {
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    std::string why;
    if (hub_->stopping.load()) {
      auto res = text_response(http::status::service_unavailable, version_,
                               "the server is shutting down; try again later", false);
      return write(std::move(res));
    }
    if (!token_ok(req, hub_->opts.token, why)) {
      auto res = json_response(http::status::unauthorized,
                               a2a::error_response(nullptr, {a2a::error_code::invalid_request, why}).dump());
      res.set(http::field::www_authenticate, "Bearer");
      return write(std::move(res));
    }
    // Several nodes: a request about a context another node owns (a message, or a task, whose
    // id names its context) is relayed there (over plain TCP, as WebSocket clients are; once:
    // the owner never relays a forwarded request).
    if constexpr (!is_tls<Stream>) {
      if (hub_->opts.forward && req.find(forwarded_header) == req.end()) {
        if (auto m = a2a_relay_target(req.body()); !m.context.empty()) {
          auto sp = std::make_shared<request>(std::move(req));
          hub_->owner->async_claim(m.context, [self = this->shared_from_this(), sp, id = std::move(m.id)](
                                                  std::exception_ptr e) {
            net::post(self->stream_.get_executor(),
                      [self, sp, id, e] { self->a2a_claimed(std::move(*sp), id, e); });
          });
          return;
        }
      }
    }
    a2a_handle(std::move(req));
  }

  void a2a_claimed(request req, const json& id, std::exception_ptr claim) {
    if (claim) {
      try {
        std::rethrow_exception(claim);
      } catch (const not_owner_error& e) {
        if (!e.address.empty() && e.address != hub_->advertised) return a2a_relay_to(std::move(req), id, e.address);
      } catch (...) {
      }
    }
    // Ours (or no owner to relay to): served here; a claim that failed fails the turn, naming why.
    a2a_handle(std::move(req));
  }

  void a2a_relay_to(request req, const json& id, const std::string& address) {
    PARLEY_LOG(debug, "a2a: a message relayed to its context's owner at " << address);
    hub_->forwarded.fetch_add(1);
    keep_alive_ = false;
    http::request<http::string_body> fwd{http::verb::post, req.target(), 11};
    fwd.set(http::field::host, address);
    fwd.set(http::field::user_agent, "parley-forward");
    for (auto field : {http::field::content_type, http::field::authorization})
      if (auto h = req.find(field); h != req.end()) fwd.set(field, h->value());
    if (auto h = req.find("A2A-Version"); h != req.end()) fwd.set("A2A-Version", h->value());
    fwd.set(forwarded_header, hub_->advertised);
    fwd.set(http::field::connection, "close");
    fwd.body() = std::move(req.body());
    fwd.prepare_payload();
    beast::get_lowest_layer(stream_).expires_never();  // the owner's answer may stream for long
    auto self = this->shared_from_this();
    relay_ = std::make_shared<a2a_relay>(
        stream_.get_executor(),
        a2a_relay::handlers{
            [self](std::string_view bytes, std::function<void(bool)> next) {
              auto copy = std::make_shared<std::string>(bytes);
              net::async_write(self->stream_, net::buffer(*copy),
                               [copy, next = std::move(next)](beast::error_code ec, std::size_t) { next(!ec); });
            },
            [self, id](std::string why) {
              self->relay_.reset();
              auto res = self->json_response(http::status::service_unavailable,
                                             a2a::error_response(id, {a2a::error_code::internal_error, why + "; try again"}).dump());
              res.set(http::field::retry_after, "1");
              self->write(std::move(res));
            },
            [self] {
              self->relay_.reset();
              self->do_eof();
            }});
    relay_->start(address, std::move(fwd), hub_->opts.handshake_timeout);
  }

  void a2a_handle(request req) {
    a2a::rpc_request r;
    if (auto h = req.find("A2A-Version"); h != req.end()) r.version = std::string(h->value());
    if (auto h = req.find(http::field::content_type); h != req.end())
      r.content_type = std::string(h->value());
    r.body = std::move(req.body());
    hub_->a2a->handle(r, std::make_shared<a2a_exchange>(this->shared_from_this()));
  }

  response json_response(http::status status, std::string body) {
    response res{status, version_};
    res.set(http::field::server, "parley");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive_);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  // One SSE event as an HTTP chunk; the first sends the header, the last the final chunk.
  void sse(std::string body, bool last) {
    if (sse_done_) return;
    if (!sse_started_) {
      sse_started_ = true;
      std::string head = "HTTP/1.1 200 OK\r\nServer: parley\r\nContent-Type: text/event-stream\r\n"
                         "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                         "Transfer-Encoding: chunked\r\n";
      head += keep_alive_ ? "\r\n" : "Connection: close\r\n\r\n";
      sse_out_.push_back(std::move(head));
      arm_keep_alive();
    }
    const std::string data = "data: " + body + "\n\n";
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    sse_out_.push_back(size + data + "\r\n");
    if (last) {
      sse_out_.push_back("0\r\n\r\n");
      sse_done_ = true;
      keep_alive_timer_.cancel();
    }
    if (!sse_writing_) sse_write();
  }

  // A turn may run long: a comment every 15 s keeps proxies from closing a quiet stream (SSE
  // clients ignore lines starting with ':'), and finds a client that went.
  void arm_keep_alive() {
    keep_alive_timer_.expires_after(std::chrono::seconds(15));
    keep_alive_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || !self->sse_started_ || self->sse_done_) return;
      self->sse_out_.push_back("e\r\n: keep-alive\n\n\r\n");
      if (!self->sse_writing_) self->sse_write();
      self->arm_keep_alive();
    });
  }

  void sse_write() {
    if (sse_out_.empty()) {
      sse_writing_ = false;
      if (sse_done_) {
        sse_started_ = sse_done_ = false;
        if (!keep_alive_ || hub_->stopping.load()) return do_eof();
        do_read();
      }
      return;
    }
    sse_writing_ = true;
    beast::get_lowest_layer(stream_).expires_after(hub_->opts.send_timeout);
    net::async_write(stream_, net::buffer(sse_out_.front()),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) {
                         // The client went: later events are dropped (sse_done_).
                         self->sse_out_.clear();
                         self->sse_done_ = true;
                         self->keep_alive_timer_.cancel();
                         return http_fail(ec, "sse write");
                       }
                       self->sse_out_.pop_front();
                       self->sse_write();
                     });
  }

  // GET /inspect...: the answer comes from a query thread, posted back to our strand; no other
  // request is read meanwhile.
  void inspector_request(request req) {
    hub_->inspector->handle(req, [self = this->shared_from_this()](response res) {
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
    });
  }

  void inspector_upgrade(request req) {
    follow_spec spec;
    auto refusal = hub_->inspector->check_live(req, spec);
    if (!refusal && path_of(req.target()) != "/inspect/live")
      refusal = inspector_error(http::status::not_found, req.version(), false,
                                "the inspector's WebSocket is /inspect/live");
    if (!refusal && (hub_->stopping.load() || !hub_->try_reserve()))
      refusal = inspector_error(http::status::service_unavailable, req.version(), false,
                                "too many connections or shutting down; try again later");
    if (refusal) {
      ++hub_->rejected;
      return write(std::move(*refusal));
    }
    // The slot reserved above now belongs to the connection.
    std::make_shared<inspector_live<Stream>>(std::move(stream_), hub_, spec)->run(std::move(req));
  }

  void upgrade(request req) {
    std::string why;
    if (!hub_->owner) {
      // parley-inspect serve: no agent to talk to.
      return write(text_response(http::status::not_found, req.version(),
                                 "no agent here: this server only serves the inspector at /inspect",
                                 false));
    }
    const auto status = admit(req, *hub_, why);
    if (status != http::status::switching_protocols) {
      ++hub_->rejected;
      PARLEY_LOG(info, "websocket handshake refused (" << static_cast<int>(status) << "): " << why);
      auto res = text_response(status, req.version(), why, false);
      if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
      return write(std::move(res));
    }
    client_identity who;
    try {
      who = identify(req);
    } catch (const std::exception& ex) {
      hub_->release();
      ++hub_->rejected;
      PARLEY_LOG(error, "websocket handshake refused (500): " << ex.what());
      return write(text_response(http::status::internal_server_error, req.version(),
                                 "cannot make a session id; try again later", false));
    }
    // The slot reserved by admit() now belongs to the connection.
    auto conn = std::make_shared<ws_connection<Stream>>(std::move(stream_), hub_, std::move(who));
    conn->run(std::move(req));
  }

  void write(response res) {
    auto sp = std::make_shared<response>(std::move(res));
    beast::get_lowest_layer(stream_).expires_after(hub_->opts.handshake_timeout);
    http::async_write(stream_, *sp,
                      [self = this->shared_from_this(), sp](beast::error_code ec, std::size_t) {
                        if (ec) return http_fail(ec, "write");
                        if (!sp->keep_alive() || self->hub_->stopping.load()) return self->do_eof();
                        self->do_read();
                      });
  }

  void do_eof() {
    if constexpr (is_tls<Stream>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      // A lingering close: what the client still sends (the rest of a refused body) is read
      // and dropped until it closes its side, for 2 s at most. Closed with unread data, the
      // socket would reset the connection, and the client could lose the answer (a 413) before
      // reading it.
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      drain(std::make_shared<std::array<char, 8192>>());
    }
  }

  void drain(std::shared_ptr<std::array<char, 8192>> scratch) {
    stream_.async_read_some(net::buffer(*scratch), [self = this->shared_from_this(), scratch](
                                                       beast::error_code ec, std::size_t) {
      if (!ec) self->drain(scratch);
    });
  }

  Stream stream_;
  std::shared_ptr<ws_hub> hub_;
  std::shared_ptr<a2a_relay> relay_;  // while a request is relayed to its context's owner
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The A2A request being answered.
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::deque<std::string> sse_out_;
  bool sse_started_ = false, sse_writing_ = false, sse_done_ = false;
  net::steady_timer keep_alive_timer_;
};

}  // namespace parley::platforms::detail
