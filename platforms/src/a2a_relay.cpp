#include "a2a_relay.hpp"

#include "a2a_model.hpp"
#include "ws_upstream.hpp"

namespace parley::platforms::detail {

a2a_target a2a_relay_target(const std::string& body) {
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  const auto method = j.value("method", json()).is_string() ? j["method"].get<std::string>() : "";
  const auto params = j.value("params", json());
  if (!params.is_object()) return {};
  auto text = [](const json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string context;
  if (method == "SendMessage" || method == "SendStreamingMessage") {
    const auto m = params.value("message", json());
    if (!m.is_object()) return {};
    context = text(m, "contextId");
    if (context.empty()) context = a2a::context_of_task(text(m, "taskId"));
  } else if (method == "GetTask" || method == "CancelTask" || method == "SubscribeToTask") {
    context = a2a::context_of_task(text(params, "id"));
  }
  if (context.empty()) return {};
  return {std::move(context), j.value("id", json())};
}

a2a_relay::a2a_relay(net::any_io_executor strand, handlers h)
    : resolver_(strand), up_(strand), h_(std::move(h)) {}

void a2a_relay::start(const std::string& address, http::request<http::string_body> req,
                      std::chrono::steady_clock::duration timeout) {
  address_ = address;
  req_ = std::move(req);
  std::string host, port;
  if (!split_address(address, host, port)) return fail("its address '" + address + "' has no port");
  up_.expires_after(timeout);
  resolver_.async_resolve(host, port, [self = shared_from_this()](beast::error_code resolved,
                                                                  tcp::resolver::results_type results) {
    if (resolved) return self->fail("cannot resolve it: " + resolved.message());
    self->up_.async_connect(results, [self](beast::error_code connected, const tcp::endpoint&) {
      if (connected) return self->fail("cannot connect to it: " + connected.message());
      beast::error_code ignored;
      self->up_.socket().set_option(tcp::no_delay(true), ignored);
      http::async_write(self->up_, self->req_, [self](beast::error_code wrote, std::size_t) {
        if (wrote) return self->fail("cannot send it the request: " + wrote.message());
        self->up_.expires_never();  // the answer lasts as long as its task streams
        self->read();
      });
    });
  });
}

void a2a_relay::read() {
  up_.async_read_some(net::buffer(buf_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
    if (ec) {
      if (!self->answered_) return self->fail("it closed without answering: " + ec.message());
      beast::error_code ignored;
      self->up_.socket().close(ignored);
      if (auto done = std::exchange(self->h_.done, nullptr)) done();
      return;
    }
    self->answered_ = true;
    self->h_.data(std::string_view(self->buf_.data(), n), [self](bool go_on) {
      if (go_on) return self->read();
      beast::error_code ignored;
      self->up_.socket().close(ignored);  // the client went away
      if (auto done = std::exchange(self->h_.done, nullptr)) done();
    });
  });
}

void a2a_relay::fail(std::string why) {
  if (auto failed = std::exchange(h_.failed, nullptr)) failed("the node that owns this context (" + address_ + "): " + why);
}

}  // namespace parley::platforms::detail
