#pragma once
// The neutral A2A load generator of bench_a2a: N sessions, each on its own keep-alive TCP
// connection with a context of its own (taken from the first answer), sending JSON-RPC
// SendMessage (blocking) one after another, as fast as the answers come. Lean on purpose
// (one thread, no JSON parsing, a substring check of each answer), so that what it measures is
// the agents behind it, whichever they are.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace bench {

struct a2a_load {
  double per_second = 0, p50 = 0, p99 = 0;  // round trips/s; latency in ms
  std::size_t n = 0;                        // round trips measured
  long errors = 0;                          // answers without `expect`, or failed requests
  std::string first_error;
};

/// Drives 127.0.0.1:`port` `target` with `sessions` sessions for `warmup` + `measure`; counts
/// the round trips of `measure` whose answer is a COMPLETED task holding `expect`.
inline a2a_load drive_a2a(unsigned short port, const std::string& target, int sessions,
                          std::chrono::milliseconds warmup, std::chrono::milliseconds measure,
                          const std::string& expect) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  using steady = std::chrono::steady_clock;
  net::io_context io(1);
  const net::ip::tcp::endpoint at(net::ip::make_address("127.0.0.1"), port);
  std::vector<double> ms;
  a2a_load r;
  bool counting = false, stop = false;
  steady::time_point started{};

  const auto fail = [&](std::string why) {
    ++r.errors;
    if (r.first_error.empty()) r.first_error = std::move(why);
  };
  const auto one = [&](int i) -> net::awaitable<void> {
    beast::tcp_stream s(io);
    beast::flat_buffer buf;
    std::string context;
    for (long n = 0; !stop; ++n) {
      try {
        if (!s.socket().is_open()) {
          s.expires_after(std::chrono::seconds(10));
          co_await s.async_connect(at, net::use_awaitable);
          s.socket().set_option(net::ip::tcp::no_delay(true));
        }
        http::request<http::string_body> req{http::verb::post, target, 11};
        req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
        req.set(http::field::content_type, "application/json");
        req.set("A2A-Version", "1.0");
        req.body() = R"({"jsonrpc":"2.0","id":)" + std::to_string(n) +
                     R"(,"method":"SendMessage","params":{"message":{"messageId":"m-)" +
                     std::to_string(i) + "-" + std::to_string(n) +
                     R"(","role":"ROLE_USER","parts":[{"text":"ping"}])" +
                     (context.empty() ? "" : R"(,"contextId":")" + context + "\"") + "}}}";
        req.prepare_payload();
        const auto t0 = steady::now();
        s.expires_after(std::chrono::seconds(60));
        co_await http::async_write(s, req, net::use_awaitable);
        http::response<http::string_body> res;
        co_await http::async_read(s, buf, res, net::use_awaitable);
        const double took = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
        const auto& b = res.body();
        if (res.result_int() != 200 || b.find("TASK_STATE_COMPLETED") == std::string::npos ||
            b.find(expect) == std::string::npos) {
          fail("HTTP " + std::to_string(res.result_int()) + ": " + b.substr(0, 400));
        } else if (counting) {
          ms.push_back(took);
        }
        if (context.empty()) {
          const std::string key = R"("contextId":")";
          if (const auto k = b.find(key); k != std::string::npos)
            context = b.substr(k + key.size(), b.find('"', k + key.size()) - k - key.size());
        }
        if (!res.keep_alive()) s.socket().close();
      } catch (const std::exception& e) {
        fail(e.what());
        beast::error_code ignored;
        s.socket().close(ignored);
      }
    }
  };
  for (int i = 0; i < sessions; ++i) net::co_spawn(io, one(i), net::detached);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer t(io);
        t.expires_after(warmup);
        co_await t.async_wait(net::use_awaitable);
        counting = true;
        started = steady::now();
        t.expires_after(measure);
        co_await t.async_wait(net::use_awaitable);
        counting = false;
        stop = true;
        r.per_second = static_cast<double>(ms.size()) /
                       std::chrono::duration<double>(steady::now() - started).count();
      },
      net::detached);
  io.run();  // ends when every session has had its last answer
  std::sort(ms.begin(), ms.end());
  const auto pct = [&](double p) { return ms.empty() ? 0.0 : ms[static_cast<std::size_t>(p * (ms.size() - 1))]; };
  r.n = ms.size();
  r.p50 = pct(0.5);
  r.p99 = pct(0.99);
  return r;
}

}  // namespace bench
