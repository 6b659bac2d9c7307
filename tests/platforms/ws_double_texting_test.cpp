// Double texting over a real WebSocket, recorded in a real SQLite file: a connection that asks
// for ?double_texting=reject gets BAF's error frame for a message sent while the last one is
// being answered, and that message is neither handled nor in the chat table; interrupt
// cancels the suspended body and answers the new message; a value that names no policy is
// refused at the handshake with 400.
#include <doctest/doctest.h>

#include "../runtime/gate.hpp"
#include "ws_test_bot.hpp"
#include "ws_test_client.hpp"

using namespace wstest;

namespace {

// idle --text--> work: "working on X", waits on the gate, "done X"; then back to idle.
struct gated_server {
  test::gate gate;
  parley::agent agent{"dtbot"};
  std::shared_ptr<parley::platforms::websocket_platform> ws;

  explicit gated_server(std::shared_ptr<parley::db_handler> db) {
    agent.config().set("agent.threads", 2);
    agent.config().set("log.level", "warn");
    auto& idle = agent.new_state("idle", true);
    auto& work = agent.new_state("work");
    idle.when_event(parley::event_kind::text).go_to(work);
    work.set_body([this](parley::session& s) -> parley::net::awaitable<void> {
      const std::string text = s.event().text();
      s.reply("working on " + text);
      co_await gate.wait();
      s.reply("done " + text);
    });
    work.go_to(idle);
    agent.use_db(std::move(db));
    ws = std::make_shared<parley::platforms::websocket_platform>(test_options());
    agent.use_platform(ws);
    agent.start();
  }
  ~gated_server() {
    agent.stop();
    agent.wait();
  }
  std::string said(client& c) { return c.read_action("agent_reply_str")["message"]; }
  // Connects `c` to session `id` with ?double_texting=`policy`, says "one", waits until its
  // body is suspended, then says "two": a double text.
  void double_text(client& c, const std::string& id, const std::string& policy) {
    REQUIRE(!c.connect(ws->port(), "/?session_id=" + id + "&double_texting=" + policy));
    c.say("one");
    CHECK(said(c) == "working on one");
    REQUIRE(gate.wait_begun(1));
    c.say("two");
  }
  // The user's messages in the chat table, in order.
  std::vector<std::string> user_rows(const std::string& id) {
    std::vector<std::string> out;
    const json exported = agent.export_session(id);  // the loop must not outlive it
    for (const auto& row : exported["chat"])
      if (row["is_user"]) out.push_back(row["content"]);
    return out;
  }
  std::vector<std::string> events(const std::string& id, const std::string& kind) {
    std::vector<std::string> out;
    const json exported = agent.export_session(id);
    for (const auto& row : exported["events"])
      if (row["event"] == kind) out.push_back(row["info"]);
    return out;
  }
};

}  // namespace

TEST_SUITE("websocket double texting") {

TEST_CASE("?double_texting=reject: an error frame naming the policy, the message is not handled or stored") {
  temp_dir dir;
  gated_server srv(sqlite_in(dir));
  net::io_context io;
  client c(io);
  srv.double_text(c, "dt1", "reject");
  json f = c.read();
  CHECK(f["action"] == "error");
  const std::string why = f["message"];
  CHECK(why.find("double texting policy: reject") != std::string::npos);
  CHECK(why.find("wait for its reply") != std::string::npos);
  srv.gate.open();
  CHECK(srv.said(c) == "done one");
  // The turn is over: the next message is answered.
  c.say("three");
  CHECK(srv.said(c) == "working on three");
  REQUIRE(srv.gate.wait_begun(2));
  srv.gate.open();
  CHECK(srv.said(c) == "done three");
  CHECK(srv.user_rows("dt1") == std::vector<std::string>{"one", "three"});
  const auto rejected = srv.events("dt1", "double_texting");
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0].find("rejected text 'two'") != std::string::npos);
}

TEST_CASE("?double_texting=interrupt: the suspended body is cancelled and the new message answered") {
  temp_dir dir;
  gated_server srv(sqlite_in(dir));
  net::io_context io;
  client c(io);
  srv.double_text(c, "dt2", "interrupt");
  CHECK(srv.said(c) == "working on two");  // never "done one"
  REQUIRE(srv.gate.wait_begun(2));
  srv.gate.open();
  CHECK(srv.said(c) == "done two");
  CHECK(srv.user_rows("dt2") == std::vector<std::string>{"one", "two"});
  const auto interrupted = srv.events("dt2", "double_texting");
  REQUIRE(interrupted.size() == 1);
  CHECK(interrupted[0].find("interrupted the body of state work") != std::string::npos);
}

TEST_CASE("?double_texting= with no such policy is refused at the handshake with 400") {
  temp_dir dir;
  gated_server srv(sqlite_in(dir));
  net::io_context io;
  client c(io);
  CHECK(c.connect(srv.ws->port(), "/?session_id=dt3&double_texting=sometimes"));
  CHECK(c.response().result() == http::status::bad_request);
  const std::string body = c.response().body();
  CHECK(body.find("double_texting must be enqueue, reject or interrupt") != std::string::npos);
}

}  // TEST_SUITE
