// Double texting: a user message that arrives while the session still handles the previous
// one, under each policy (agent.double_texting, session::set_double_texting). The previous
// message's body is a coroutine suspended on a gate the test opens (no sleeps).
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <string>

#include "gate.hpp"
#include "harness.hpp"

using namespace std::chrono_literals;
using parley::event;
using parley::session;
using strings = std::vector<std::string>;

namespace {

// idle --text--> work (coroutine: "working on X", waits on the gate, "done X") --> idle.
// "plain" goes to a plain body that blocks until `release` is set; custom "hold" goes to a
// coroutine body waiting on `hold` (not a user message's turn); custom "ping" answers "pong".
struct bot {
  test::gate gate;
  test::gate hold;
  std::atomic<int> resumed{0};  // work bodies that ran past their wait
  std::promise<void> release;
  test::harness h{"dt", 2};

  explicit bot(const char* policy = nullptr) {
    if (policy) h.agent.config().set("agent.double_texting", policy);
    auto& idle = h.agent.new_state("idle", true);
    auto& work = h.agent.new_state("work");
    auto& plain = h.agent.new_state("plain");
    auto& holding = h.agent.new_state("holding");
    auto& pong = h.agent.new_state("pong");
    idle.when_event(parley::event_kind::text)
        .with_condition([](session& s) { return s.event().text() == "plain"; }, "plain")
        .go_to(plain);
    idle.when_event(parley::event_kind::text).go_to(work);
    idle.when_event("hold").go_to(holding);
    idle.when_event("ping").go_to(pong);
    work.set_body([this](session& s) -> parley::net::awaitable<void> {
      const std::string text = s.event().text();
      s.reply("working on " + text);
      co_await gate.wait();
      ++resumed;
      s.reply("done " + text);
    });
    work.go_to(idle);
    auto released = release.get_future().share();
    plain.set_body([released](session& s) {
      s.reply("plain started");
      released.wait_for(10s);  // blocks this io thread (the harness has two)
      s.reply("plain done");
    });
    plain.go_to(idle);
    holding.set_body([this](session&) -> parley::net::awaitable<void> { co_await hold.wait(); });
    holding.go_to(idle);
    pong.set_body([](session& s) { s.reply("pong"); });
    pong.go_to(idle);
    h.agent.start();
  }
  strings replies(const char* id) { return h.replies.of(id); }
  bool replies_are(const char* id, const strings& want) {
    return h.replies.wait([&] { return h.replies.of(id) == want; }, 5s);
  }
};

}  // namespace

TEST_CASE("enqueue (the default): a message during a suspended body waits, both are answered in order") {
  bot b;
  auto s = b.h.session("s");
  CHECK(s->double_texting_policy() == parley::double_texting::enqueue);
  REQUIRE(s->post(event::text("one")));
  REQUIRE(b.gate.wait_begun(1));
  REQUIRE(s->post(event::text("two")));
  CHECK(s->pending_event_count() == 1);  // waits while "one" is being handled
  CHECK(b.replies("s") == strings{"working on one"});
  b.gate.open();
  REQUIRE(b.gate.wait_begun(2));
  CHECK(b.replies("s") == strings{"working on one", "done one", "working on two"});
  b.gate.open();
  CHECK(b.replies_are("s", {"working on one", "done one", "working on two", "done two"}));
  CHECK(b.resumed == 2);
}

TEST_CASE("reject: a message during a turn is refused naming the policy, and other events still queue") {
  bot b("reject");
  auto s = b.h.session("s");
  REQUIRE(s->post(event::text("one")));
  REQUIRE(b.gate.wait_begun(1));
  const auto r = s->post(event::text("two"));
  CHECK_FALSE(r);
  CHECK(r.error.find("still answering your last message") != std::string::npos);
  CHECK(r.error.find("double texting policy: reject") != std::string::npos);
  CHECK(r.error.find("wait for its reply") != std::string::npos);
  // Not a person's message: never refused for double texting.
  CHECK(s->post(event::custom("ping")));
  b.gate.open();
  CHECK(b.replies_are("s", {"working on one", "done one", "pong"}));
  // The turn is over: the next message is taken; one sent right behind it is refused even
  // before the first is taken from the queue.
  REQUIRE(s->post(event::text("three")));
  CHECK_FALSE(s->post(event::text("four")));
  REQUIRE(b.gate.wait_begun(2));
  b.gate.open();
  CHECK(b.replies_are("s", {"working on one", "done one", "pong", "working on three", "done three"}));
  b.h.idle(s);
  CHECK(b.replies("s").size() == 5);  // neither "two" nor "four" was handled
}

TEST_CASE("interrupt: the suspended body is cancelled (its code after the wait never runs), the new message is answered") {
  bot b("interrupt");
  auto s = b.h.session("s");
  REQUIRE(s->post(event::text("one")));
  REQUIRE(b.gate.wait_begun(1));
  REQUIRE(s->post(event::text("two")));
  REQUIRE(b.gate.wait_begun(2));  // "one"'s wait ended by the cancellation, "two"'s began
  CHECK(b.replies("s") == strings{"working on one", "working on two"});
  CHECK(b.resumed == 0);
  b.gate.open();
  CHECK(b.replies_are("s", {"working on one", "working on two", "done two"}));
  CHECK(b.resumed == 1);
  CHECK(b.h.state_of(s) == "idle");
  // A cancelled body is no failure: no error reply was sent.
}

TEST_CASE("interrupt: a message queued behind an older one cancels that one's body as it starts") {
  bot b("interrupt");
  auto s = b.h.session("s");
  REQUIRE(s->post(event::custom("hold")));  // a turn of no user message: not interrupted
  REQUIRE(b.hold.wait_begun(1));
  REQUIRE(s->post(event::text("one")));
  REQUIRE(s->post(event::text("two")));
  CHECK(b.replies("s").empty());
  b.hold.open();
  REQUIRE(b.hold.wait_ended(1));
  REQUIRE(b.gate.wait_begun(2));
  CHECK(b.replies("s") == strings{"working on one", "working on two"});
  b.gate.open();
  CHECK(b.replies_are("s", {"working on one", "working on two", "done two"}));
  CHECK(b.resumed == 1);
}

TEST_CASE("interrupt: a plain body cannot be stopped mid-run, and the new message is handled right after it") {
  bot b("interrupt");
  auto s = b.h.session("s");
  REQUIRE(s->post(event::text("plain")));
  REQUIRE(b.h.replies.wait_count("s", 1));  // the plain body is running, blocked
  REQUIRE(s->post(event::text("two")));
  b.release.set_value();
  REQUIRE(b.gate.wait_begun(1));
  CHECK(b.replies("s") == strings{"plain started", "plain done", "working on two"});
  b.gate.open();
  CHECK(b.replies_are("s", {"plain started", "plain done", "working on two", "done two"}));
}

TEST_CASE("a session's own policy overrides the agent's, and nothing goes back to it") {
  bot b;  // agent default: enqueue
  auto s = b.h.session("s");
  auto other = b.h.session("other");
  s->set_double_texting(parley::double_texting::reject);
  CHECK(s->double_texting_policy() == parley::double_texting::reject);
  CHECK(other->double_texting_policy() == parley::double_texting::enqueue);
  REQUIRE(s->post(event::text("one")));
  REQUIRE(b.gate.wait_begun(1));
  CHECK_FALSE(s->post(event::text("two")));
  s->set_double_texting(std::nullopt);
  CHECK(s->double_texting_policy() == parley::double_texting::enqueue);
  CHECK(s->post(event::text("three")));
  b.gate.open();
  REQUIRE(b.gate.wait_begun(2));
  b.gate.open();
  CHECK(b.replies_are("s", {"working on one", "done one", "working on three", "done three"}));
}

TEST_CASE("agent.double_texting: a bad value is a config error naming the key and the values") {
  parley::agent a("bad");
  a.config().set("log.level", "error");
  a.new_state("idle", true);
  a.config().set("agent.double_texting", "sometimes");
  try {
    a.start();
    a.stop();
    a.wait();
    FAIL("start() accepted agent.double_texting = sometimes");
  } catch (const parley::config_error& e) {
    const std::string what = e.what();
    CHECK(what.find("agent.double_texting") != std::string::npos);
    CHECK(what.find("enqueue, reject or interrupt") != std::string::npos);
    CHECK(what.find("'sometimes'") != std::string::npos);
  }
  CHECK(parley::parse_double_texting("interrupt") == parley::double_texting::interrupt);
  CHECK_FALSE(parley::parse_double_texting("Reject"));
}
