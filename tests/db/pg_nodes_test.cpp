// Several greetings processes on one PostgreSQL database (issue 16), real processes on
// loopback: each session is served by one node; a client at another node is relayed to it;
// kill -9 of the owner moves the session to another node after the lease, in its state and
// with its reply numbers going on; a node paused past its lease (SIGSTOP) loses the session
// to another node, and after SIGCONT its late rows are refused and it stops serving it.
#include <doctest/doctest.h>

#include <csignal>
#include <set>

#include <parley/db/postgres_db_handler.hpp>

#include "pg_support.hpp"
#include "a2a_post.hpp"
#include "pg_nodes.hpp"
#include "support.hpp"
#include "ws_test_client.hpp"

using namespace std::chrono_literals;
using parley::json;

namespace {

using test::node_process;

// Session ids in distinct shards (a node owns shards, so two sessions of one shard always live
// on the same node).
std::vector<std::string> ids_in_distinct_shards(std::size_t n) {
  std::vector<std::string> out;
  std::set<int> used;
  for (int i = 0; out.size() < n; ++i) {
    auto id = "node-test-session-" + std::to_string(i) + "-7f3a9c";
    if (used.insert(parley::db::shard_of("greetings", id)).second) out.push_back(id);
  }
  return out;
}

bool has(const json& j, const std::string& text) { return j.dump().find(text) != std::string::npos; }

}  // namespace

TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: three processes, one owner per session, kill -9 and SIGSTOP move sessions") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  std::vector<node_process> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(test::start_node(db_url));
  const auto ids = ids_in_distinct_shards(6);
  wstest::net::io_context io;
  // Connects until the node takes the client (a node answers 503 while another owns the
  // session), reading the nodes' logs meanwhile (a node whose log pipe fills would stall).
  auto retry_connect = [&](std::unique_ptr<wstest::client>& c, std::uint16_t port, const std::string& target) {
    const auto end = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < end) {
      c = std::make_unique<wstest::client>(io);
      if (!c->connect(port, target)) return true;
      for (auto& n : nodes) n.proc->read_err_until([](const std::string&) { return false; }, 20ms);
    }
    return false;
  };

  // Sessions spread over the nodes: session i at node i % 3, each greeted and answered there.
  std::vector<std::unique_ptr<wstest::client>> clients;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto c = std::make_unique<wstest::client>(io);
    REQUIRE(!c->connect(nodes[i % 3].port, "/?session_id=" + ids[i]));
    auto greeting = c->read();
    CHECK(has(greeting, "greetings bot"));
    CHECK(greeting["seq"] == 1);
    c->say("hello");
    CHECK(has(c->read(), "How are you?"));
    clients.push_back(std::move(c));
  }
  // A client at another node is relayed to the owner: its message is handled there, and the
  // reply reaches both connections of the session, one on each node.
  {
    wstest::client other(io);
    REQUIRE(!other.connect(nodes[2].port, "/?session_id=" + ids[4]));
    other.say("good");
    CHECK(has(other.read(), "glad to hear that"));
    // (After the options of the last turn, which that client did not read yet.)
    bool mirrored = false;
    for (int i = 0; i < 4 && !mirrored; ++i) mirrored = has(clients[4]->read(), "glad to hear that");
    CHECK(mirrored);
  }
  // A handshake forwarded already is refused by a node that does not own the session (never a
  // second hop), naming the situation.
  {
    wstest::client other(io);
    auto ec = other.connect(nodes[1].port, "/?session_id=" + ids[0], {{"X-Parley-Forwarded", "test"}});
    REQUIRE(ec);
    CHECK(other.response().result_int() == 503);
    CHECK(other.response().body().find("owned by another node") != std::string::npos);
  }
  // A client of node 0's session 3, relayed by node 2: when node 0 dies, its link closes with
  // 1012 (reconnect), so the client goes to wherever the session lives next.
  wstest::client relayed(io);
  REQUIRE(!relayed.connect(nodes[2].port, "/?session_id=" + ids[3]));

  // kill -9 of node 0: its sessions (0 and 3) move to node 1 once the lease lapses, in their
  // state (waiting for the mood), numbering their replies on.
  nodes[0].proc->kill(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  // Until the lease lapses node 1 answers 503; the client retries, with its cursor.
  std::unique_ptr<wstest::client> moved;
  REQUIRE(retry_connect(moved, nodes[1].port, "/?session_id=" + ids[0] + "&since=3"));
  const auto took = std::chrono::steady_clock::now() - killed;
  MESSAGE("takeover after kill -9: " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 15s);
  moved->say("good");
  auto glad = moved->read();
  CHECK(has(glad, "glad to hear that"));  // the state survived the move
  CHECK(glad["seq"].get<int>() > 3);
  CHECK(relayed.read_until_closed(nullptr, 10s) != wstest::beast::error::timeout);
  CHECK(relayed.reason().code == 1012);

  // SIGSTOP of node 2 past its lease: its session 2 moves to node 1; after SIGCONT node 2 stops
  // serving it (its connection is closed) and what it writes late is refused.
  nodes[2].proc->kill(SIGSTOP);
  std::unique_ptr<wstest::client> stolen;
  REQUIRE(retry_connect(stolen, nodes[1].port, "/?session_id=" + ids[2]));
  nodes[2].proc->kill(SIGCONT);
  // The paused node's old connection for session 2 is closed (the session moved).
  auto ended = clients[2]->read_until_closed(nullptr, 10s);
  CHECK(ended != wstest::beast::error::timeout);
  CHECK(nodes[2].proc->read_err_until(
      [](const std::string& log) { return log.find("no longer owns") != std::string::npos; }, 10s));
  stolen->say("good");
  CHECK(has(stolen->read(), "glad to hear that"));

  // Every reply of each moved session is stored once: numbers 1..N without a repeat.
  auto c = connect(db_url);
  for (const auto& id : {ids[0], ids[2]}) {
    auto r = batch(*c, {{"SELECT count(*), count(DISTINCT c.seq), max(c.seq) FROM chat c JOIN session s "
                         "ON s.id = c.session_id WHERE s.session_id = $1 AND c.seq IS NOT NULL",
                         {id}}});
    REQUIRE(r.error.empty());
    CHECK(r.results[0].integer(0, 0) == r.results[0].integer(0, 1));
    CHECK(r.results[0].integer(0, 0) == r.results[0].integer(0, 2));
  }
  c->close();
  for (std::size_t i = 1; i < nodes.size(); ++i) nodes[i].proc->kill(SIGTERM);
}

namespace {

parley::json send_message(const std::string& method, const std::string& text, const std::string& context) {
  parley::json m = {{"messageId", parley::random_id()}, {"role", "ROLE_USER"}, {"parts", {{{"text", text}}}}};
  if (!context.empty()) m["contextId"] = context;
  return {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", {{"message", m}}}};
}

}  // namespace

// An A2A client may reach any node: a message for a context another node owns is relayed to
// it, as a blocking answer and as an SSE stream, and handled there in the context's state.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres nodes: an A2A message for another node's context is relayed to its owner") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  std::vector<node_process> nodes;
  for (int i = 0; i < 2; ++i) nodes.push_back(test::start_node(db_url));
  // A context made at node 0, which owns it from then on.
  auto first = parley::json::parse(test::a2a_post(nodes[0].port, send_message("SendMessage", "hello", "")));
  INFO(first.dump());
  REQUIRE(first.contains("result"));
  const auto task = first["result"].contains("task") ? first["result"]["task"] : first["result"];
  const std::string context = task.value("contextId", "");
  REQUIRE(!context.empty());
  REQUIRE(first.dump().find("How are you?") != std::string::npos);
  // The next message, at node 1: relayed to node 0, answered in the context's state ("ask").
  const auto second = test::a2a_post(nodes[1].port, send_message("SendMessage", "good", context));
  INFO(second);
  CHECK(second.find("glad to hear that") != std::string::npos);
  CHECK(second.find("owned by another node") == std::string::npos);
  // Streaming, at node 1 again: the owner's SSE events come through.
  const auto stream = test::a2a_post(nodes[1].port, send_message("SendStreamingMessage", "hello", context));
  INFO(stream);
  CHECK(stream.find("data:") != std::string::npos);
  CHECK(stream.find("TASK_STATE_COMPLETED") != std::string::npos);
  CHECK(stream.find(context) != std::string::npos);
  // The task made at node 0, asked about at node 1: its id names its context, so node 1 relays
  // GetTask, CancelTask and SubscribeToTask to node 0, where the task lives (node 1 alone would
  // answer "task not found").
  const std::string task_id = task.value("id", "");
  auto rpc = [](const std::string& method, const std::string& id) {
    return parley::json{{"jsonrpc", "2.0"}, {"id", 9}, {"method", method}, {"params", {{"id", id}}}};
  };
  const auto got = parley::json::parse(test::a2a_post(nodes[1].port, rpc("GetTask", task_id)));
  INFO(got.dump());
  REQUIRE(got.contains("result"));
  CHECK(got["result"].value("id", "") == task_id);
  CHECK(got["result"]["status"].value("state", "") == "TASK_STATE_COMPLETED");
  CHECK(got.dump().find("How are you?") != std::string::npos);
  const auto cancel = test::a2a_post(nodes[1].port, rpc("CancelTask", task_id));
  INFO(cancel);
  CHECK(cancel.find("cannot be canceled") != std::string::npos);
  const auto subscribe = test::a2a_post(nodes[1].port, rpc("SubscribeToTask", task_id));
  INFO(subscribe);
  CHECK(subscribe.find("terminal state") != std::string::npos);
  // Node 0 has the whole conversation; node 1 made no session of its own.
  for (auto& n : nodes) n.proc->read_err_until([](const std::string&) { return false; }, 20ms);
  CHECK(nodes[1].proc->err().find("relayed") == std::string::npos);  // a debug line only
}
