// Two real agents talking BAF's WebSocket way: each a websocket_platform on 127.0.0.1:0 with
// its own SQLite file, in this process. The front desk ("desk") hands what a human says to
// the specialist, relays the answer, and reports failures; the specialist answers every agent
// message. Also raw clients against the specialist for duplicates and forged lineage.
#include <doctest/doctest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/websocket_agents.hpp>
#include <parley/platforms/websocket_platform.hpp>

#include "../platforms/ws_test_client.hpp"
#include "agents_support.hpp"

using namespace std::chrono_literals;
using agents_test::desk;
using agents_test::specialist;
using agents_test::temp_folder;

TEST_CASE("a message goes to another agent and its answer comes back with the URL as sender") {
  temp_folder dir;
  specialist b(dir.file("b.db"));
  desk a(dir.file("a.db"), b.url());
  auto s = a.session("h1");
  s->post(parley::event::text("what is 6x7?"));
  REQUIRE(a.replies.wait("h1", 1));
  CHECK(a.replies.of("h1")[0] == "from " + b.url() + ": answer to what is 6x7?");
  a.stop();
  b.stop();
  // Both sides recorded both messages, with one lineage.
  auto out = agents_test::rows(dir.file("a.db"));
  auto in = agents_test::rows(dir.file("b.db"));
  REQUIRE(out.size() == 2);
  REQUIRE(in.size() == 2);
  CHECK(out[0].direction == "out");
  CHECK(out[0].status == "sent");
  CHECK(out[0].depth == 1);
  CHECK(out[0].causation_id.empty());
  CHECK(in[0].direction == "in");
  CHECK(in[0].message_id == out[0].message_id);
  CHECK(in[0].sender_agent == "desk");
  CHECK(in[1].direction == "out");
  CHECK(in[1].causation_id == out[0].message_id);
  CHECK(in[1].depth == 2);
  CHECK(out[1].direction == "in");
  CHECK(out[1].message_id == in[1].message_id);
  CHECK(out[1].peer == b.url());
  CHECK(out[1].correlation_id == out[0].correlation_id);

  // parley-inspect follows the chain from the answer back to the question, over both files.
  auto r = test::run({PARLEY_INSPECT_BIN, dir.file("a.db"), dir.file("b.db"), "chain",
                      out[1].message_id, "--json"});
  REQUIRE(r.code == 0);
  auto chain = parley::json::parse(r.out);
  REQUIRE(chain.size() == 4);
  CHECK(chain[0]["file"] == "a.db");
  CHECK(chain[0]["direction"] == "out");
  CHECK(chain[0]["message_id"] == out[0].message_id);
  CHECK(chain[1]["file"] == "b.db");
  CHECK(chain[1]["direction"] == "in");
  CHECK(chain[3]["file"] == "a.db");
  CHECK(chain[3]["message_id"] == out[1].message_id);
  CHECK(chain[3]["depth"] == 2);
  r = test::run({PARLEY_INSPECT_BIN, dir.file("a.db"), dir.file("b.db"), "chain",
                 out[0].message_id, "--color", "never"});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("answer to what is 6x7?") != std::string::npos);
  CHECK(r.out.find("specialist") != std::string::npos);
  r = test::run({PARLEY_INSPECT_BIN, dir.file("a.db"), "chain", "no-such-id"});
  CHECK(r.code == 1);
  CHECK(r.err.find("no agent message has id 'no-such-id'") != std::string::npos);
}

TEST_CASE("two agents that keep answering each other stop at agent.max_agent_depth") {
  temp_folder dir;
  specialist b(dir.file("b.db"));
  desk a(dir.file("a.db"), b.url());
  auto s = a.session("h1");
  s->post(parley::event::text("loop"));
  REQUIRE(test::eventually([&] {
    for (const auto& r : a.replies.of("h1"))
      if (r.rfind("error: ", 0) == 0) return true;
    return false;
  }));
  const auto got = a.replies.of("h1");
  CHECK(got.back().find("loop guard") != std::string::npos);
  CHECK(got.back().find("hop 9") != std::string::npos);
  a.stop();
  b.stop();
  auto rows = agents_test::rows(dir.file("a.db"));
  REQUIRE(!rows.empty());
  CHECK(rows.back().status == "refused");
  CHECK(rows.back().depth == 9);
  int sent = 0;
  for (const auto& r : rows) sent += r.direction == "out" && r.status == "sent";
  CHECK(sent == 4);  // depths 1, 3, 5, 7 (the specialist's answers are 2, 4, 6, 8)
}

TEST_CASE("an unreachable agent, a refused handshake and a bad URL reach the session as errors") {
  temp_folder dir;
  specialist b(dir.file("b.db"), /*token=*/"secret");
  desk a(dir.file("a.db"), b.url());
  auto s = a.session("h1");
  s->post(parley::event::text("to ws://127.0.0.1:1/ hello"));
  REQUIRE(a.replies.wait("h1", 1));
  CHECK(a.replies.of("h1")[0].find("error: cannot connect to ws://127.0.0.1:1/") == 0);
  s->post(parley::event::text("hello"));  // to the specialist, without its token
  REQUIRE(a.replies.wait("h1", 2));
  CHECK(a.replies.of("h1")[1].find("refused the WebSocket handshake: HTTP 401") != std::string::npos);
  s->post(parley::event::text("to http://127.0.0.1:1/ hello"));
  REQUIRE(a.replies.wait("h1", 3));
  CHECK(a.replies.of("h1")[2].find("is not a WebSocket URL") != std::string::npos);
}

TEST_CASE("messages beyond the link's queue fail as agent_errors, and the rest get answers") {
  temp_folder dir;
  specialist b(dir.file("b.db"));
  desk a(dir.file("a.db"), b.url(), {}, /*queue_limit=*/2);
  auto s = a.session("h1");
  s->post(parley::event::text("burst 4"));  // queued at once, before the link connects
  REQUIRE(a.replies.wait("h1", 4));
  int full = 0, answered = 0;
  for (const auto& r : a.replies.of("h1")) {
    full += r.find("error: the queue to " + b.url() + " is full") == 0;
    answered += r == "from " + b.url() + ": answer to burst";
  }
  CHECK(full == 2);
  CHECK(answered == 2);
}

TEST_CASE("the desk's token opens a protected agent") {
  temp_folder dir;
  specialist b(dir.file("b.db"), "secret");
  desk a(dir.file("a.db"), b.url(), "secret");
  auto s = a.session("h1");
  s->post(parley::event::text("hi"));
  REQUIRE(a.replies.wait("h1", 1));
  CHECK(a.replies.of("h1")[0] == "from " + b.url() + ": answer to hi");
}

TEST_CASE("a peer that goes away reaches the session as an agent_error, and reset closes the link") {
  temp_folder dir;
  specialist b(dir.file("b.db"));
  desk a(dir.file("a.db"), b.url());
  auto s = a.session("h1");
  s->post(parley::event::text("hi"));
  REQUIRE(a.replies.wait("h1", 1));
  CHECK(b.platform->stats().connections == 1);
  a.agent.reset_session("h1");
  REQUIRE(test::eventually([&] { return b.platform->stats().connections == 0; }));

  s = a.session("h1");
  s->post(parley::event::text("again"));
  REQUIRE(a.replies.wait("h1", 2));
  REQUIRE(test::eventually([&] { return b.platform->stats().connections == 1; }));
  b.stop();
  REQUIRE(a.replies.wait("h1", 3));
  CHECK(a.replies.of("h1")[2].find("error: the agent at " + b.url() + " closed the connection (1001") == 0);
}

TEST_CASE("the specialist drops an agent message it handled already and answers with lineage") {
  temp_folder dir;
  specialist b(dir.file("b.db"));
  wstest::net::io_context io;
  auto frame = [](const std::string& id, const std::string& text) {
    return parley::json{{"action", "agent_reply_str"}, {"message", text}, {"id", id},
                        {"causation_id", ""},          {"correlation_id", "c1"},
                        {"sender", {{"agent", "raw"}, {"session", "r1"}}}, {"depth", 3}};
  };
  {
    wstest::client c(io);
    REQUIRE(!c.connect(b.platform->port(), "/?session_id=raw-1"));
    c.send(frame("x1", "one"));
    auto r = c.read_action("agent_reply_str");
    CHECK(r["message"] == "answer to one");
    CHECK(r["causation_id"] == "x1");
    CHECK(r["correlation_id"] == "c1");
    CHECK(r["depth"] == 4);
    CHECK(r["sender"]["agent"] == "specialist");
    c.send(frame("x1", "one again"));
    c.send(frame("x2", "two"));
    r = c.read_action("agent_reply_str");
    CHECK(r["message"] == "answer to two");
  }
  {
    // A resend after reconnecting is dropped too.
    wstest::client c(io);
    REQUIRE(!c.connect(b.platform->port(), "/?session_id=raw-1"));
    c.send(frame("x2", "two again"));
    c.send(frame("x3", "three"));
    auto r = c.read_action("agent_reply_str");
    CHECK(r["message"] == "answer to three");
  }
}

TEST_CASE("forged lineage of the wrong types gets an error frame and the agent keeps serving") {
  temp_folder dir;
  specialist b(dir.file("b.db"));
  wstest::net::io_context io;
  wstest::client c(io);
  REQUIRE(!c.connect(b.platform->port(), "/?session_id=raw-2"));
  c.send({{"action", "agent_reply_str"}, {"message", "x"}, {"id", 5}});
  auto e = c.read_action("error");
  CHECK(e["message"].get<std::string>().find("'id'") != std::string::npos);
  c.send({{"action", "agent_reply_str"}, {"message", "x"}, {"id", "f1"}, {"depth", "deep"}});
  e = c.read_action("error");
  CHECK(e["message"].get<std::string>().find("'depth' must be an integer") != std::string::npos);
  c.send({{"action", "agent_reply_str"}, {"message", "x"}, {"id", "f2"}, {"sender", 3}});
  e = c.read_action("error");
  CHECK(e["message"].get<std::string>().find("'sender'") != std::string::npos);
  // A negative depth is taken as 0: the answer is hop 1.
  c.send({{"action", "agent_reply_str"}, {"message", "fine"}, {"id", "f3"}, {"depth", -40}});
  auto r = c.read_action("agent_reply_str");
  CHECK(r["message"] == "answer to fine");
  CHECK(r["depth"] == 1);
  // BAF's plain frame still works, and gets a plain answer.
  c.send({{"action", "agent_reply_str"}, {"message", "baf"}});
  r = c.read_action("agent_reply_str");
  CHECK(r["message"] == "answer to baf");
  CHECK_FALSE(r.contains("depth"));
}

TEST_CASE("wss:// links verify the peer's certificate unless told not to") {
  temp_folder dir;
  const auto cert = dir.file("cert.pem"), key = dir.file("key.pem");
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -keyout '" + key + "' -out '" + cert + "' >/dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "needs the openssl command (./dev test installs it)");
  specialist b(dir.file("b.db"), {}, cert, key);
  REQUIRE(b.url().rfind("wss://", 0) == 0);
  {
    desk a(dir.file("a.db"), b.url());  // verifies: a self-signed certificate is refused
    auto s = a.session("h1");
    s->post(parley::event::text("hi"));
    REQUIRE(a.replies.wait("h1", 1));
    CHECK(a.replies.of("h1")[0].find("error: the TLS handshake with " + b.url() + " failed") == 0);
  }
  desk a(dir.file("a2.db"), b.url(), {}, 256, /*tls_verify=*/false);
  auto s = a.session("h1");
  s->post(parley::event::text("over tls"));
  REQUIRE(a.replies.wait("h1", 1));
  CHECK(a.replies.of("h1")[0] == "from " + b.url() + ": answer to over tls");
}
