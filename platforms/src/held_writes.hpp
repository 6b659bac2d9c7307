#pragma once
// A stream layer under Beast's WebSocket stream that can hold writes back: while holding, what
// Beast writes (a whole frame, or a pong) is copied and reported written at once; the next
// write made without holding sends everything held with its own bytes, in one send. The frames
// of one turn then cost one system call, leave in one TCP segment (one TLS record), and wake
// the client once. Beast writes one frame at a time, so the layer never sees two writes at
// once. It also notes when the socket last took bytes, so a connection can tell a reader that
// stopped from one that is slow. Private to the platforms library.
#include <string>
#include <utility>

#include "beast.hpp"

namespace parley::platforms::detail {

template <class Next>
class held_writes {
 public:
  using executor_type = typename Next::executor_type;

  explicit held_writes(Next&& next) : next_(std::move(next)) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  Next& next_layer() noexcept { return next_; }
  const Next& next_layer() const noexcept { return next_; }

  /// On: writes are held until one is made with it off, or until `max_held` bytes are held.
  /// The caller must make that write (or close, which Beast writes): held bytes are sent by
  /// nothing else.
  void hold(bool on) noexcept { hold_ = on; }

  /// When the layer below last accepted bytes (a write, or a part of one, completed); the
  /// epoch before the first. Read on the stream's strand.
  clock::time_point last_progress() const noexcept { return last_progress_; }

  template <class MutableBuffers, class ReadHandler>
  auto async_read_some(const MutableBuffers& buffers, ReadHandler&& handler) {
    return next_.async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  template <class ConstBuffers, class WriteHandler>
  auto async_write_some(const ConstBuffers& buffers, WriteHandler&& handler) {
    return net::async_initiate<WriteHandler, void(beast::error_code, std::size_t)>(
        [this](auto h, const ConstBuffers& b) { write_some(std::move(h), b); }, handler, buffers);
  }

 private:
  template <class Handler, class ConstBuffers>
  void write_some(Handler h, const ConstBuffers& b) {
    const std::size_t n = net::buffer_size(b);
    const bool hold = hold_ && held_.size() + n <= max_held;
    if (held_.empty() && !hold) {
      // Beast writes a frame with as many of these as the socket needs: each part is progress.
      const auto ex = net::get_associated_executor(h, next_.get_executor());
      return next_.async_write_some(
          b, net::bind_executor(ex, [this, h = std::move(h)](beast::error_code ec,
                                                             std::size_t k) mutable {
            if (k) last_progress_ = clock::now();
            std::move(h)(ec, k);
          }));
    }
    const std::size_t at = held_.size();
    held_.resize(at + n);
    net::buffer_copy(net::buffer(held_.data() + at, n), b);
    if (hold) {
      net::post(next_.get_executor(), beast::bind_front_handler(std::move(h), beast::error_code{}, n));
      return;
    }
    sending_.swap(held_);
    held_.clear();
    send_held(std::move(h), n, 0);
  }

  // Sends sending_ from `at`, one write_some at a time (each part is progress), then reports
  // the caller's `n` bytes written.
  template <class Handler>
  void send_held(Handler h, std::size_t n, std::size_t at) {
    const auto ex = net::get_associated_executor(h, next_.get_executor());
    next_.async_write_some(
        net::buffer(sending_.data() + at, sending_.size() - at),
        net::bind_executor(ex, [this, h = std::move(h), n, at](beast::error_code ec,
                                                               std::size_t k) mutable {
          if (k) last_progress_ = clock::now();
          if (!ec && at + k < sending_.size()) return send_held(std::move(h), n, at + k);
          sending_.clear();
          if (sending_.capacity() > 64 * 1024) std::string().swap(sending_);
          std::move(h)(ec, ec ? 0 : n);
        }));
  }

  static constexpr std::size_t max_held = 64 * 1024;

  Next next_;
  std::string held_;     // bytes reported written, not yet sent
  std::string sending_;  // the send in flight
  bool hold_ = false;
  clock::time_point last_progress_{};
};

// Beast closes a WebSocket by tearing down its next layer: ours is the one below.
template <class Next>
void teardown(beast::role_type role, held_writes<Next>& s, beast::error_code& ec) {
  using beast::websocket::teardown;
  teardown(role, s.next_layer(), ec);
}

template <class Next, class TeardownHandler>
void async_teardown(beast::role_type role, held_writes<Next>& s, TeardownHandler&& handler) {
  using beast::websocket::async_teardown;
  async_teardown(role, s.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace parley::platforms::detail
