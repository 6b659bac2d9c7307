#include "scripted_server.hpp"

#include <deque>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using parley::json;

exchange exchange::json_body(const json& j, unsigned status) {
  exchange e;
  e.status = status;
  e.body = j.dump();
  return e;
}
exchange exchange::text(std::string body, unsigned status) {
  exchange e;
  e.status = status;
  e.body = std::move(body);
  return e;
}
exchange exchange::sse(std::vector<std::string> events) {
  exchange e;
  e.what = kind::sse;
  e.content_type = "text/event-stream";
  e.events = std::move(events);
  return e;
}
exchange exchange::hang() {
  exchange e;
  e.what = kind::hang;
  return e;
}
exchange exchange::close_after(std::vector<std::string> events) {
  exchange e = sse(std::move(events));
  e.what = kind::close_mid_stream;
  return e;
}

exchange exchange::held(const json& j) {
  exchange e = json_body(j);
  e.what = kind::held;
  return e;
}

json completion(const std::string& text) {
  return {{"id", "chatcmpl-1"},
          {"object", "chat.completion"},
          {"model", "scripted-model"},
          {"choices", json::array({{{"index", 0},
                                    {"finish_reason", "stop"},
                                    {"message", {{"role", "assistant"}, {"content", text}}}}})},
          {"usage", {{"prompt_tokens", 7}, {"completion_tokens", 3}, {"total_tokens", 10}}}};
}

struct scripted_server::impl : std::enable_shared_from_this<impl> {
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  mutable std::mutex m;
  std::deque<exchange> script;
  std::vector<received> got;
  int accepted = 0;
  unsigned short port = 0;
  bool released = false;                  // io thread
  bool keep = true;                       // guarded by m
  std::size_t request_total = 0;          // guarded by m
  std::function<exchange(const received&)> responder;  // set before the first request
  std::vector<net::steady_timer*> holds;  // io thread

  std::optional<ssl::context> tls;

  net::awaitable<void> serve(tcp::socket socket) {
    if (!tls) {
      co_await serve_on(socket);
      co_return;
    }
    ssl::stream<tcp::socket> s(std::move(socket), *tls);
    auto [ec] =
        co_await s.async_handshake(ssl::stream_base::server, net::as_tuple(net::use_awaitable));
    if (!ec) co_await serve_on(s);
  }

  template <class Stream>
  net::awaitable<void> serve_on(Stream& socket) {
    beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> req;
      auto [ec, n] =
          co_await http::async_read(socket, buffer, req, net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      exchange e = exchange::text(R"({"error":{"message":"no scripted exchange left"}})", 500);
      received r{std::string(req.target()), std::string(req[http::field::authorization]), req.body()};
      bool scripted = false;
      {
        std::lock_guard l(m);
        ++request_total;
        if (keep) got.push_back(r);
        if (!script.empty()) {
          e = std::move(script.front());
          script.pop_front();
          scripted = true;
        }
      }
      if (!scripted && responder) e = responder(r);
      if (e.delay.count() > 0) {
        net::steady_timer t(socket.get_executor(), e.delay);
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
      }
      if (e.what == exchange::kind::hang) {
        net::steady_timer t(socket.get_executor(), std::chrono::hours(1));
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        co_return;
      }
      if (e.what == exchange::kind::held && !released) {
        net::steady_timer t(socket.get_executor(), std::chrono::hours(1));
        holds.push_back(&t);
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        std::erase(holds, &t);
      }
      if (e.what == exchange::kind::held) e.what = exchange::kind::respond;
      std::string head = "HTTP/1.1 " + std::to_string(e.status) +
                         " Scripted\r\nContent-Type: " + e.content_type + "\r\n";
      for (auto& [k, v] : e.headers) head += k + ": " + v + "\r\n";
      if (e.what == exchange::kind::respond) {
        head += "Content-Length: " + std::to_string(e.body.size()) + "\r\n\r\n" + e.body;
        auto [wec, wn] =
            co_await net::async_write(socket, net::buffer(head), net::as_tuple(net::use_awaitable));
        if (wec) co_return;
        if (e.close_after_answer) {
          boost::system::error_code ignored;
          beast::get_lowest_layer(socket).close(ignored);
          co_return;
        }
        continue;
      }
      head += "Transfer-Encoding: chunked\r\n\r\n";
      auto [hec, hn] =
          co_await net::async_write(socket, net::buffer(head), net::as_tuple(net::use_awaitable));
      if (hec) co_return;
      for (auto& ev : e.events) {
        std::string data = "data: " + ev + "\n\n";
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        std::string chunk = size + data + "\r\n";
        auto [cec, cn] = co_await net::async_write(socket, net::buffer(chunk),
                                                   net::as_tuple(net::use_awaitable));
        if (cec) co_return;
      }
      if (e.what == exchange::kind::close_mid_stream) {
        boost::system::error_code ignored;
        beast::get_lowest_layer(socket).shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(socket).close(ignored);
        co_return;
      }
      auto [lec, ln] = co_await net::async_write(socket, net::buffer(std::string("0\r\n\r\n")),
                                                 net::as_tuple(net::use_awaitable));
      if (lec) co_return;
    }
  }

  net::awaitable<void> accept_loop() {
    while (true) {
      auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      {
        std::lock_guard l(m);
        ++accepted;
      }
      net::co_spawn(io, serve(std::move(socket)), net::detached);
    }
  }
};

scripted_server::scripted_server(const std::string& cert, const std::string& key)
    : impl_(std::make_shared<impl>()) {
  if (!cert.empty()) {
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(cert);
    impl_->tls->use_private_key_file(key, ssl::context::pem);
  }
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  net::co_spawn(impl_->io, impl_->accept_loop(), net::detached);
  impl_->thread = std::thread([i = impl_] { i->io.run(); });
}

scripted_server::~scripted_server() {
  impl_->io.stop();
  impl_->thread.join();
}

void scripted_server::release() {
  net::post(impl_->io, [i = impl_] {
    i->released = true;
    for (auto* t : i->holds) t->cancel();
  });
}

void scripted_server::push(exchange e) {
  std::lock_guard l(impl_->m);
  impl_->script.push_back(std::move(e));
}
std::string scripted_server::base_url() const {
  return (impl_->tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(impl_->port) +
         "/v1";
}
int scripted_server::accepted() const {
  std::lock_guard l(impl_->m);
  return impl_->accepted;
}
std::vector<received> scripted_server::requests() const {
  std::lock_guard l(impl_->m);
  return impl_->got;
}
std::size_t scripted_server::request_count() const {
  std::lock_guard l(impl_->m);
  return impl_->request_total;
}
void scripted_server::respond_with(std::function<exchange(const received&)> fn) {
  impl_->responder = std::move(fn);
}
void scripted_server::keep_requests(bool keep) {
  std::lock_guard l(impl_->m);
  impl_->keep = keep;
}

}  // namespace test
