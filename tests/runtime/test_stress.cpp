// 1,000 sessions, 100 events each, posted from 4 threads: every session handles its events
// one at a time, each producer's events in the order it posted them. Also built and run under
// ThreadSanitizer (runtime_stress_tsan).
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "harness.hpp"

using parley::event;
using parley::session;

TEST_CASE("per-session order holds with 1,000 sessions fed by 4 threads") {
  constexpr int sessions = 1000;
  constexpr int events_per_session = 100;
  constexpr int producers = 4;
  test::harness h("stress", 4);
  h.agent.config().set("agent.queue_capacity", events_per_session);

  struct seen {
    std::atomic<int> inside{0};
    int last[producers];
    int count = 0;
    bool in_order = true;
    bool overlapped = false;
  };
  std::vector<seen> per(sessions);
  for (auto& p : per)
    for (int& l : p.last) l = -1;
  std::atomic<int> handled{0};

  auto& s = h.agent.new_state("s", true);
  s.when_event("tick").go_to(s);
  s.set_body([&](session& ss) {
    if (ss.event().name() != "tick") return;  // the initial entry
    auto& p = per[static_cast<std::size_t>(ss.event().payload()["s"].get<int>())];
    if (p.inside.fetch_add(1) != 0) p.overlapped = true;
    const int producer = ss.event().payload()["p"].get<int>();
    const int seq = ss.event().payload()["i"].get<int>();
    if (seq <= p.last[producer]) p.in_order = false;
    p.last[producer] = seq;
    ++p.count;
    p.inside.fetch_sub(1);
    handled.fetch_add(1);  // release: the main thread reads `per` after seeing the count
  });
  h.agent.start();
  std::vector<std::shared_ptr<session>> all;
  for (int i = 0; i < sessions; ++i) all.push_back(h.session("s" + std::to_string(i)));

  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&, p] {
      for (int i = p; i < events_per_session; i += producers)
        for (int k = 0; k < sessions; ++k)
          if (!all[static_cast<std::size_t>(k)]->post(event::custom("tick", {{"s", k}, {"p", p}, {"i", i}})))
            ++refused;
    });
  for (auto& t : threads) t.join();
  REQUIRE(refused.load() == 0);
  REQUIRE(h.replies.wait([&] { return handled.load() == sessions * events_per_session; }, std::chrono::seconds(120)));
  for (int k = 0; k < sessions; ++k) {
    INFO("session " << k);
    CHECK(per[static_cast<std::size_t>(k)].count == events_per_session);
    CHECK(per[static_cast<std::size_t>(k)].in_order);
    CHECK_FALSE(per[static_cast<std::size_t>(k)].overlapped);
  }
}
