#include "a2a_pool.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "a2a_model.hpp"
#include "beast.hpp"

namespace parley::platforms::detail::a2a {

struct connection_pool::connection {
  template <class T, class... A>
  explicit connection(std::in_place_type_t<T> t, A&&... a) : stream(t, std::forward<A>(a)...) {}
  std::variant<beast::tcp_stream, beast::ssl_stream<beast::tcp_stream>> stream;
  clock::time_point idle_until{};

  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream);
  }

  // An idle connection is alive while reading it would block: EOF means the server closed it,
  // and bytes nobody asked for (a TLS close_notify, garbage) make it unusable too.
  bool alive() {
    char b;
    const auto n = ::recv(tcp().socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

namespace {

using request = http::request<http::string_body>;

enum class ending {
  keep,   // the answer was read whole and the connection may carry the next request
  close,  // the answer was read whole; the connection may not be reused
  stale,  // the connection was dead before any byte of an answer: the request may go again
};

struct talked {
  ending how = ending::close;
  beast::error_code ec;                 // with stale: why
  std::chrono::milliseconds hint{0};    // Keep-Alive: timeout=N, 0 = none given
};

// The errors of a connection the server closed while it sat idle.
bool closed_by_peer(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

// Keep-Alive: timeout=5, max=100 -> 5 s.
std::chrono::milliseconds keep_alive_timeout(std::string_view v) {
  const auto at = v.find("timeout=");
  if (at == std::string_view::npos) return std::chrono::milliseconds(0);
  v.remove_prefix(at + 8);
  long s = 0;
  std::from_chars(v.data(), v.data() + v.size(), s);
  return std::chrono::seconds(std::max(0L, s));
}

request make_request(const url_parts& url, std::string body, bool sse, bool a2a) {
  request req{body.empty() ? http::verb::get : http::verb::post, url.target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, a2a ? "parley-a2a" : "parley");
  if (a2a) req.set("A2A-Version", protocol_version);
  req.set(http::field::accept, sse ? "text/event-stream" : "application/json");
  if (!url.token.empty()) req.set(http::field::authorization, "Bearer " + url.token);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

template <class Stream>
net::awaitable<talked> talk(Stream& stream, const request& req, clock::time_point deadline,
                            std::size_t max, const std::function<void(std::string_view)>* on_sse,
                            http_answer& a) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_at(deadline);
  if (auto [ec, n] = co_await http::async_write(stream, req, net::as_tuple(net::use_awaitable)); ec) {
    if (ec == beast::error::timeout) throw beast::system_error(ec);
    co_return talked{ending::stale, ec};
  }

  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> p;
  p.body_limit(boost::none);
  p.header_limit(64 * 1024);
  tcp_layer.expires_at(deadline);
  if (auto [ec, n] = co_await http::async_read_header(stream, buf, p, net::as_tuple(net::use_awaitable)); ec) {
    if (!p.got_some() && buf.size() == 0 && closed_by_peer(ec)) co_return talked{ending::stale, ec};
    throw beast::system_error(ec);
  }
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
  // Bytes after the answer are not ours to read: such a connection is not reused.
  talked t;
  t.how = p.keep_alive() && buf.size() == 0 ? ending::keep : ending::close;
  t.hint = keep_alive_timeout(p.get()[http::field::keep_alive]);
  co_return t;
}

ssl::context& tls_context() {
  static ssl::context ctx = [] {
    ssl::context c(ssl::context::tls_client);
    c.set_default_verify_paths();
    c.set_verify_mode(ssl::verify_peer);
    return c;
  }();
  return ctx;
}

}  // namespace

connection_pool::connection_pool(net::any_io_executor ex, std::size_t max_idle,
                                 std::chrono::milliseconds idle_timeout)
    : ex_(std::move(ex)), strand_(net::make_strand(ex_)), sweep_timer_(strand_),
      max_idle_(max_idle), idle_timeout_(idle_timeout) {}

connection_pool::~connection_pool() = default;

net::awaitable<http_answer> connection_pool::exchange(const url_parts& url, std::string body,
                                                      clock::time_point deadline, std::size_t max,
                                                      const std::function<void(std::string_view)>* on_sse,
                                                      bool a2a) {
  const auto self = shared_from_this();  // the pool outlives the exchange
  const request req = make_request(url, std::move(body), on_sse != nullptr, a2a);
  const std::string origin = url.origin();
  // The first try may take an idle connection; the retry (once) always opens a fresh one.
  for (bool first = true;; first = false) {
    connection_ptr c = first ? take(origin) : nullptr;
    const bool reused = c != nullptr;
    if (!c) c = co_await connect(url, deadline);
    http_answer a;
    const talked t = co_await std::visit(
        [&](auto& s) { return talk(s, req, deadline, max, on_sse, a); }, c->stream);
    if (t.how == ending::stale) {
      if (!reused) throw beast::system_error(t.ec);
      continue;
    }
    auto idle = idle_timeout_;
    // Close one second before the server says it will, so that it never closes under a request.
    if (t.hint.count() > 0) idle = std::min(idle, t.hint - std::chrono::seconds(1));
    if (t.how == ending::keep && idle.count() > 0) {
      put_back(origin, std::move(c), clock::now() + idle);
    } else if (auto* plain = std::get_if<beast::tcp_stream>(&c->stream)) {
      beast::error_code ignored;
      plain->socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
    co_return a;
  }
}

net::awaitable<connection_pool::connection_ptr> connection_pool::connect(const url_parts& url,
                                                                        clock::time_point deadline) {
  tcp::resolver resolver(ex_);
  const auto endpoints = co_await resolver.async_resolve(url.host, url.port, net::use_awaitable);
  if (!url.tls) {
    auto c = std::make_unique<connection>(std::in_place_type<beast::tcp_stream>, ex_);
    auto& s = std::get<beast::tcp_stream>(c->stream);
    s.expires_at(deadline);
    co_await s.async_connect(endpoints, net::use_awaitable);
    s.socket().set_option(tcp::no_delay(true));
    co_return c;
  }
  auto c = std::make_unique<connection>(std::in_place_type<beast::ssl_stream<beast::tcp_stream>>, ex_,
                                        tls_context());
  auto& s = std::get<beast::ssl_stream<beast::tcp_stream>>(c->stream);
  if (!SSL_set_tlsext_host_name(s.native_handle(), url.host.c_str()))
    throw std::runtime_error("cannot set the TLS server name");
  s.set_verify_callback(ssl::host_name_verification(url.host));
  beast::get_lowest_layer(s).expires_at(deadline);
  co_await beast::get_lowest_layer(s).async_connect(endpoints, net::use_awaitable);
  beast::get_lowest_layer(s).socket().set_option(tcp::no_delay(true));
  beast::get_lowest_layer(s).expires_at(deadline);
  co_await s.async_handshake(ssl::stream_base::client, net::use_awaitable);
  co_return c;
}

connection_pool::connection_ptr connection_pool::take(const std::string& origin) {
  std::vector<connection_ptr> dead;  // closed after the lock
  std::lock_guard lock(mu_);
  auto it = idle_.find(origin);
  if (it == idle_.end()) return nullptr;
  auto& v = it->second;
  connection_ptr got;
  const auto now = clock::now();
  while (!v.empty() && !got) {  // the most recently used first
    auto c = std::move(v.back());
    v.pop_back();
    if (c->idle_until > now && c->alive()) got = std::move(c);
    else dead.push_back(std::move(c));
  }
  if (v.empty()) idle_.erase(it);
  return got;
}

void connection_pool::put_back(const std::string& origin, connection_ptr c, clock::time_point until) {
  c->tcp().expires_never();
  c->idle_until = until;
  bool arm = false;
  {
    std::lock_guard lock(mu_);
    if (max_idle_ == 0) return;
    auto& v = idle_[origin];
    if (v.size() >= max_idle_) return;  // c closes here
    v.push_back(std::move(c));
    arm = !sweep_armed_;
    sweep_armed_ = true;
  }
  if (arm)
    net::post(strand_, [w = weak_from_this(), until] {
      if (auto self = w.lock()) self->arm_sweep(until);
    });
}

void connection_pool::arm_sweep(clock::time_point at) {
  sweep_timer_.expires_at(at);
  sweep_timer_.async_wait([w = weak_from_this()](beast::error_code ec) {
    if (ec) return;
    if (auto self = w.lock()) self->sweep();
  });
}

void connection_pool::sweep() {
  std::vector<connection_ptr> dead;  // closed after the lock
  auto next = clock::time_point::max();
  {
    std::lock_guard lock(mu_);
    const auto now = clock::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& v = it->second;
      for (auto& c : v) {
        if (c->idle_until <= now) dead.push_back(std::move(c));
        else next = std::min(next, c->idle_until);
      }
      std::erase(v, nullptr);
      it = v.empty() ? idle_.erase(it) : std::next(it);
    }
    if (next == clock::time_point::max()) sweep_armed_ = false;
  }
  if (next != clock::time_point::max()) arm_sweep(next);
}

}  // namespace parley::platforms::detail::a2a
