// Session semantics, one case per rule: transitions in order, fallbacks, unhandled events
// dropped, eventless chains and the loop guard, state timeouts and their races, throwing
// conditions and bodies, coroutine bodies, polling, the bounded queue, close, schedule.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <parley/intent.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using parley::event;
using parley::session;
using test::harness;

TEST_CASE("the initial body runs when a session starts, then transitions fire in definition order") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  auto& first = h.agent.new_state("first");
  auto& second = h.agent.new_state("second");
  a.set_body([](session& s) { s.reply("in a"); });
  first.set_body([](session& s) { s.reply("first"); });
  second.set_body([](session& s) { s.reply("second"); });
  // Both match "go": the first defined wins.
  a.when_event("go").go_to(first);
  a.when_event("go").go_to(second);
  h.agent.start();
  auto s = h.session("s1");
  REQUIRE(h.replies.wait_count("s1", 1));
  CHECK(s->post(event::custom("go")));
  REQUIRE(h.replies.wait_count("s1", 2));
  CHECK(h.replies.of("s1") == std::vector<std::string>{"in a", "first"});
  CHECK(h.state_of(s) == "first");
}

TEST_CASE("intents move, and an unmatched human message runs the state fallback, else the global one") {
  harness h;
  auto& hi = h.agent.new_intent("hi", {"hello", "hi there"});
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  auto& c = h.agent.new_state("c");
  a.when_intent_matched(hi).go_to(b);
  b.set_body([](session& s) { s.reply("b:" + s.event().intent_name()); });
  b.set_fallback_body([](session& s) { s.reply("b fallback for " + s.event().text()); });
  b.when_event("next").go_to(c);
  h.agent.set_global_fallback_body([](session& s) { s.reply("global fallback"); });
  h.agent.start();
  auto s = h.session("s");
  s->post(event::text("what?"));  // a has no fallback of its own
  s->post(event::text("hello"));
  s->post(event::text("nonsense"));
  s->post(event::custom("next"));
  s->post(event::text("more nonsense"));
  REQUIRE(h.replies.wait_count("s", 4));
  h.idle(s);
  CHECK(h.replies.of("s") == std::vector<std::string>{"global fallback", "b:hi",
                                                       "b fallback for nonsense", "global fallback"});
  CHECK(s->pending_event_count() == 0);
}

TEST_CASE("JSON events carrying a message are classified like text") {
  harness h;
  auto& hi = h.agent.new_intent("hi", {"hello"});
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  a.when_intent_matched(hi).go_to(b);
  b.set_body([](session& s) { s.reply("json " + s.event().payload().value("extra", "")); });
  h.agent.start();
  auto s = h.session("s");
  s->post(event::json_payload({{"message", "hello"}, {"extra", "x"}}));
  REQUIRE(h.replies.wait_count("s", 1));
  CHECK(h.replies.of("s")[0] == "json x");
}

TEST_CASE("an intent below nlp.intent_threshold counts as no intent") {
  harness h;
  h.agent.config().set("nlp.intent_threshold", 0.95);
  h.agent.set_intent_classifier(parley::make_simple_classifier());  // scores known exactly
  auto& hi = h.agent.new_intent("hi", {"hello there friend"});
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  auto& none = h.agent.new_state("none");
  a.when_intent_matched(hi).go_to(b);
  a.when_no_intent_matched().go_to(none);
  b.set_body([](session& s) { s.reply("b"); });
  none.set_body([](session& s) {
    const auto* p = s.event().prediction();
    s.reply(std::string("none ") + (p && !p->matched() && p->score > 0 ? "scored" : "?"));
  });
  none.go_to(a);
  h.agent.start();
  auto s = h.session("s");
  s->post(event::text("hello"));  // partial: below 0.95
  s->post(event::text("Hello there, friend!"));  // normalised exact match
  REQUIRE(h.replies.wait_count("s", 2));
  CHECK(h.replies.of("s") == std::vector<std::string>{"none scored", "b"});
}

TEST_CASE("unmatched non-human events are dropped: nothing piles up") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  a.when_event("wanted").go_to(b);
  b.set_body([](session& s) { s.reply("b"); });
  h.agent.start();
  auto s = h.session("s");
  for (int i = 0; i < 100; ++i) {
    s->post(event::custom("unwanted"));
    s->post(event::text("from another agent", /*human=*/false));
    s->post(event::file({"x.bin", "application/octet-stream", ""}));
  }
  h.idle(s);
  CHECK(s->pending_event_count() == 0);
  CHECK(h.replies.of("s").empty());  // no fallback for non-human events
  s->post(event::custom("wanted"));
  REQUIRE(h.replies.wait_count("s", 1));
  CHECK(h.state_of(s) == "b");
}

TEST_CASE("after a move the body runs, then eventless transitions chain") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  auto& c = h.agent.new_state("c");
  auto& d = h.agent.new_state("d");
  a.set_body([](session& s) { s.reply("a"); });
  a.when_event("go").go_to(b);
  b.set_body([](session& s) {
    s.reply("b");
    s.set("count", 3);
  });
  b.go_to(c);  // auto
  c.set_body([](session& s) { s.reply("c"); });
  c.when_variable_matches_operation("count", parley::compare::ge, 3).go_to(d);
  d.set_body([](session& s) { s.reply("d"); });
  h.agent.start();
  auto s = h.session("s");
  s->post(event::custom("go"));
  REQUIRE(h.replies.wait_count("s", 4));
  CHECK(h.replies.of("s") == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(h.state_of(s) == "d");
}

TEST_CASE("variable operations compare JSON values") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  auto& big = h.agent.new_state("big");
  auto& named = h.agent.new_state("named");
  a.when_variable_matches_operation("n", parley::compare::gt, 10).go_to(big);
  a.when_variable_matches_operation("tags", parley::compare::contains, "vip").go_to(named);
  big.set_body([](session& s) { s.reply("big"); });
  named.set_body([](session& s) { s.reply("vip"); });
  h.agent.start();
  auto s1 = h.session("s1");
  auto s2 = h.session("s2");
  h.on_strand(s1, [&] { s1->set("n", 5); });
  s1->call_manage_transition();
  h.idle(s1);
  CHECK(h.state_of(s1) == "a");
  h.on_strand(s1, [&] { s1->set("n", 11); });
  s1->call_manage_transition();
  REQUIRE(h.replies.wait_count("s1", 1));
  h.on_strand(s2, [&] { s2->set("tags", {"new", "vip"}); });
  s2->call_manage_transition();
  REQUIRE(h.replies.wait_count("s2", 1));
  CHECK(h.replies.of("s2")[0] == "vip");
}

TEST_CASE("a loop of eventless transitions stops after agent.max_auto_moves with an error") {
  harness h;
  h.agent.config().set("agent.max_auto_moves", 64);
  std::atomic<int> runs{0};
  auto& a = h.agent.new_state("a", true);
  auto& ping = h.agent.new_state("ping");
  auto& pong = h.agent.new_state("pong");
  auto& out = h.agent.new_state("out");
  a.when_event("loop").go_to(ping);
  ping.set_body([&](session&) { ++runs; });
  pong.set_body([&](session&) { ++runs; });
  ping.go_to(pong);
  pong.go_to(ping);
  ping.when_event("escape").go_to(out);
  pong.when_event("escape").go_to(out);
  out.set_body([](session& s) { s.reply("out"); });
  h.agent.start();
  auto s = h.session("s");
  s->post(event::custom("loop"));
  s->post(event::custom("escape"));
  REQUIRE(h.replies.wait_count("s", 1));  // the session still answers after the loop
  CHECK(runs.load() == 64);
  CHECK(h.replies.of("s")[0] == "out");
}

TEST_CASE("after(d) fires on time in its state, and never once the session has left") {
  harness h;
  auto& wait = h.agent.new_state("wait", true);
  auto& timed_out = h.agent.new_state("timed_out");
  auto& left = h.agent.new_state("left");
  auto& later = h.agent.new_state("later");
  wait.after(30ms).go_to(timed_out);
  wait.when_event("leave").go_to(left);
  timed_out.set_body([](session& s) { s.reply("timed out"); });
  left.set_body([](session& s) { s.reply("left"); });
  // `left` waits longer than `wait` would have: had wait's timer not been cancelled, it
  // would have fired by then.
  left.after(90ms).go_to(later);
  later.set_body([](session& s) { s.reply("later"); });
  h.agent.start();

  auto stays = h.session("stays");
  auto leaves = h.session("leaves");
  leaves->post(event::custom("leave"));
  REQUIRE(h.replies.wait_count("stays", 1));
  CHECK(h.replies.of("stays") == std::vector<std::string>{"timed out"});
  REQUIRE(h.replies.wait_count("leaves", 2));
  CHECK(h.replies.of("leaves") == std::vector<std::string>{"left", "later"});
}

TEST_CASE("a timeout that races with a move never fires in the wrong state") {
  harness h;
  auto& wait = h.agent.new_state("wait", true);
  auto& timed_out = h.agent.new_state("timed_out");
  auto& moved = h.agent.new_state("moved");
  wait.after(2ms).go_to(timed_out);
  wait.when_event("move").go_to(moved);
  timed_out.set_body([](session& s) { s.reply("timed_out"); });
  moved.set_body([](session& s) { s.reply("moved"); });
  // If the stale timeout were taken in `moved`, this would fire.
  moved.when_event(parley::event_kind::timeout).go_to(timed_out);
  moved.after(1h).go_to(timed_out);
  h.agent.start();
  constexpr int n = 400;
  std::vector<std::shared_ptr<session>> all;
  for (int i = 0; i < n; ++i) all.push_back(h.session("r" + std::to_string(i)));
  for (auto& s : all) s->post(event::custom("move"));
  REQUIRE(h.replies.wait([&] {
    for (int i = 0; i < n; ++i)
      if (h.replies.of("r" + std::to_string(i)).empty()) return false;
    return true;
  }));
  for (auto& s : all) h.idle(s);
  for (int i = 0; i < n; ++i) {
    auto r = h.replies.of("r" + std::to_string(i));
    INFO("session r" << i);
    CHECK(r.size() == 1);  // either timed_out or moved, never moved then timed_out
  }
}

TEST_CASE("after() with conditions: the next duration is armed when the first does not hold") {
  harness h;
  auto& wait = h.agent.new_state("wait", true);
  auto& first = h.agent.new_state("first");
  auto& second = h.agent.new_state("second");
  wait.after(10ms).when_condition([](session&) { return false; }, "never").go_to(first);
  wait.after(40ms).go_to(second);
  second.set_body([](session& s) { s.reply("second"); });
  first.set_body([](session& s) { s.reply("first"); });
  h.agent.start();
  auto s = h.session("s");
  REQUIRE(h.replies.wait_count("s", 1));
  CHECK(h.replies.of("s")[0] == "second");
}

TEST_CASE("a condition that throws counts as false, a body that throws gets the error reply") {
  harness h;
  h.agent.set_error_reply("oops, try again");
  auto& a = h.agent.new_state("a", true);
  auto& never = h.agent.new_state("never");
  auto& boom = h.agent.new_state("boom");
  auto& fine = h.agent.new_state("fine");
  a.when_condition([](session&) -> bool { throw std::runtime_error("bad condition"); }).go_to(never);
  a.when_event("boom").go_to(boom);
  boom.set_body([](session&) { throw std::runtime_error("bad body"); });
  boom.when_event("ok").go_to(fine);
  fine.set_body([](session& s) { s.reply("fine"); });
  never.set_body([](session& s) { s.reply("never"); });
  h.agent.start();
  auto s = h.session("s");
  auto other = h.session("other");
  s->post(event::custom("boom"));
  REQUIRE(h.replies.wait_count("s", 1));
  CHECK(h.replies.of("s")[0] == "oops, try again");
  s->post(event::custom("ok"));
  REQUIRE(h.replies.wait_count("s", 2));
  CHECK(h.replies.of("s")[1] == "fine");
  other->post(event::custom("boom"));
  REQUIRE(h.replies.wait_count("other", 1));
}

TEST_CASE("a coroutine body awaits a timer while other sessions keep answering, and its own events wait") {
  harness h("coro", 2);
  auto release = std::make_shared<std::promise<boost::asio::steady_timer*>>();
  auto timer_ready = release->get_future().share();
  auto& a = h.agent.new_state("a", true);
  auto& slow = h.agent.new_state("slow");
  auto& echo = h.agent.new_state("echo");
  a.when_event("slow").go_to(slow);
  a.when_event("echo").go_to(echo);
  slow.set_body([release](session& s) -> boost::asio::awaitable<void> {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
    t.expires_after(1h);
    release->set_value(&t);
    boost::system::error_code ec;
    co_await t.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    s.reply("slow done");
  });
  slow.when_event("after").go_to(echo);
  echo.set_body([](session& s) { s.reply("echo " + std::string(s.event().name())); });
  echo.when_event("echo").go_to(echo);
  h.agent.start();
  auto s = h.session("slow");
  s->post(event::custom("slow"));
  s->post(event::custom("after"));  // must wait for the suspended body
  auto* timer = timer_ready.get();
  std::vector<std::shared_ptr<session>> others;
  for (int i = 0; i < 20; ++i) {
    others.push_back(h.session("o" + std::to_string(i)));
    others.back()->post(event::custom("echo"));
  }
  for (int i = 0; i < 20; ++i) REQUIRE(h.replies.wait_count("o" + std::to_string(i), 1));
  CHECK(h.replies.of("slow").empty());
  CHECK(s->pending_event_count() == 1);
  h.on_strand(s, [&] { timer->cancel(); });
  REQUIRE(h.replies.wait_count("slow", 2));
  CHECK(h.replies.of("slow") == std::vector<std::string>{"slow done", "echo after"});
}

TEST_CASE("reset and close cancel a suspended coroutine body, the fresh conversation's body is not") {
  harness h("cancel", 2);
  std::atomic<int> ended{0};
  auto& a = h.agent.new_state("a", true);
  auto& wait = h.agent.new_state("wait");
  a.when_event("wait").go_to(wait);
  // A short wait: a cancellation meant for an older body would end it without its reply.
  a.set_body([](session& s) -> boost::asio::awaitable<void> {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 20ms);
    co_await t.async_wait(boost::asio::use_awaitable);
    s.reply("start");
  });
  wait.set_body([&ended](session& s) -> boost::asio::awaitable<void> {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 1h);
    try {
      co_await t.async_wait(boost::asio::use_awaitable);
      s.reply("the hour passed");
    } catch (const boost::system::system_error&) {
      ++ended;
      throw;  // a cancelled body's end is no failure: no error reply
    }
  });
  h.agent.start();
  auto s = h.session("s");
  REQUIRE(h.replies.wait_count("s", 1));
  s->post(event::custom("wait"));
  REQUIRE(h.replies.wait([&] { return h.state_of(s) == "wait"; }));
  s->reset();  // handled at once: the body waiting for an hour is cancelled
  REQUIRE(h.replies.wait_count("s", 2, 5s));
  CHECK(h.replies.of("s") == std::vector<std::string>{"start", "start"});
  CHECK(ended == 1);
  CHECK(h.state_of(s) == "a");
  // A reset while idle does not cancel the body the reset itself starts.
  s->reset();
  REQUIRE(h.replies.wait_count("s", 3, 5s));
  s->post(event::custom("wait"));
  REQUIRE(h.replies.wait([&] { return h.state_of(s) == "wait"; }));
  s->close("bye");
  REQUIRE(h.replies.wait([&] { return ended == 2; }, 5s));
  CHECK(h.replies.of("s").size() == 3);
}

TEST_CASE("a coroutine body that throws gets the error reply") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  a.set_body([](session&) -> boost::asio::awaitable<void> {
    co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
    throw std::runtime_error("async failure");
  });
  h.agent.start();
  h.session("s");
  REQUIRE(h.replies.wait_count("s", 1));
  CHECK(h.replies.of("s")[0] == "Sorry, something went wrong.");
}

TEST_CASE("polling of conditions is off by default and works when agent.check_transitions_delay is set") {
  for (bool polling : {false, true}) {
    harness h;
    if (polling) h.agent.config().set("agent.check_transitions_delay", 0.005);
    std::atomic<bool> flag{false};
    std::atomic<int> evaluations{0};
    auto& a = h.agent.new_state("a", true);
    auto& b = h.agent.new_state("b");
    a.when_condition([&](session&) {
       ++evaluations;
       return flag.load();
     }).go_to(b);
    b.set_body([](session& s) { s.reply("b"); });
    h.agent.start();
    auto s = h.session("s");
    h.idle(s);
    flag = true;
    if (polling) {
      CHECK(h.replies.wait_count("s", 1));
    } else {
      // Nothing polls: the condition was checked once, at entry, and not since.
      h.idle(s);
      CHECK(evaluations.load() == 1);
      CHECK(h.replies.of("s").empty());
      s->call_manage_transition();
      CHECK(h.replies.wait_count("s", 1));
    }
  }
}

TEST_CASE("a full queue refuses the event with a clear error") {
  harness h;
  h.agent.config().set("agent.queue_capacity", 4);
  std::promise<void> gate;
  auto open = gate.get_future().share();
  auto& a = h.agent.new_state("a", true);
  auto& blocked = h.agent.new_state("blocked");
  a.when_event("block").go_to(blocked);
  blocked.set_body([open](session&) { open.wait(); });
  blocked.when_event("x").go_to(blocked);
  h.agent.start();
  auto s = h.session("s");
  REQUIRE(s->post(event::custom("block")));
  // Wait until the body holds the session: the queue is then empty.
  REQUIRE(h.replies.wait([&] { return s->pending_event_count() == 0; }));
  for (int i = 0; i < 4; ++i) CHECK(s->post(event::custom("x")));
  auto refused = s->post(event::custom("x"));
  CHECK_FALSE(refused.ok);
  CHECK(refused.error.find("agent.queue_capacity") != std::string::npos);
  CHECK(refused.error.find("'s'") != std::string::npos);
  gate.set_value();
  h.idle(s);
  CHECK(s->pending_event_count() == 0);
}

TEST_CASE("close makes a session terminal and its events are refused with the reason") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  a.when_event("x").go_to(a);
  h.agent.start();
  auto s = h.session("s");
  s->close("user left");
  CHECK(s->is_terminal());
  auto r = s->post(event::custom("x"));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("user left") != std::string::npos);
  CHECK(s->closed_reason() == "user left");
  auto unknown = h.agent.receive_event("nobody", event::custom("x"));
  CHECK_FALSE(unknown.ok);
  CHECK(unknown.error.find("no session 'nobody'") != std::string::npos);
}

TEST_CASE("schedule posts an event later, and files and custom payloads match their transitions") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  auto& reminded = h.agent.new_state("reminded");
  auto& got_image = h.agent.new_state("got_image");
  a.set_body([](session& s) { s.schedule(20ms, event::custom("remind", {{"what", "tea"}})); });
  a.when_event("remind").go_to(reminded);
  reminded.set_body([](session& s) { s.reply("time for " + s.event().payload().value("what", "")); });
  reminded.when_file_received({"image/"}).go_to(got_image);
  got_image.set_body([](session& s) { s.reply("got " + s.event().file()->name); });
  h.agent.start();
  auto s = h.session("s");
  REQUIRE(h.replies.wait_count("s", 1));
  CHECK(h.replies.of("s")[0] == "time for tea");
  s->post(event::file({"doc.pdf", "application/pdf", "AAAA"}));  // not an image: dropped
  s->post(event::file({"cat.png", "image/png", "AAAA"}));
  REQUIRE(h.replies.wait_count("s", 2));
  CHECK(h.replies.of("s")[1] == "got cat.png");
}

TEST_CASE("the dictionary holds JSON values") {
  harness h;
  h.agent.new_state("a", true);
  h.agent.start();
  auto s = h.session("s");
  h.on_strand(s, [&] {
    s->set("name", "Ada");
    s->set("n", 3);
    s->set("cart", {{"items", {1, 2}}});
    CHECK(s->get("name") == "Ada");
    CHECK(s->get("missing", 7) == 7);
    CHECK(s->get("cart")["items"].size() == 2);
    CHECK(s->erase("n"));
    CHECK_FALSE(s->erase("n"));
    CHECK(s->dictionary().size() == 2);
  });
}

TEST_CASE("rich replies reach the platform with their kind and data") {
  harness h;
  std::vector<parley::reply> got;
  std::mutex m;
  auto p = std::make_shared<parley::callback_platform>([&](session&, const parley::reply& r) {
    std::lock_guard l(m);
    got.push_back(r);
    h.replies.notify();
  });
  auto& a = h.agent.new_state("a", true);
  a.set_body([](session& s) {
    s.reply_markdown("**hi**");
    s.reply_options({"A", "B"});
    s.reply_location(46.5, 6.6);
    s.reply_image({"cat.png", "image/png", "AAAA"});
  });
  h.agent.start();
  h.agent.get_or_create_session("rich", p.get());
  REQUIRE(h.replies.wait([&] {
    std::lock_guard l(m);
    return got.size() == 4;
  }));
  CHECK(got[0].kind == parley::reply_kind::markdown);
  CHECK(got[0].plain_text() == "hi");
  CHECK(got[1].data == parley::json({"A", "B"}));
  CHECK(got[1].plain_text() == "  1. A\n  2. B");
  CHECK(got[2].data["latitude"] == 46.5);
  CHECK(got[3].plain_text() == "[image: cat.png]");
}

TEST_CASE("broadcast_event reaches every live session, and receive_event needs an id") {
  harness h;
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  a.when_event("news").go_to(b);
  b.set_body([](session& s) { s.reply("news!"); });
  h.agent.start();
  for (int i = 0; i < 10; ++i) h.session("b" + std::to_string(i));
  auto refused = h.agent.receive_event("", event::custom("news"));
  CHECK_FALSE(refused.ok);
  CHECK(refused.error.find("broadcast_event") != std::string::npos);
  CHECK(h.agent.broadcast_event(event::custom("news")) == 10);
  for (int i = 0; i < 10; ++i) CHECK(h.replies.wait_count("b" + std::to_string(i), 1));
}

namespace {

// An asynchronous model: predictions wait until the test answers them, from its own thread.
struct held_predictions {
  std::mutex m;
  std::vector<std::pair<std::string, parley::intent_model::prediction_handler>> waiting;
  std::size_t count() {
    std::lock_guard l(m);
    return waiting.size();
  }
  void answer_all(const parley::intent* i) {
    std::vector<std::pair<std::string, parley::intent_model::prediction_handler>> w;
    {
      std::lock_guard l(m);
      w.swap(waiting);
    }
    std::thread([w = std::move(w), i] {  // from a thread of its own, as an LLM client might
      for (auto& [text, done] : w) {
        parley::intent_prediction p;
        p.intent = i;
        p.intent_name = i->name();
        p.score = 0.9;
        p.classifier = "held";
        done(p);
      }
    }).join();
  }
};

class held_model final : public parley::intent_model {
 public:
  explicit held_model(held_predictions& h) : h_(h) {}
  parley::intent_prediction predict(std::string_view) const override { return {}; }
  bool asynchronous() const override { return true; }
  void async_predict(std::string text, prediction_handler done) const override {
    std::lock_guard l(h_.m);
    h_.waiting.emplace_back(std::move(text), std::move(done));
  }

 private:
  held_predictions& h_;
};

class held_classifier final : public parley::intent_classifier {
 public:
  explicit held_classifier(held_predictions& h) : h_(h) {}
  std::string_view name() const override { return "held"; }
  std::unique_ptr<parley::intent_model> train(std::span<const parley::intent* const>,
                                              const parley::agent&) const override {
    return std::make_unique<held_model>(h_);
  }

 private:
  held_predictions& h_;
};

}  // namespace

TEST_CASE("an asynchronous intent model is awaited off the strand: later events wait, others run") {
  harness h;
  held_predictions held;
  auto& hi = h.agent.new_intent("hi", {"hello"});
  auto& a = h.agent.new_state("a", true);
  auto& b = h.agent.new_state("b");
  a.when_intent_matched(hi).go_to(b);
  a.when_event("ping").go_to(a);
  a.set_body([](session& s) {
    if (s.event().name() == "ping") s.reply("pong");
  });
  b.set_body([](session& s) { s.reply("b:" + s.event().intent_name()); });
  a.set_intent_classifier(std::make_shared<held_classifier>(held));
  h.agent.start();

  auto s = h.session("s");
  s->post(event::text("hello"));
  s->post(event::custom("ping"));  // waits behind the prediction
  REQUIRE(h.replies.wait([&] { return held.count() == 1; }));
  auto other = h.session("other");
  other->post(event::custom("ping"));
  REQUIRE(h.replies.wait_count("other", 1));  // not held up by s
  CHECK(h.replies.of("s").empty());
  CHECK(s->pending_event_count() == 1);
  held.answer_all(&hi);
  REQUIRE(h.replies.wait_count("s", 1));
  h.idle(s);
  CHECK(h.replies.of("s") == std::vector<std::string>{"b:hi"});
  CHECK(h.state_of(s) == "b");  // the ping came after the move (in a it would have ponged)

  // A session closed while its model thinks drops the answer.
  auto t = h.session("t");
  t->post(event::text("hello"));
  REQUIRE(h.replies.wait([&] { return held.count() == 1; }));
  t->close("test");
  held.answer_all(&hi);
  h.idle(other);
  CHECK(h.replies.of("t").empty());
}
