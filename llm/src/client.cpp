#include <parley/llm/client.hpp>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <parley/log.hpp>

#include "response.hpp"

namespace parley::llm {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

// ---- options and cancellation ----------------------------------------------------------------

client_options client_options::from(const config& cfg) {
  client_options o;
  o.base_url = cfg.get_string("llm.base_url");
  o.model = cfg.get_string("llm.model");
  o.api_key_env = cfg.get_string("llm.api_key_env");
  o.timeout = milliseconds(static_cast<long long>(cfg.get_double("llm.timeout") * 1000));
  o.max_retries = static_cast<int>(cfg.get_int("llm.max_retries"));
  o.max_retry_wait =
      milliseconds(static_cast<long long>(cfg.get_double("llm.max_retry_wait") * 1000));
  o.max_idle_connections =
      static_cast<std::size_t>(std::max<std::int64_t>(0, cfg.get_int("llm.max_idle_connections")));
  o.tls_verify = cfg.get_bool("llm.tls_verify");
  o.tls_ca_file = cfg.get_string("llm.tls_ca_file");
  return o;
}

struct cancel_handle::state {
  std::mutex m;
  bool cancelled = false;
  std::function<void()> hook;  // set while a chat is in flight
};

cancel_handle::cancel_handle() : state_(std::make_shared<state>()) {}

void cancel_handle::cancel() const {
  std::function<void()> hook;
  {
    std::lock_guard l(state_->m);
    state_->cancelled = true;
    hook = std::move(state_->hook);
    state_->hook = nullptr;
  }
  if (hook) hook();
}

bool cancel_handle::cancelled() const {
  std::lock_guard l(state_->m);
  return state_->cancelled;
}

namespace detail {
namespace {

struct url_parts {
  bool tls = false;
  std::string host, port, target, shown;  // shown: scheme://host:port/path, for messages
};

url_parts parse_base_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return config_error("llm.base_url '" + url + "' " + why +
                        ": use http(s)://host[:port]/path, e.g. http://127.0.0.1:8080/v1");
  };
  url_parts u;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    throw bad("is not an http or https URL");
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (authority.empty()) throw bad("has no host");
  if (authority.find('@') != std::string::npos) throw bad("must not hold credentials");
  std::string host = authority, port;
  if (authority.front() == '[') {  // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) throw bad("has an unclosed '['");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw bad("has text after ']'");
      port = authority.substr(close + 2);
      if (port.empty()) throw bad("has an empty port");
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) throw bad("has an empty port");
  }
  if (!port.empty() && port.find_first_not_of("0123456789") != std::string::npos)
    throw bad("has a port that is not a number");
  if (host.empty()) throw bad("has no host");
  u.host = host;
  u.port = port;
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  u.target = path + "/chat/completions";
  u.shown = std::string(u.tls ? "https://" : "http://") + rest.substr(0, slash) + u.target;
  return u;
}

struct connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

// What one HTTP exchange ended with.
struct outcome {
  std::optional<chat_result> result;
  std::optional<error> failure;
  bool retryable = false;
  std::optional<milliseconds> server_delay;
};

// One chat in flight: what cancellation must reach. Touched on the client's strand only.
struct chat_op {
  explicit chat_op(const net::any_io_executor& ex) : timer(ex), resolver(ex) {}
  bool cancelled = false;
  // Asio per-operation cancellation bound by the caller reaches the chat's coroutine through
  // co_spawn; it ends the chat like the cancel_handle does.
  std::optional<net::cancellation_state> asio_state;
  bool stopped() const {
    return cancelled || (asio_state && asio_state->cancelled() != net::cancellation_type::none);
  }
  connection* conn = nullptr;
  net::steady_timer timer;
  tcp::resolver resolver;
  void cancel_now() {
    cancelled = true;
    timer.cancel();
    resolver.cancel();
    if (conn) conn->lowest().close();
  }
};

bool retryable_status(unsigned status) {
  return status == 408 || status == 409 || status == 429 || status >= 500;
}

}  // namespace

class client_impl : public std::enable_shared_from_this<client_impl> {
 public:
  client_impl(net::any_io_executor ex, client_options o)
      : strand_(net::make_strand(ex)),
        options_(std::move(o)),
        url_(parse_base_url(options_.base_url)),
        tls_(ssl::context::tls_client),
        rng_(std::random_device{}()) {
    if (!options_.api_key_env.empty()) {
      const char* key = std::getenv(options_.api_key_env.c_str());
      if (!key || !*key)
        throw config_error("llm.api_key_env names the environment variable '" +
                           options_.api_key_env +
                           "', which is not set: export it with the API key, or set "
                           "llm.api_key_env to \"\" for a server that needs no key");
      authorization_ = std::string("Bearer ") + key;
    }
    if (options_.max_retries < 0) throw config_error("llm.max_retries must be 0 or more");
    if (options_.timeout.count() <= 0) throw config_error("llm.timeout must be above 0 seconds");
    if (url_.tls) {
      tls_.set_default_verify_paths();
      if (!options_.tls_ca_file.empty()) {
        boost::system::error_code ec;
        tls_.load_verify_file(options_.tls_ca_file, ec);
        if (ec)
          throw config_error("cannot read the certificates in '" + options_.tls_ca_file +
                             "' (tls_ca_file): " + ec.message() + "; give a PEM file");
      }
      tls_.set_verify_mode(options_.tls_verify ? ssl::verify_peer : ssl::verify_none);
    }
  }

  const client_options& options() const { return options_; }
  const net::strand<net::any_io_executor>& strand() const { return strand_; }

  net::awaitable<chat_result> run(chat_request req, cancel_handle cancel) {
    auto self = shared_from_this();
    auto started = clock::now();
    auto op = std::make_shared<chat_op>(strand_);
    co_await net::this_coro::throw_if_cancelled(false);
    op->asio_state = co_await net::this_coro::cancellation_state;
    {
      std::lock_guard l(cancel.get()->m);
      if (cancel.get()->cancelled)
        op->cancelled = true;
      else
        cancel.get()->hook = [strand = strand_, weak = std::weak_ptr<chat_op>(op)] {
          net::post(strand, [weak] {
            if (auto o = weak.lock()) o->cancel_now();
          });
        };
    }
    struct unhook {
      cancel_handle& c;
      ~unhook() {
        std::lock_guard l(c.get()->m);
        c.get()->hook = nullptr;
      }
    } unhook_on_exit{cancel};

    std::string body = request_body(req);
    auto timeout = req.timeout.value_or(options_.timeout);
    for (int attempt = 0;; ++attempt) {
      if (op->stopped()) throw cancelled_error();
      outcome o = co_await exchange(*op, body, req.stream, timeout);
      if (o.result) {
        o.result->attempts = attempt + 1;
        o.result->latency = std::chrono::duration_cast<milliseconds>(clock::now() - started);
        PARLEY_LOG(debug, "llm: " << url_.shown << " answered in " << o.result->latency.count()
                                  << " ms after " << (attempt + 1) << " attempt(s)");
        co_return std::move(*o.result);
      }
      if (op->stopped()) throw cancelled_error();
      if (!o.retryable || attempt >= options_.max_retries) throw *o.failure;
      milliseconds delay = backoff(attempt);
      if (o.server_delay) {
        if (*o.server_delay > options_.max_retry_wait)
          throw error(o.failure->kind(),
                      std::string(o.failure->what()) + "; the server asks to wait " +
                          std::to_string(o.server_delay->count()) + " ms, more than the " +
                          std::to_string(options_.max_retry_wait.count()) + " ms the client waits",
                      o.failure->status());
        if (o.server_delay->count() > 0) delay = *o.server_delay;
      }
      PARLEY_LOG(info, "llm: " << o.failure->what() << "; retry " << (attempt + 1) << " of "
                               << options_.max_retries << " in " << delay.count() << " ms");
      op->timer.expires_after(delay);
      boost::system::error_code ec;
      co_await op->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
  }

 private:
  error cancelled_error() const {
    return error(error_kind::cancelled, "the request to " + url_.shown + " was cancelled");
  }

  milliseconds backoff(int attempt) {
    double base =
        static_cast<double>(options_.initial_backoff.count()) * (1 << std::min(attempt, 20));
    base = std::min(base, static_cast<double>(options_.max_backoff.count()));
    std::uniform_real_distribution<double> jitter(0.75, 1.0);
    return milliseconds(static_cast<long long>(base * jitter(rng_)));
  }

  std::string request_body(const chat_request& req) const {
    json b = json::object();
    b["model"] = req.model.empty() ? options_.model : req.model;
    b["messages"] = req.messages;
    if (req.tools.is_array() && !req.tools.empty()) b["tools"] = req.tools;
    if (req.stream) {
      b["stream"] = true;
      b["stream_options"] = {{"include_usage", true}};
    }
    if (req.extra.is_object())
      for (auto it = req.extra.begin(); it != req.extra.end(); ++it) b[it.key()] = it.value();
    return b.dump();
  }

  std::unique_ptr<connection> take_idle() {
    if (idle_.empty()) return nullptr;
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  void give_back(std::unique_ptr<connection> c) {
    if (idle_.size() >= options_.max_idle_connections) idle_.pop_front();
    idle_.push_back(std::move(c));
  }

  net::awaitable<std::unique_ptr<connection>> connect(chat_op& op, clock::time_point deadline,
                                                      std::optional<error>& failure) {
    auto fail = [&](const boost::system::error_code& ec, const char* what) {
      if (ec == beast::error::timeout)
        failure = error(error_kind::timeout, "no connection to " + url_.shown +
                                                 " within the time limit (llm.timeout): " +
                                                 "check the server is up and reachable");
      else
        failure = error(error_kind::connect, std::string("cannot ") + what + " " + url_.host + ":" +
                                                 url_.port + " (llm.base_url " + options_.base_url +
                                                 "): " + ec.message() +
                                                 "; check the server is running and llm.base_url");
    };
    auto [ec, endpoints] =
        co_await op.resolver.async_resolve(url_.host, url_.port, net::as_tuple(net::use_awaitable));
    if (ec || op.stopped()) {
      fail(ec ? ec : net::error::operation_aborted, "resolve");
      co_return nullptr;
    }
    auto c = std::make_unique<connection>();
    if (url_.tls)
      c->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(strand_, tls_);
    else
      c->plain = std::make_unique<beast::tcp_stream>(strand_);
    op.conn = c.get();
    c->lowest().expires_at(deadline);
    auto [cec, ep] =
        co_await c->lowest().async_connect(endpoints, net::as_tuple(net::use_awaitable));
    if (cec || op.stopped()) {
      fail(cec ? cec : net::error::operation_aborted, "connect to");
      co_return nullptr;
    }
    if (url_.tls) {
      if (!SSL_set_tlsext_host_name(c->tls->native_handle(), url_.host.c_str())) {
        failure = error(error_kind::connect, "cannot set the TLS server name for " + url_.host);
        co_return nullptr;
      }
      if (options_.tls_verify) c->tls->set_verify_callback(ssl::host_name_verification(url_.host));
      auto [hec] = co_await c->tls->async_handshake(ssl::stream_base::client,
                                                    net::as_tuple(net::use_awaitable));
      if (hec || op.stopped()) {
        fail(hec ? hec : net::error::operation_aborted, "complete the TLS handshake with");
        co_return nullptr;
      }
    }
    co_return c;
  }

  net::awaitable<outcome> exchange(chat_op& op, const std::string& body, bool stream,
                                   milliseconds timeout) {
    auto deadline = clock::now() + timeout;
    http::request<http::string_body> req{http::verb::post, url_.target, 11};
    req.set(http::field::host, url_.host);
    req.set(http::field::user_agent, "parley-llm");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, stream ? "text/event-stream" : "application/json");
    if (!authorization_.empty()) req.set(http::field::authorization, authorization_);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    PARLEY_LOG(debug, "llm: POST " << url_.shown << (stream ? " (stream)" : "") << ", "
                                   << body.size() << " bytes");
    // A pooled connection the server has closed fails before any answer: then once more on a
    // new connection, without counting a retry.
    for (int fresh = 0; fresh < 2; ++fresh) {
      auto conn = take_idle();
      bool reused = conn != nullptr;
      if (!conn) {
        std::optional<error> failure;
        conn = co_await connect(op, deadline, failure);
        if (!conn) {
          op.conn = nullptr;
          co_return outcome{std::nullopt, std::move(failure), !op.stopped(), std::nullopt};
        }
      }
      op.conn = conn.get();
      bool keep = false;
      bool stale = false;
      // (Not a ?: of two co_awaits: GCC 12 miscompiles those.)
      outcome o;
      if (conn->tls)
        o = co_await exchange_on(*conn->tls, *conn, op, req, stream, deadline, timeout, reused,
                                 keep, stale);
      else
        o = co_await exchange_on(*conn->plain, *conn, op, req, stream, deadline, timeout, reused,
                                 keep, stale);
      op.conn = nullptr;
      if (stale && !op.stopped()) continue;
      if (keep) give_back(std::move(conn));
      co_return o;
    }
    co_return outcome{
        std::nullopt,
        error(error_kind::connect, "the connection to " + url_.shown + " keeps closing"), true,
        std::nullopt};
  }

  error transport_error(const boost::system::error_code& ec, chat_op& op,
                        milliseconds timeout) const {
    if (op.stopped()) return cancelled_error();
    if (ec == beast::error::timeout)
      return error(error_kind::timeout,
                   "no complete answer from " + url_.shown +
                       " within the time limit (llm.timeout " + std::to_string(timeout.count()) +
                       " ms): raise llm.timeout, or check the server is not stuck");
    return error(error_kind::connect, "the connection to " + url_.shown +
                                          " failed: " + ec.message() +
                                          "; check the server is running and llm.base_url");
  }

  template <class Stream>
  net::awaitable<outcome> exchange_on(Stream& s, connection& c, chat_op& op,
                                      http::request<http::string_body>& req, bool stream,
                                      clock::time_point deadline, milliseconds tout, bool reused,
                                      bool& keep, bool& stale) {
    c.lowest().expires_at(deadline);
    auto [wec, wn] = co_await http::async_write(s, req, net::as_tuple(net::use_awaitable));
    if (wec) {
      stale = reused && !op.stopped() && wec != beast::error::timeout;
      co_return outcome{std::nullopt, transport_error(wec, op, tout), !op.stopped(), std::nullopt};
    }
    http::response_parser<http::string_body> p;
    p.body_limit(64u << 20);
    auto [hec, hn] =
        co_await http::async_read_header(s, c.buffer, p, net::as_tuple(net::use_awaitable));
    if (hec) {
      stale = reused && !op.stopped() && hec != beast::error::timeout &&
              (hec == http::error::end_of_stream || hec == net::error::eof ||
               hec == net::error::connection_reset || hec == http::error::partial_message);
      co_return outcome{std::nullopt, transport_error(hec, op, tout), !op.stopped(), std::nullopt};
    }
    const auto& head = p.get();
    unsigned status = head.result_int();
    bool sse = stream && status == 200 &&
               std::string_view(head[http::field::content_type]).rfind("text/event-stream", 0) == 0;
    std::optional<stream_reader> reader;
    if (sse) reader.emplace(url_.shown);
    try {
      while (!p.is_done()) {
        auto [rec, rn] =
            co_await http::async_read_some(s, c.buffer, p, net::as_tuple(net::use_awaitable));
        if (reader) {
          reader->feed(p.get().body());
          p.get().body().clear();
        }
        if (rec) {
          if (op.stopped()) co_return outcome{std::nullopt, cancelled_error(), false, std::nullopt};
          if (rec == beast::error::timeout)  // retried unless a stream had begun (as below)
            co_return outcome{std::nullopt, transport_error(rec, op, tout), !sse, std::nullopt};
          // The answer began and the connection ended: not retried for a stream (the model has
          // spent the tokens), retried for a plain answer.
          co_return outcome{
              std::nullopt,
              error(error_kind::closed_mid_stream,
                    "the connection to " + url_.shown + " closed before the answer ended (" +
                        rec.message() + "); the server may have crashed or hit a limit"),
              !sse, std::nullopt};
        }
      }
    } catch (const error& e) {
      co_return outcome{std::nullopt, e, false, std::nullopt};
    }
    keep = p.keep_alive();
    if (status / 100 != 2) {
      const auto& res = p.get();
      std::string msg = error_message(res.body()).value_or(std::string(res.body().substr(0, 200)));
      error_kind kind =
          (status == 401 || status == 403) ? error_kind::unauthorized : error_kind::http_status;
      std::string text = "HTTP " + std::to_string(status) + " from " + url_.shown + ": " + msg;
      if (kind == error_kind::unauthorized)
        text += options_.api_key_env.empty()
                    ? "; the server wants an API key: set llm.api_key_env to the NAME of the "
                      "environment variable holding it"
                    : "; check the API key in the environment variable " + options_.api_key_env +
                          " (named by llm.api_key_env)";
      else if (status == 404)
        text += "; check llm.base_url (it should end in /v1) and llm.model";
      bool retry = retryable_status(status);
      auto should = std::string(res["x-should-retry"]);
      if (should == "true") retry = true;
      if (should == "false") retry = false;
      auto delay =
          retry_after(res["retry-after-ms"], res[http::field::retry_after], wall_clock::now());
      co_return outcome{std::nullopt, error(kind, std::move(text), static_cast<int>(status)), retry,
                        delay};
    }
    try {
      chat_result r = reader ? reader->finish() : parse_completion(p.get().body(), url_.shown);
      co_return outcome{std::move(r), std::nullopt, false, std::nullopt};
    } catch (const error& e) {
      co_return outcome{std::nullopt, e, false, std::nullopt};
    }
  }

  net::strand<net::any_io_executor> strand_;
  client_options options_;
  url_parts url_;
  ssl::context tls_;
  std::string authorization_;                     // "Bearer <key>": never logged
  std::deque<std::unique_ptr<connection>> idle_;  // strand
  std::mt19937 rng_;                              // strand
};

}  // namespace detail

client::client(net::any_io_executor executor, client_options options)
    : impl_(std::make_shared<detail::client_impl>(std::move(executor), std::move(options))) {}

client::~client() = default;

const client_options& client::options() const { return impl_->options(); }

net::awaitable<chat_result> client::chat(chat_request request, cancel_handle cancel) {
  // Runs on the client's strand; co_spawn's completion resumes the caller on its executor.
  chat_result r = co_await net::co_spawn(
      impl_->strand(), impl_->run(std::move(request), std::move(cancel)), net::use_awaitable);
  co_return r;
}

void client::async_chat(chat_request request, handler done, cancel_handle cancel) {
  net::co_spawn(
      impl_->strand(), impl_->run(std::move(request), std::move(cancel)),
      [done = std::move(done)](std::exception_ptr e, chat_result r) { done(e, std::move(r)); });
}

}  // namespace parley::llm
