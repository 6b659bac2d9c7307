#include "ws_upstream.hpp"

#include <parley/log.hpp>

namespace parley::platforms::detail {

namespace {
// What send() queues before it asks the client connection to stop reading.
constexpr std::size_t queue_limit = 256 * 1024;
}  // namespace

bool split_address(const std::string& a, std::string& host, std::string& port) {
  const auto colon = a.rfind(':');
  if (colon == std::string::npos || colon + 1 == a.size()) return false;
  host = a.substr(0, colon);
  port = a.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !host.empty() && port != "0";
}

ws_upstream::ws_upstream(net::any_io_executor strand, handlers h)
    : resolver_(strand), ws_(strand), h_(std::move(h)) {}

void ws_upstream::open(const std::string& address, std::string target,
                       std::vector<std::pair<std::string, std::string>> headers,
                       std::chrono::steady_clock::duration handshake_timeout,
                       std::chrono::steady_clock::duration idle_timeout, std::size_t max_frame) {
  address_ = address;
  target_ = std::move(target);
  headers_ = std::move(headers);
  handshake_timeout_ = handshake_timeout;
  idle_timeout_ = idle_timeout;
  ws_.read_message_max(max_frame);
  if (!split_address(address, host_, port_))
    return fail_open(503, "its address '" + address + "' has no port");
  beast::get_lowest_layer(ws_).expires_after(handshake_timeout_);
  resolver_.async_resolve(host_, port_,
                          beast::bind_front_handler(&ws_upstream::on_resolve, shared_from_this()));
}

void ws_upstream::on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
  if (done_) return;
  if (ec) return fail_open(503, "cannot resolve " + address_ + ": " + ec.message());
  beast::get_lowest_layer(ws_).async_connect(
      results, beast::bind_front_handler(&ws_upstream::on_connect, shared_from_this()));
}

void ws_upstream::on_connect(beast::error_code ec, tcp::endpoint) {
  if (done_) return;
  if (ec) return fail_open(503, "cannot connect to " + address_ + ": " + ec.message());
  beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
  ws_.set_option(websocket::stream_base::decorator([headers = headers_](websocket::request_type& req) {
    req.set(http::field::user_agent, "parley-forward");
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  ws_.async_handshake(answer_, host_ + ":" + port_, target_,
                      beast::bind_front_handler(&ws_upstream::on_handshake, shared_from_this()));
}

void ws_upstream::on_handshake(beast::error_code ec) {
  if (done_) return;
  if (ec) {
    // The owner answered with a refusal (401, 503 ...): the client gets the same.
    if (ec == websocket::error::upgrade_declined && answer_.result_int() >= 400)
      return fail_open(answer_.result_int(), answer_.body());
    return fail_open(503, "the handshake with " + address_ + " failed: " + ec.message());
  }
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = handshake_timeout_;
  t.idle_timeout = idle_timeout_;
  t.keep_alive_pings = true;
  ws_.set_option(t);
  ws_.auto_fragment(false);
  open_ = true;
  if (auto opened = std::move(h_.opened)) opened(std::nullopt);
  do_read();
  if (!queue_.empty() && !writing_) do_write();
}

void ws_upstream::fail_open(unsigned status, std::string why) {
  if (done_) return;
  done_ = true;
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  auto opened = std::move(h_.opened);
  h_ = {};
  if (opened) opened(refusal{status, std::move(why)});
}

void ws_upstream::do_read() {
  ws_.async_read(buffer_, beast::bind_front_handler(&ws_upstream::on_read, shared_from_this()));
}

void ws_upstream::on_read(beast::error_code ec, std::size_t) {
  if (done_) return;
  if (ec) {
    if (ec == websocket::error::closed) return finish(ws_.reason());
    return finish(websocket::close_reason(websocket::close_code::service_restart,
                                          "the node serving this session went away (" +
                                              ec.message() + "); reconnect"));
  }
  std::string frame = beast::buffers_to_string(buffer_.cdata());
  buffer_.consume(buffer_.size());
  if (h_.frame) h_.frame(std::move(frame));
  if (!done_) do_read();
}

bool ws_upstream::send(std::string frame) {
  if (done_ || closing_) return true;
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (open_ && !writing_) do_write();
  return queued_bytes_ < queue_limit;
}

void ws_upstream::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(net::buffer(queue_.front()),
                  beast::bind_front_handler(&ws_upstream::on_write, shared_from_this()));
}

void ws_upstream::on_write(beast::error_code ec, std::size_t) {
  writing_ = false;
  if (done_) return;
  if (ec)
    return finish(websocket::close_reason(websocket::close_code::service_restart,
                                          "the node serving this session went away (" +
                                              ec.message() + "); reconnect"));
  const bool was_full = queued_bytes_ >= queue_limit;
  queued_bytes_ -= queue_.front().size();
  queue_.pop_front();
  if (!queue_.empty()) return do_write();
  if (was_full && h_.drained) h_.drained();
}

void ws_upstream::finish(websocket::close_reason why) {
  if (done_) return;
  done_ = true;
  auto closed = std::move(h_.closed);
  h_ = {};
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  if (closed) closed(std::move(why));
}

void ws_upstream::close(websocket::close_reason why) {
  if (done_ || closing_) return;
  h_ = {};  // the client connection is going: nothing more is called
  if (!open_) {
    done_ = true;
    resolver_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    return;
  }
  closing_ = true;
  // Bounded: an owner that does not answer the close frame is cut off.
  beast::get_lowest_layer(ws_).expires_after(handshake_timeout_);
  // Beast allows one close beside the read and the write in flight.
  ws_.async_close(why, [self = shared_from_this()](beast::error_code) {
    self->done_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
  });
}

}  // namespace parley::platforms::detail
