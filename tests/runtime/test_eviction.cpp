// Sessions do not live forever: idle ones are evicted after agent.session_idle_ttl (memory
// comes back), attached ones stay, a message racing an eviction is neither lost nor handled
// twice, and agent.max_sessions refuses new sessions with a message naming the key.
// (Evicted persisted sessions resuming, and their timers bringing them back: tests/db.)
#include <doctest/doctest.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include "harness.hpp"
#include "../rss.hpp"

using namespace std::chrono_literals;
using parley::event;
using parley::session;
using test::harness;

namespace {
using test::glibc_malloc;
using test::rss_bytes;

// Waits until pred() holds, polling every millisecond; false after `limit`.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(1ms);  // polling a condition, not waiting for work
  }
  return true;
}
}  // namespace

TEST_CASE("20,000 abandoned sessions are evicted after the TTL and their memory comes back") {
  harness h("evict", 2);
  h.agent.config().set("agent.session_idle_ttl", 1.0);
  auto& start = h.agent.new_state("start", true);
  start.set_body([](session& s) {
    s.set("visits", 1);
    s.reply("hello, this is a greeting of a reasonable length for a chat bot");
  });
  start.when_event(parley::event_kind::text).go_to(start);
  h.agent.start();

  // `count` connections with fresh ids: each attaches, gets its greeting, and leaves. Returns
  // the RSS while they were all live; `sessions` gets a weak pointer to each.
  auto wave = [&](const std::string& prefix, int count,
                  std::vector<std::weak_ptr<session>>& sessions) {
    std::atomic<int> greeted{0};
    std::vector<parley::session_attachment> connections;
    connections.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i)
      connections.push_back(h.session(prefix + std::to_string(i))->attach());
    for (auto& c : connections) c.session()->when_idle([&] { ++greeted; });
    REQUIRE(eventually([&] { return greeted.load() == count; }, 60s));
    for (auto& c : connections) sessions.push_back(c.session());
    // Attached sessions are never evicted, however long they are idle.
    CHECK_FALSE(eventually([&] { return h.agent.session_count() < std::size_t(count); }, 1500ms));
    return rss_bytes();
  };  // every connection leaves here
  // Evicted, then freed: the last references go with the session's cancelled timers and the
  // eviction's own handler, on its strand, shortly after it leaves the map.
  // A weak pointer pins its session's memory, so they are dropped once all have expired.
  auto drained = [&](std::vector<std::weak_ptr<session>>& sessions) {
    const bool ok = eventually([&] { return h.agent.session_count() == 0; }, 20s) &&
                    eventually([&] {
                      return std::all_of(sessions.begin(), sessions.end(),
                                         [](const auto& w) { return w.expired(); });
                    }, 20s);
    std::vector<std::weak_ptr<session>>().swap(sessions);
    h.replies.clear();  // the test's own record of the greetings
    ::malloc_trim(0);   // glibc keeps freed memory for reuse: hand back what is free
    return ok;
  };

  // A first, smaller wave pages in the code and the allocator's arenas.
  std::vector<std::weak_ptr<session>> warm, sample;
  wave("w", 2000, warm);
  REQUIRE(drained(warm));
  const std::size_t rss_start = rss_bytes();
  constexpr int n = 20000;
  const std::size_t rss_peak = wave("c", n, sample);
  REQUIRE(drained(sample));
  const std::size_t rss_end = rss_bytes();
  MESSAGE("RSS after a warm-up wave " << rss_start / 1024 << " KiB, with " << n
                                      << " sessions " << rss_peak / 1024
                                      << " KiB, after their eviction " << rss_end / 1024 << " KiB");
  REQUIRE(rss_peak > rss_start);
  // Most of what the sessions took is back.
  if (glibc_malloc) CHECK(rss_end - std::min(rss_end, rss_start) < (rss_peak - rss_start) / 4);
}

TEST_CASE("a message racing an eviction is handled once, in order, by one session") {
  harness h("race", 2);
  h.agent.config().set("agent.session_idle_ttl", 0.05);
  auto& start = h.agent.new_state("start", true);
  start.set_body([](session& s) {
    if (s.event().kind() == parley::event_kind::text) s.reply("echo " + s.event().text());
  });
  start.when_event(parley::event_kind::text).go_to(start);
  h.agent.start();

  // Posts through session objects that may have been evicted meanwhile: each must reach the
  // live session for its id, exactly once and in order.
  constexpr int sessions = 20, rounds = 40;
  std::vector<std::shared_ptr<session>> held;
  for (int i = 0; i < sessions; ++i) held.push_back(h.session("r" + std::to_string(i)));
  std::size_t evictions_seen = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < sessions; ++i) {
      REQUIRE(held[i]->post(event::text(std::to_string(r), true)));
      if (held[i]->is_evicted()) ++evictions_seen;
    }
    // Let some sessions go idle for about the TTL (some evicted, some caught mid-way).
    const auto pause = std::chrono::milliseconds(r % 5 == 0 ? 80 : 10 * (r % 3));
    const auto until = std::chrono::steady_clock::now() + pause;
    eventually([&] { return std::chrono::steady_clock::now() >= until; }, pause + 10ms);
  }
  for (int i = 0; i < sessions; ++i) {
    const std::string id = "r" + std::to_string(i);
    REQUIRE(h.replies.wait_count(id, rounds, 20s));
    std::vector<std::string> want;
    for (int r = 0; r < rounds; ++r) want.push_back("echo " + std::to_string(r));
    CHECK(h.replies.of(id) == want);
  }
  MESSAGE("posts that found their session evicted: " << evictions_seen);
  CHECK(evictions_seen > 0);  // the race was exercised
}

TEST_CASE("agent.max_sessions refuses new sessions, naming the key") {
  harness h("cap", 1);
  h.agent.config().set("agent.max_sessions", 3);
  h.agent.new_state("start", true);
  h.agent.start();
  for (int i = 0; i < 3; ++i) h.session("m" + std::to_string(i));
  CHECK(h.session("m0"));  // an existing one is found, not refused
  try {
    h.session("m3");
    FAIL("a fourth session was made");
  } catch (const parley::capacity_error& e) {
    CHECK(std::string(e.what()).find("agent.max_sessions") != std::string::npos);
  }
  h.agent.close_session("m1", "done");
  CHECK(h.session("m3"));  // room again
}

TEST_CASE("a closed session leaves memory too, and its object still refuses events as closed") {
  harness h("closed", 1);
  h.agent.config().set("agent.session_idle_ttl", 0.05);
  h.agent.new_state("start", true);
  h.agent.start();
  auto s = h.session("x");
  h.idle(s);
  s->close("bye");  // close() alone leaves the session in the agent's map
  CHECK(eventually([&] { return h.agent.session_count() == 0; }, 10s));
  CHECK(s->is_evicted());
  auto r = s->post(event::custom("late"));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("closed (bye)") != std::string::npos);
}
