#include "a2a_http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "a2a_model.hpp"
#include "beast.hpp"
#include "ws_http.hpp"

namespace parley::platforms::detail::a2a {

namespace {

template <class Stream>
net::awaitable<http_answer> talk(Stream& stream, const url_parts& url, std::string body,
                                 clock::time_point deadline, std::size_t max,
                                 const std::function<void(std::string_view)>* on_sse, bool a2a) {
  http::request<http::string_body> req{body.empty() ? http::verb::get : http::verb::post,
                                       url.target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, a2a ? "parley-a2a" : "parley");
  if (a2a) req.set("A2A-Version", protocol_version);
  req.set(http::field::accept, on_sse ? "text/event-stream" : "application/json");
  if (!url.token.empty()) req.set(http::field::authorization, "Bearer " + url.token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_at(deadline);
  co_await http::async_write(stream, req, net::use_awaitable);

  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> p;
  p.body_limit(boost::none);
  p.header_limit(64 * 1024);
  tcp_layer.expires_at(deadline);
  co_await http::async_read_header(stream, buf, p, net::use_awaitable);
  http_answer a;
  a.status = p.get().result_int();
  a.content_type = std::string(p.get()[http::field::content_type]);
  const bool sse = on_sse && a.status == 200 && a.content_type.rfind("text/event-stream", 0) == 0;
  char chunk[16384];
  while (!p.is_done()) {
    p.get().body().data = chunk;
    p.get().body().size = sizeof chunk;
    tcp_layer.expires_at(deadline);
    auto [ec, n] = co_await http::async_read(stream, buf, p, net::as_tuple(net::use_awaitable));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) throw beast::system_error(ec);
    const std::size_t got = sizeof chunk - p.get().body().size;
    if (sse) {
      (*on_sse)(std::string_view(chunk, got));
    } else {
      a.body.append(chunk, got);
      if (a.body.size() > max)
        throw std::runtime_error("the answer is over " + std::to_string(max) +
                                 " bytes (platforms.a2a.max_response)");
    }
  }
  co_return a;
}

}  // namespace

std::string url_parts::origin() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port;
}

std::optional<url_parts> parse_url(std::string_view url, std::string* why) {
  url_parts u;
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    if (why) *why = "'" + std::string(url.substr(0, 64)) + "' is not an http:// or https:// URL";
    return std::nullopt;
  }
  rest = rest.substr(0, rest.find('#'));
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (target.front() == '?') target.insert(0, "/");
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string_view port = u.tls ? "443" : "80";
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      if (why) *why = "the URL's host is not closed with ']'";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) {
    if (why) *why = "the URL has no host, or a port that is not a number";
    return std::nullopt;
  }
  u.port = std::string(port);
  u.target = std::move(target);
  u.token = query_param(u.target, "token");
  return u;
}

url_parts card_location(const url_parts& base) {
  url_parts c = base;
  std::string path = base.target.substr(0, base.target.find('?'));
  c.target = path.substr(0, path.rfind('/') + 1) + std::string(card_path.substr(1));
  return c;
}

net::awaitable<http_answer> http_exchange(const url_parts& url, std::string body,
                                          clock::time_point deadline, std::size_t max,
                                          const std::function<void(std::string_view)>* on_sse,
                                          bool a2a) {
  auto ex = co_await net::this_coro::executor;
  tcp::resolver resolver(ex);
  const auto endpoints = co_await resolver.async_resolve(url.host, url.port, net::use_awaitable);
  if (!url.tls) {
    beast::tcp_stream stream(ex);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, net::use_awaitable);
    auto a = co_await talk(stream, url, std::move(body), deadline, max, on_sse, a2a);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return a;
  }
  static ssl::context ctx = [] {
    ssl::context c(ssl::context::tls_client);
    c.set_default_verify_paths();
    c.set_verify_mode(ssl::verify_peer);
    return c;
  }();
  beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
    throw std::runtime_error("cannot set the TLS server name");
  stream.set_verify_callback(ssl::host_name_verification(url.host));
  beast::get_lowest_layer(stream).expires_at(deadline);
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, net::use_awaitable);
  beast::get_lowest_layer(stream).expires_at(deadline);
  co_await stream.async_handshake(ssl::stream_base::client, net::use_awaitable);
  co_return co_await talk(stream, url, std::move(body), deadline, max, on_sse, a2a);
}

void sse_parser::feed(std::string_view bytes,
                      const std::function<void(const std::string&, const std::string&)>& on_data) {
  for (const char c : bytes) {
    if (c != '\n') {
      line_ += c;
      if (line_.size() + data_.size() > max_)
        throw std::runtime_error("an SSE event is over " + std::to_string(max_) +
                                 " bytes (platforms.a2a.max_response)");
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {  // a blank line ends the event
      if (has_data_) on_data(data_, type_);
      data_.clear();
      type_.clear();
      has_data_ = false;
    } else if (line_.front() != ':') {
      const auto colon = line_.find(':');
      const std::string field = line_.substr(0, colon);
      std::string value = colon == std::string::npos ? std::string() : line_.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (field == "data") {
        if (has_data_) data_ += '\n';
        data_ += value;
        has_data_ = true;
      } else if (field == "event") {
        type_ = std::move(value);
      }
    }
    line_.clear();
  }
}

}  // namespace parley::platforms::detail::a2a
