// Agent-to-agent messaging in the runtime, without sockets: lineage on the wire, the loop
// guard, duplicate ids, replies' lineage and the errors a session gets.
#include <doctest/doctest.h>

#include <parley/agent.hpp>
#include <parley/log.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;

namespace {

// A transport a bot could register: keeps what it is asked to send.
struct kept_transport : parley::agent_transport {
  struct sent {
    std::string session, url;
    parley::json message;
    parley::lineage l;
  };
  void send(parley::session& from, const std::string& url, const parley::json& message,
            const parley::lineage& l) override {
    std::lock_guard lock(m);
    all.push_back({from.id(), url, message, l});
  }
  void forget(const std::string& session_id) override {
    std::lock_guard lock(m);
    forgotten.push_back(session_id);
  }
  std::vector<sent> copy() {
    std::lock_guard lock(m);
    return all;
  }
  std::vector<std::string> forgotten_ids() {
    std::lock_guard lock(m);
    return forgotten;
  }
  std::mutex m;
  std::vector<sent> all;
  std::vector<std::string> forgotten;
};

parley::event agent_text(std::string text, parley::lineage l, std::string sender = "ws://peer/") {
  parley::event e = parley::event::text(std::move(text), false);
  e.from_agent(std::move(sender), std::move(l), "websocket", /*inbound=*/true);
  return e;
}

parley::lineage with_id(std::string id, int depth) {
  parley::lineage l;
  l.id = std::move(id);
  l.correlation_id = "conv";
  l.depth = depth;
  l.sender_agent = "peer";
  return l;
}

}  // namespace

TEST_CASE("lineage round-trips through JSON and refuses wrong types by name") {
  parley::lineage l{"a", "b", "c", "agent", "sess", 3};
  auto back = parley::lineage::from_json(l.to_json());
  REQUIRE(back);
  CHECK(back->id == "a");
  CHECK(back->causation_id == "b");
  CHECK(back->correlation_id == "c");
  CHECK(back->sender_agent == "agent");
  CHECK(back->sender_session == "sess");
  CHECK(back->depth == 3);

  std::string why;
  CHECK_FALSE(parley::lineage::from_json({{"id", 5}}, &why));
  CHECK(why.find("'id'") != std::string::npos);
  CHECK_FALSE(parley::lineage::from_json({{"id", "x"}, {"depth", "2"}}, &why));
  CHECK(why.find("'depth' must be an integer") != std::string::npos);
  CHECK_FALSE(parley::lineage::from_json({{"id", "x"}, {"depth", 1.5}}, &why));
  CHECK_FALSE(parley::lineage::from_json({{"id", "x"}, {"sender", "me"}}, &why));
  CHECK(why.find("'sender'") != std::string::npos);
  CHECK_FALSE(parley::lineage::from_json({{"id", "x"}, {"causation_id", 7}}, &why));
  // A forged negative or huge depth cannot turn the guard off.
  CHECK(parley::lineage::from_json({{"id", "x"}, {"depth", -5}})->depth == 0);
  CHECK(parley::lineage::from_json({{"id", "x"}, {"depth", 1ull << 62}})->depth == 1000000);

  const auto id = parley::random_id();
  CHECK(id.size() == 36);
  CHECK(id != parley::random_id());
  CHECK(parley::redact_url("wss://user:pw@host:1/path?token=s") == "wss://host:1/path");
}

TEST_CASE("a message to an agent without a transport becomes an agent_error naming the fix") {
  test::harness h;
  auto& a = h.agent;
  auto& start = a.new_state("start", true);
  auto& failed = a.new_state("failed");
  start.set_body([](parley::session&) {});
  start.when_event(parley::event_kind::text).go_to(start);
  start.when_agent_error().go_to(failed);
  failed.set_body([](parley::session& s) {
    s.reply(s.event().payload()["reason"].get<std::string>() + " | " + s.event().sender());
  });
  start.set_body([](parley::session& s) {
    if (s.event().kind() == parley::event_kind::text) s.ask_agent("http://other/", "hi");
  });
  a.start();
  auto s = h.session("s1");
  s->post(parley::event::text("go"));
  REQUIRE(h.replies.wait_count("s1", 1));
  const auto r = h.replies.of("s1")[0];
  CHECK(r.find("no 'a2a' agent transport") != std::string::npos);
  CHECK(r.find("http://other/") != std::string::npos);
}

TEST_CASE("lineage follows the event, and the loop guard refuses past max_agent_depth") {
  test::harness h;
  auto& a = h.agent;
  a.config().set("agent.max_agent_depth", 3);
  auto t = std::make_shared<kept_transport>();
  a.set_agent_transport("websocket", t);
  auto& start = a.new_state("start", true);
  auto& refused = a.new_state("refused");
  start.set_body([](parley::session& s) {
    if (s.event().kind() == parley::event_kind::text) s.send_to_agent("ws://b/", s.event().text());
  });
  start.when_event(parley::event_kind::text).go_to(start);
  start.when_agent_error().go_to(refused);
  refused.set_body([](parley::session& s) { s.reply("refused " + s.event().payload()["message_id"].get<std::string>()); });
  a.start();
  auto s = h.session("s1");
  s->post(parley::event::text("from a human"));
  h.idle(s);
  auto sent = t->copy();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].l.depth == 1);
  CHECK(sent[0].l.causation_id.empty());
  CHECK(sent[0].l.correlation_id == sent[0].l.id);
  CHECK(sent[0].l.sender_agent == "test");
  CHECK(sent[0].l.sender_session == parley::session_tag("s1"));  // never the id itself
  CHECK(sent[0].message == "from a human");

  s->post(agent_text("hop", with_id("m2", 2)));
  h.idle(s);
  sent = t->copy();
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].l.depth == 3);
  CHECK(sent[1].l.causation_id == "m2");
  CHECK(sent[1].l.correlation_id == "conv");

  s->post(agent_text("too deep", with_id("m3", 3)));
  REQUIRE(h.replies.wait_count("s1", 1));
  CHECK(t->copy().size() == 2);  // not sent
  CHECK(h.replies.of("s1")[0].rfind("refused ", 0) == 0);
  CHECK(h.state_of(s) == "refused");

  a.reset_session("s1");
  REQUIRE(h.replies.wait([&] { return !t->forgotten_ids().empty(); }));
  CHECK(t->forgotten_ids()[0] == "s1");
}

TEST_CASE("an agent message whose id was handled is dropped, and replies carry lineage") {
  test::harness h;
  std::vector<parley::reply> out;
  std::mutex m;
  auto& a = h.agent;
  // A second platform view: keep whole replies to see their lineage.
  h.platform = std::make_shared<parley::callback_platform>([&](parley::session& s, const parley::reply& r) {
    {
      std::lock_guard l(m);
      out.push_back(r);
    }
    h.replies.add(s.id(), r.plain_text());
  });
  a.use_platform(h.platform);
  auto& start = a.new_state("start", true);
  start.set_body([](parley::session& s) {
    if (s.event().is_agent_message()) s.reply("got " + s.event().text());
  });
  start.when_agent_message().go_to(start);
  a.start();
  auto s = h.session("s1");
  s->post(agent_text("one", with_id("dup", 4)));
  s->post(agent_text("one again", with_id("dup", 4)));
  s->post(agent_text("two", with_id("other", 0)));
  REQUIRE(h.replies.wait_count("s1", 2));
  h.idle(s);
  const auto got = h.replies.of("s1");
  REQUIRE(got.size() == 2);
  CHECK(got[0] == "got one");
  CHECK(got[1] == "got two");
  std::lock_guard l(m);
  REQUIRE(out.size() >= 2);
  REQUIRE(out[0].lineage);
  CHECK(out[0].lineage->causation_id == "dup");
  CHECK(out[0].lineage->correlation_id == "conv");
  CHECK(out[0].lineage->depth == 5);
  CHECK(out[0].lineage->sender_agent == "test");
}
