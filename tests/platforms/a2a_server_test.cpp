// The A2A server over real loopback sockets, beside the WebSocket platform's test bot: the task
// bound (the oldest ended tasks are forgotten), SubscribeToTask on a running task, a new
// session's greeting belonging to its first task, and a message of several parts counting as
// one for double texting.
#include <doctest/doctest.h>

#include "a2a_post.hpp"
#include "beast.hpp"
#include "ws_test_bot.hpp"

namespace http = boost::beast::http;
using parley::json;

namespace {

std::string post(std::uint16_t port, const json& body) { return test::a2a_post(port, body); }

json rpc(std::uint16_t port, const std::string& method, json params) {
  static int id = 0;
  return json::parse(post(port, {{"jsonrpc", "2.0"}, {"id", ++id}, {"method", method}, {"params", params}}));
}

json user(const std::string& text, const std::string& context = {}) {
  json m = {{"messageId", parley::random_id()}, {"role", "ROLE_USER"}, {"parts", {{{"text", text}}}}};
  if (!context.empty()) m["contextId"] = context;
  return m;
}

std::vector<std::string> texts(const json& task) {
  std::vector<std::string> out;
  for (const auto& a : task.value("artifacts", json::array())) out.push_back(a["parts"][0].value("text", "?"));
  return out;
}

}  // namespace

TEST_CASE("a2a: tasks are bounded, the oldest ended go first") {
  auto o = wstest::test_options();
  o.a2a.max_tasks = 3;
  wstest::server srv(o);
  std::vector<std::string> ids;
  std::string context;
  for (int i = 0; i < 5; ++i) {
    const json r = rpc(srv.port(), "SendMessage", {{"message", user("m" + std::to_string(i), context)}});
    REQUIRE(r.contains("result"));
    const json& t = r["result"]["task"];
    CHECK(t["status"]["state"] == "TASK_STATE_COMPLETED");
    if (i == 0) {
      context = t["contextId"];
      CHECK(texts(t).front() == "welcome");  // a new session's greeting is its first task's
    }
    ids.push_back(t["id"]);
  }
  CHECK(rpc(srv.port(), "GetTask", {{"id", ids[0]}})["error"]["code"] == -32001);
  CHECK(rpc(srv.port(), "GetTask", {{"id", ids[1]}})["error"]["code"] == -32001);
  CHECK(rpc(srv.port(), "GetTask", {{"id", ids[4]}})["result"]["id"] == ids[4]);
  CHECK(rpc(srv.port(), "ListTasks", {{"contextId", context}})["result"]["totalSize"] == 3);
}

TEST_CASE("a2a: the parts of one message are one message for double texting (reject)") {
  wstest::server srv(wstest::test_options(), nullptr, false, 2, [](parley::agent& a) {
    a.config().set("agent.double_texting", "reject");
  });
  json m = user("p1");
  m["parts"].push_back({{"text", "p2"}});
  const json r = rpc(srv.port(), "SendMessage", {{"message", m}});
  REQUIRE(r.contains("result"));
  const json& t = r["result"]["task"];
  CHECK(t["status"]["state"] == "TASK_STATE_COMPLETED");
  CHECK(t["artifacts"].size() == 3);  // the greeting, then each part echoed
}

TEST_CASE("a2a: SubscribeToTask follows a running task to its end") {
  wstest::server srv;
  const json started = rpc(srv.port(), "SendMessage",
                           {{"message", user("slow")}, {"configuration", {{"returnImmediately", true}}}});
  const std::string id = started["result"]["task"]["id"];
  const std::string sse = post(srv.port(), {{"jsonrpc", "2.0"}, {"id", "sub"}, {"method", "SubscribeToTask"},
                                            {"params", {{"id", id}}}});
  // data: lines, each a JSON-RPC response with our id: the task first, the final state last.
  std::vector<json> events;
  std::size_t at = 0;
  while ((at = sse.find("data: ", at)) != std::string::npos) {
    const auto end = sse.find("\n\n", at);
    events.push_back(json::parse(sse.substr(at + 6, end - at - 6)));
    at = end;
  }
  REQUIRE(events.size() >= 2);
  for (const auto& e : events) CHECK(e["id"] == "sub");
  CHECK(events.front()["result"].contains("task"));
  CHECK(events.back()["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED");
  const json done = rpc(srv.port(), "GetTask", {{"id", id}})["result"];
  const auto got = texts(done);
  CHECK(std::find(got.begin(), got.end(), "done") != got.end());
  CHECK(rpc(srv.port(), "SubscribeToTask", {{"id", id}})["error"]["code"] == -32004);
}
