// The listening side: the acceptor, and one HTTP session per TCP connection (http_session.hpp).
#include <optional>

#include <boost/asio/ip/host_name.hpp>

#include "beast.hpp"
#include "http_session.hpp"

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley::platforms::detail {

// ---- hub ---------------------------------------------------------------------------------------

bool ws_hub::try_reserve() {
  std::size_t n = open.load();
  do {
    if (n >= opts.max_connections) return false;
  } while (!open.compare_exchange_weak(n, n + 1));
  return true;
}

void ws_hub::release() {
  if (open.fetch_sub(1) == 1) {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }
}

bool ws_hub::wait_all_closed(clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [this] { return open.load() == 0; });
}

std::uint64_t ws_hub::add(const std::string& session_id, std::weak_ptr<ws_connection_base> c) {
  std::lock_guard lock(mu_);
  const auto id = next_id_++;
  by_session_[session_id].push_back({id, std::move(c)});
  return id;
}

void ws_hub::remove(std::uint64_t id, const std::string& session_id) {
  std::lock_guard lock(mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  std::erase_if(it->second, [id](const entry& e) { return e.id == id; });
  if (it->second.empty()) by_session_.erase(it);
}

std::vector<std::shared_ptr<ws_connection_base>> ws_hub::connections_of(
    const std::string& session_id) {
  std::vector<std::shared_ptr<ws_connection_base>> out;
  std::lock_guard lock(mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& e : it->second)
    if (auto c = e.conn.lock()) out.push_back(std::move(c));
  return out;
}

std::vector<std::shared_ptr<ws_connection_base>> ws_hub::all_connections() {
  std::vector<std::shared_ptr<ws_connection_base>> out;
  std::lock_guard lock(mu_);
  for (const auto& [sid, list] : by_session_)
    for (const auto& e : list)
      if (auto c = e.conn.lock()) out.push_back(std::move(c));
  return out;
}

namespace {

// ---- listener --------------------------------------------------------------------------------

class listener final : public ws_server, public std::enable_shared_from_this<listener> {
 public:
  listener(net::io_context& io, std::shared_ptr<ws_hub> hub, std::shared_ptr<ssl::context> tls)
      : io_(io), acceptor_(net::make_strand(io)), retry_(acceptor_.get_executor()),
        hub_(std::move(hub)), tls_(std::move(tls)) {}

  void open(const std::string& host, std::uint16_t port) {
    beast::error_code ec;
    const auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec)
      throw std::runtime_error("platforms.websocket.host '" + host +
                               "' is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0");
    const tcp::endpoint ep(address, port);
    const std::string where = host + ":" + std::to_string(port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    // Non-blocking, so on_accept can take a burst's waiting clients without blocking.
    if (!ec) acceptor_.non_blocking(true, ec);
    if (ec)
      throw std::runtime_error("cannot listen on " + where + ": " + ec.message() +
                               " (set platforms.websocket.port, or --port, to a free port)");
    port_ = acceptor_.local_endpoint().port();
  }

  void start() { do_accept(); }

  void stop() override {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
  }

  std::uint16_t port() const override { return port_; }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(io_),
                           beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. out of file descriptors: wait a little instead of spinning.
      PARLEY_LOG(warn, "websocket: accept failed: " << ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e) self->do_accept();
      });
      return;
    }
    if (hub_->stopping.load()) return;
    serve(std::move(socket));
    // Clients that arrived together wait in the backlog: take them now rather than one per
    // round of the io thread, which is busy with every open connection's work (a burst of
    // reconnects is then served together). Bounded, so the thread goes back to that work.
    for (int i = 0; i < 64; ++i) {
      tcp::socket next(net::make_strand(io_));
      acceptor_.accept(next, ec);
      if (ec) break;  // would_block: the backlog is empty (other errors: async_accept sees them)
      serve(std::move(next));
    }
    do_accept();
  }

  void serve(tcp::socket socket) {
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (tls_) {
      std::make_shared<http_session<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls_), hub_)
          ->run();
    } else {
      std::make_shared<http_session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), hub_)
          ->run();
    }
  }

  net::io_context& io_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::shared_ptr<ws_hub> hub_;
  std::shared_ptr<ssl::context> tls_;
  std::uint16_t port_ = 0;
};

std::shared_ptr<ssl::context> make_tls(const websocket_options& o) {
  if (o.tls_cert.empty() && o.tls_key.empty()) return nullptr;
  if (o.tls_cert.empty() || o.tls_key.empty())
    throw std::runtime_error(
        "TLS needs both platforms.websocket.tls_cert and platforms.websocket.tls_key");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  beast::error_code ec;
  ctx->use_certificate_chain_file(o.tls_cert, ec);
  if (ec)
    throw std::runtime_error("cannot use TLS certificate '" + o.tls_cert + "': " + ec.message() +
                             " (platforms.websocket.tls_cert must be a PEM certificate chain)");
  ctx->use_private_key_file(o.tls_key, ssl::context::pem, ec);
  if (ec)
    throw std::runtime_error("cannot use TLS key '" + o.tls_key + "': " + ec.message() +
                             " (platforms.websocket.tls_key must be the PEM key of tls_cert)");
  return ctx;
}

}  // namespace

std::shared_ptr<ws_server> start_ws_server(net::io_context& io, std::shared_ptr<ws_hub> hub) {
  auto tls = make_tls(hub->opts);
  hub->scheme = tls ? "https" : "http";
  auto l = std::make_shared<listener>(io, hub, std::move(tls));
  l->open(hub->opts.host, hub->opts.port);
  hub->port = l->port();
  hub->advertised = hub->opts.advertise;
  if (hub->advertised.empty()) {
    std::string host = hub->opts.host;
    if (host == "0.0.0.0" || host == "::" || host.empty()) host = net::ip::host_name();
    if (host == "localhost") host = "127.0.0.1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    hub->advertised = host + ":" + std::to_string(hub->port);
  }
  l->start();
  return l;
}

}  // namespace parley::platforms::detail
