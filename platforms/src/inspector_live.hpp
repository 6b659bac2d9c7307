#pragma once
// One /inspect/live WebSocket (plain or TLS), on its own strand: the inspector's watcher pushes
// frames from its thread; they are written one at a time from a bounded queue. What the
// browser sends is read and dropped (reading keeps the pings and the close working). Included
// by http_session.hpp only.
#include <deque>
#include <iterator>
#include <memory>
#include <string>

#include <boost/asio/post.hpp>

#include <parley/log.hpp>

#include "beast.hpp"
#include "inspector_service.hpp"
#include "ws_hub.hpp"

namespace parley::platforms::detail {

template <class Stream>
class inspector_live final : public ws_connection_base,
                             public live_client,
                             public std::enable_shared_from_this<inspector_live<Stream>> {
 public:
  /// Takes a reserved slot of `hub` (released when the connection is gone).
  inspector_live(Stream&& stream, std::shared_ptr<ws_hub> hub, follow_spec spec)
      : ws_(std::move(stream)), hub_(std::move(hub)), spec_(spec) {}
  ~inspector_live() override {
    hub_->remove(registration_, session_id());
    hub_->release();
  }

  /// Strand: accepts the upgrade, then follows.
  void run(request req) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = hub_->opts.handshake_timeout;
    t.idle_timeout = hub_->opts.idle_timeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "parley"); }));
    ws_.async_accept(req, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail(ec, "accept");
      self->accepted_ = true;
      // Shut down while the handshake ran: close now.
      if (self->closing_) return self->do_close();
      // Registered with the hub so that the platform's stop closes it like the others.
      self->registration_ = self->hub_->add(self->session_id(), self->weak_from_this());
      self->hub_->inspector->follow(self->weak_from_this(), self->spec_);
      self->do_read();
    });
  }

  void push(std::shared_ptr<const std::string> frame) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), frame = std::move(frame)] {
      if (self->closing_) return;
      if (self->queue_.size() >= max_queued) {
        // A page that does not read its socket: close it rather than hold frames for it.
        return self->close(websocket::close_code::policy_error, "too slow: read the frames");
      }
      self->queue_.push_back(frame);
      if (!self->writing_) self->do_write();
    });
  }

  void send(std::shared_ptr<const std::string> frame, std::int64_t /*seq*/) override {
    push(std::move(frame));
  }

  void shutdown() override {
    net::post(ws_.get_executor(), [self = this->shared_from_this()] {
      self->close(websocket::close_code::going_away, "server shutting down");
    });
  }

  // Inspector sockets follow no session of their own: nothing moves.
  void moved() override {}

  // The hub's key for inspector sockets: no client's session id is empty (identify()).
  const std::string& session_id() const override {
    static const std::string none;
    return none;
  }

 private:
  static constexpr std::size_t max_queued = 256;

  void fail(beast::error_code ec, const char* what) {
    if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
        ec == beast::error::timeout || ec == net::error::eof || ec == net::error::connection_reset)
      return;
    PARLEY_LOG(debug, "inspector live: " << what << ": " << ec.message());
  }

  void do_read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail(ec, "read");
      self->buffer_.consume(self->buffer_.size());
      self->do_read();
    });
  }

  void do_write() {
    if (queue_.empty() || closing_) {
      writing_ = false;
      if (closing_ && !closed_) do_close();
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      self->queue_.pop_front();
                      if (ec) {
                        // The socket is gone: nothing more is queued or written.
                        self->writing_ = false;
                        self->closing_ = self->closed_ = true;
                        self->queue_.clear();
                        return self->fail(ec, "write");
                      }
                      self->do_write();
                    });
  }

  void close(websocket::close_code code, const char* why) {
    if (closing_) return;
    closing_ = true;
    close_reason_ = {code, why};
    // The frame being written stays until its write ends (its buffer is in use); the rest go.
    queue_.erase(writing_ ? std::next(queue_.begin()) : queue_.begin(), queue_.end());
    if (!writing_ && accepted_) do_close();
  }

  void do_close() {
    closed_ = true;
    ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code) {});
  }

  websocket::stream<Stream> ws_;
  std::shared_ptr<ws_hub> hub_;
  follow_spec spec_;
  std::uint64_t registration_ = 0;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool accepted_ = false, writing_ = false, closing_ = false, closed_ = false;
  websocket::close_reason close_reason_;
};

}  // namespace parley::platforms::detail
