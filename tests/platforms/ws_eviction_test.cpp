// Sessions do not live forever, end to end (issue 12 part 3): 20,000 WebSocket connections
// without a session id (the server makes a fresh one for each), each closed after its
// greeting, with agent.session_idle_ttl = 1 s: the live sessions drop back to 0 and the
// process's RSS returns near its level after a warm-up wave. The same at the runtime level,
// with attach/detach and no sockets: tests/runtime/test_eviction.cpp.
#include <parley/platforms/websocket_platform.hpp>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <fstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <doctest/doctest.h>

#include "ws_test_bot.hpp"
#include "ws_test_client.hpp"
#include "../rss.hpp"

using namespace wstest;

namespace {

using test::glibc_malloc;
using test::rss_bytes;

// What a wave of short connections saw, from the client's side.
struct wave_result {
  int started = 0;
  int greeted = 0;               // got {"action":"agent_reply_str","message":"welcome"} first
  int failed = 0;                // any error, or another first frame
  std::string first_failure;
  std::size_t most_live = 0;     // the most sessions the agent held, sampled between connections
};

// One client: connect without a session id, read the greeting, close (normal, 1000) and wait
// for the server's close. Every step has a timeout; errors are counted, never thrown.
net::awaitable<void> greet_and_leave(std::uint16_t port, wave_result& r) {
  constexpr auto token = net::as_tuple(net::use_awaitable);
  auto fail = [&r](const std::string& what) {
    if (r.failed++ == 0) r.first_failure = what;
  };
  websocket::stream<beast::tcp_stream> ws(co_await net::this_coro::executor);
  auto& tcp_layer = beast::get_lowest_layer(ws);
  tcp_layer.expires_after(5s);
  auto [ec] = co_await tcp_layer.async_connect(
      tcp::endpoint(net::ip::make_address("127.0.0.1"), port), token);
  if (ec) co_return fail("connect: " + ec.message());
  tcp_layer.expires_never();  // the WebSocket's own timeouts from here
  websocket::stream_base::timeout t{};
  t.handshake_timeout = 5s;
  t.idle_timeout = 5s;
  t.keep_alive_pings = false;
  ws.set_option(t);
  std::tie(ec) = co_await ws.async_handshake("127.0.0.1:" + std::to_string(port), "/", token);
  if (ec) co_return fail("handshake: " + ec.message());
  beast::flat_buffer buffer;
  std::size_t bytes = 0;
  std::tie(ec, bytes) = co_await ws.async_read(buffer, token);
  if (ec) co_return fail("read: " + ec.message());
  const json frame = json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
  if (frame.is_object() && frame.value("action", "") == "agent_reply_str" &&
      frame.value("message", "") == "welcome")
    ++r.greeted;
  else
    fail("first frame: " + beast::buffers_to_string(buffer.data()));
  std::tie(ec) = co_await ws.async_close(websocket::close_code::normal, token);
  if (ec) fail("close: " + ec.message());
}

// `count` connections, `concurrency` at a time, from one client io_context (this thread).
// Returns what the clients saw; fails the test if the wave does not end within `limit`.
wave_result wave(server& srv, int count, int concurrency, std::chrono::seconds limit) {
  wave_result r;
  net::io_context io;
  auto worker = [&]() -> net::awaitable<void> {
    while (r.started < count) {
      ++r.started;
      co_await greet_and_leave(srv.port(), r);
      r.most_live = std::max(r.most_live, srv.agent.session_count());
    }
  };
  int workers_left = concurrency;
  for (int i = 0; i < concurrency; ++i)
    net::co_spawn(io, worker(), [&](std::exception_ptr e) {
      --workers_left;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          if (r.failed++ == 0) r.first_failure = std::string("worker: ") + x.what();
        }
      }
    });
  io.run_for(limit);
  REQUIRE_MESSAGE(workers_left == 0, "the wave did not end within " << limit.count() << " s ("
                                         << r.started << " of " << count << " started)");
  return r;
}

}  // namespace

TEST_SUITE("websocket sessions do not live forever") {

TEST_CASE("20,000 connections with fresh ids, each closed after its greeting, are evicted after the TTL and their memory comes back") {
  constexpr int n = 20000, warm_up = 2000, concurrency = 64;
  auto o = test_options();
  // Neither limit may refuse anything here: room for every concurrent connection (and those
  // the server is still closing), and no rate limit (each client sends nothing but its close).
  o.max_connections = 4 * concurrency;
  o.rate_limit = 0;
  server srv(o, nullptr, /*persist=*/false, /*threads=*/2, [](parley::agent& a) {
    a.config().set("agent.session_idle_ttl", 1.0);
  });
  REQUIRE(srv.agent.session_idle_ttl() == std::chrono::seconds(1));

  net::io_context io;  // for polling, bounded (wait_for)
  // Every connection closed on the server too, then every session evicted; then what the
  // sessions and connections held is free: hand it back (glibc keeps freed memory).
  auto drained = [&] {
    const bool closed = wait_for(io, [&] { return srv.ws->stats().connections == 0; }, 10s);
    const bool evicted = wait_for(io, [&] { return srv.agent.session_count() == 0; }, 10s);
    ::malloc_trim(0);
    return closed && evicted;
  };
  auto check_wave = [&](const wave_result& r, int count) {
    CHECK_MESSAGE(r.failed == 0, r.failed << " failed, the first: " << r.first_failure);
    CHECK(r.greeted == count);
  };

  // A first, smaller wave pages in the code, the allocator's arenas and the sockets' buffers.
  const auto t0 = std::chrono::steady_clock::now();
  check_wave(wave(srv, warm_up, concurrency, 30s), warm_up);
  const auto warm_up_time = std::chrono::steady_clock::now() - t0;
  REQUIRE(drained());
  const std::size_t rss_start = rss_bytes();

  const auto t1 = std::chrono::steady_clock::now();
  const wave_result r = wave(srv, n, concurrency, 45s);
  const auto t2 = std::chrono::steady_clock::now();
  const std::size_t rss_peak = rss_bytes();
  const std::size_t live_at_end = srv.agent.session_count();
  check_wave(r, n);
  // The server made a session for each (fresh ids: none shared), and the TTL evicted them as
  // the wave went on.
  CHECK(r.most_live > 0);
  CHECK(r.most_live < std::size_t(n));

  const bool ok = drained();
  const auto t3 = std::chrono::steady_clock::now();
  CHECK_MESSAGE(ok, "still open: " << srv.ws->stats().connections
                                   << " connections, live: " << srv.agent.session_count()
                                   << " sessions (agent.session_idle_ttl = 1 s)");
  CHECK(srv.agent.session_count() == 0);

  // Nothing refused or cut: the limits did not take part.
  const auto stats = srv.ws->stats();
  CHECK(stats.accepted == std::uint64_t(warm_up + n));
  CHECK(stats.rejected == 0);
  CHECK(stats.rate_limited == 0);
  CHECK(stats.slow_closed == 0);

  // Most of what the wave took is back. The sessions are freed shortly after they leave the
  // map (their strand's last handlers), so the RSS is polled, trimming each time.
  std::size_t rss_end = rss_bytes();
  const std::size_t grown = rss_peak - std::min(rss_peak, rss_start);
  const std::size_t slack = std::max<std::size_t>(grown / 4, 2u << 20);
  if (glibc_malloc)
    wait_for(io, [&] {
      ::malloc_trim(0);
      rss_end = rss_bytes();
      return rss_end <= rss_start + slack;
    }, 5s);
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  MESSAGE("warm-up " << warm_up << " connections in " << ms(warm_up_time) << " ms; " << n
                     << " connections in " << ms(t2 - t1) << " ms, at most " << r.most_live
                     << " live sessions, " << live_at_end << " at the end; all evicted "
                     << ms(t3 - t2) << " ms later. RSS after the warm-up "
                     << rss_start / 1024 << " KiB, after the wave " << rss_peak / 1024
                     << " KiB, after the eviction " << rss_end / 1024 << " KiB");
  if (glibc_malloc) CHECK(rss_end <= rss_start + slack);
}

}  // TEST_SUITE
