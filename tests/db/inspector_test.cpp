// The web inspector's server (docs/inspector.md) over real loopback sockets, on databases
// written by the real handler, SQLite or PostgreSQL (backend.hpp: the BACKEND_CASEs are built
// into parley_db_tests and parley_pg_tests): the API (sessions, one session's rows, diagrams, errors, the
// token), live follow while the greetings bot writes, whether it is on, and parley-inspect serve.
// No answer may hold a session id: they are bearer secrets.
#include <doctest/doctest.h>

#include <csignal>
#include <algorithm>
#include <functional>
#include <regex>

#include <parley/log.hpp>
#include <parley/platforms/inspector.hpp>

#include "backend.hpp"
#include "greetings_bot.hpp"
#include "ws_hub.hpp"
#include "support.hpp"
#include "ws_test_client.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Session ids a test can look for in every answer.
const std::string alice_id = "secret-alice-5b1f0e7c9a2d4e60";
const std::string bob_id = "secret-bob-0c6d2e9f1a3b4c57";
const std::string carol_id = "secret-carol-93e1d0b7c5a2f468";

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
bool has(const json& j, const std::string& part) {
  return j.is_string() && has(j.get<std::string>(), part);
}
std::string str(const json& j) { return j.get<std::string>(); }

wstest::beast::error_code websocket_error_declined() {
  return wstest::websocket::error::upgrade_declined;
}

// A database with three greetings sessions, a reasoning step, an error and an agent message
// from alice's session to bob's, all through the handler of the backend.
void write_sessions(const test::backend& db) {
  test::harness h(db.handler(), greetings::define);
  auto a = h.session(alice_id, "alice");
  h.say(alice_id, "hello");
  REQUIRE(h.got.wait(alice_id, 2));
  h.say(alice_id, "good");
  REQUIRE(h.got.wait(alice_id, 3));
  auto b = h.session(bob_id, "bob");
  h.say(bob_id, "hello");
  REQUIRE(h.got.wait(bob_id, 2));
  auto c = h.session(carol_id, "carol");
  REQUIRE(h.got.wait(carol_id, 1));
  parley::agent_message_record out;
  out.direction = "out";
  out.protocol = "websocket";
  out.peer = "ws://127.0.0.1:1/";
  out.lineage.id = "msg-1";
  out.lineage.correlation_id = "conv-1";
  out.lineage.sender_agent = "testbot";
  out.lineage.sender_session = parley::session_tag(alice_id);
  out.content = "hi bob";
  out.status = "sent";
  test::on_strand(*a, [&] {
    h.agent.db()->save_reasoning_event(*a, "reasoning_step",
                               {{"kind", "llm_call"}, {"step_kind", "llm_call"}, {"run_id", "run-1"},
                                {"step_number", 1}, {"prompt_tokens", 100},
                                {"completion_tokens", 20}, {"latency_ms", 12.5},
                                {"summary", "asked the model"}});
    h.agent.db()->save_event(a.get(), "error", "boom");
    h.agent.db()->save_agent_message(*a, out);
  });
  auto in = out;
  in.direction = "in";
  in.status = "handled";
  test::on_strand(*b, [&] { h.agent.db()->save_agent_message(*b, in); });
  h.stop();
}

struct server {
  explicit server(const std::string& db, std::string token = "T")
      : srv({db, "127.0.0.1", 0, token}), token_(std::move(token)) {
    srv.start();
  }
  // GET with the token as a query parameter; the body must never hold a session id.
  wstest::http::response<wstest::http::string_body> get(const std::string& target) {
    const char sep = target.find('?') == std::string::npos ? '?' : '&';
    auto res = wstest::http_get(io, srv.port(), target + sep + "token=" + token_);
    for (const auto& id : {alice_id, bob_id, carol_id}) CHECK_FALSE(has(res.body(), id));
    return res;
  }
  json get_json(const std::string& target, unsigned status = 200) {
    auto res = get(target);
    INFO(target << " -> " << res.body());
    CHECK(res.result_int() == status);
    CHECK(res[wstest::http::field::content_type] == "application/json");
    return json::parse(res.body());
  }

  wstest::net::io_context io;
  parley::platforms::inspector_server srv;
  std::string token_;
};

}  // namespace

BACKEND_CASE("the inspector's API lists, searches and pages sessions, with their counts") {
  test::backend db;
  if (db.skipped()) return;
  const auto path = db.where();
  write_sessions(db);
  server s(path);

  auto all = s.get_json("/inspect/api/sessions");
  CHECK(all["total"] == 3);
  CHECK(all["offset"] == 0);
  CHECK(all["limit"] == 50);
  CHECK(all["agents"] == json::array({"testbot"}));
  REQUIRE(all["sessions"].size() == 3);
  // Newest activity first.
  for (std::size_t i = 1; i < all["sessions"].size(); ++i)
    CHECK(str(all["sessions"][i - 1]["last_activity"]) >= str(all["sessions"][i]["last_activity"]));
  json alice;
  for (const auto& x : all["sessions"])
    if (x["user"] == "alice") alice = x;
  REQUIRE(alice.is_object());
  CHECK(alice["tag"] == parley::session_tag(alice_id));
  CHECK(alice["agent"] == "testbot");
  CHECK(alice["platform"] == "test");
  CHECK(alice["state"] == "ready");
  CHECK(alice["closed"].is_null());
  CHECK(alice["turns"] == 2);   // "hello", "good"
  CHECK(alice["errors"] == 1);  // the "error" event
  CHECK(alice["tokens"] == 120);
  CHECK(alice["row"].get<std::int64_t>() > 0);
  for (const char* k : {"name", "started", "last_activity"}) CHECK(alice.contains(k));

  // Search: by user (exact), by part of the user, by exact id, by tag with and without '#'.
  auto one = [&](const std::string& query) {
    auto j = s.get_json("/inspect/api/sessions?" + query);
    INFO(query);
    REQUIRE(j["sessions"].size() == 1);
    CHECK(j["total"] == 1);
    return j["sessions"][0]["user"].get<std::string>();
  };
  CHECK(one("user=bob") == "bob");
  CHECK(one("q=aro") == "carol");
  CHECK(one("q=" + alice_id) == "alice");
  CHECK(one("q=%23" + parley::session_tag(bob_id).substr(1)) == "bob");
  CHECK(one("q=" + parley::session_tag(bob_id).substr(1)) == "bob");
  CHECK(s.get_json("/inspect/api/sessions?state=ask")["total"] == 1);  // bob said hello only
  CHECK(s.get_json("/inspect/api/sessions?state=nowhere")["sessions"].empty());
  CHECK(s.get_json("/inspect/api/sessions?agent=other")["total"] == 0);
  CHECK(s.get_json("/inspect/api/sessions?since=2000-01-01")["total"] == 3);
  CHECK(s.get_json("/inspect/api/sessions?until=2000-01-01")["total"] == 0);
  CHECK(s.get_json("/inspect/api/sessions?since=2999")["total"] == 0);
  CHECK(s.get_json("/inspect/api/sessions?until=2999-01-01%2009:00")["total"] == 3);

  // Paging: the total stays, the page moves.
  auto p1 = s.get_json("/inspect/api/sessions?limit=2");
  auto p2 = s.get_json("/inspect/api/sessions?limit=2&offset=2");
  CHECK(p1["total"] == 3);
  CHECK(p1["sessions"].size() == 2);
  CHECK(p2["sessions"].size() == 1);
  CHECK(p2["sessions"][0]["row"] != p1["sessions"][0]["row"]);
  CHECK(p2["sessions"][0]["row"] != p1["sessions"][1]["row"]);

  // Bad parameters: 400 naming the parameter.
  CHECK(has(s.get_json("/inspect/api/sessions?limit=0", 400)["error"], "limit"));
  CHECK(has(s.get_json("/inspect/api/sessions?offset=-1", 400)["error"], "offset"));
  CHECK(has(s.get_json("/inspect/api/sessions?since=yesterday", 400)["error"], "since"));
  CHECK(has(s.get_json("/inspect/api/nothing", 404)["error"], "/inspect/api/sessions"));
}

BACKEND_CASE("the inspector's API gives a session's rows after a cursor, with reasoning and agent messages") {
  test::backend db;
  if (db.skipped()) return;
  const auto path = db.where();
  write_sessions(db);
  server s(path);
  std::map<std::string, std::int64_t> rows;
  const auto list = s.get_json("/inspect/api/sessions");
  for (const auto& x : list["sessions"]) rows[str(x["user"])] = x["row"];
  const auto alice = std::to_string(rows["alice"]);

  auto all = s.get_json("/inspect/api/session/" + alice);
  CHECK(all["session"]["user"] == "alice");
  CHECK(all["more"] == false);
  const auto& r = all["rows"];
  REQUIRE(r.size() >= 10);
  std::map<std::string, json> first;  // the first row of each type
  std::int64_t previous = 0;
  for (const auto& row : r) {
    CHECK(row["id"].get<std::int64_t>() > previous);  // id order
    previous = row["id"];
    CHECK(row.contains("timestamp"));
    if (!first.count(str(row["type"]))) first[str(row["type"])] = row;
  }
  CHECK(all["last_id"] == previous);
  for (const char* t : {"chat", "intent", "transition", "event", "reasoning", "agent_message"})
    CHECK_MESSAGE(first.count(t), t);
  CHECK(first["chat"]["is_user"] == false);  // the greeting
  CHECK(first["chat"]["message_type"] == "str");
  CHECK(has(first["chat"]["content"], "greetings bot"));
  CHECK(first["intent"]["message"] == "hello");
  CHECK(first["intent"]["intent"] == "hello");
  CHECK(first["intent"]["score"].get<double>() > 0.5);
  CHECK(first["intent"]["parameters"].is_array());
  CHECK(first["transition"]["source"] == "initial");
  CHECK(first["transition"]["dest"] == "ask");
  CHECK(first["transition"]["condition"] == "intent hello");
  CHECK(first["event"]["event"] == "error");
  CHECK(first["event"]["info"] == "boom");
  const auto& step = first["reasoning"];
  CHECK(step["run_id"] == "run-1");
  CHECK(step["step_number"] == 1);
  CHECK(step["prompt_tokens"] == 100);
  CHECK(step["completion_tokens"] == 20);
  CHECK(step["latency_ms"] == 12.5);
  CHECK(step["summary"] == "asked the model");
  CHECK(step["payload"].is_string());
  CHECK(json::parse(step["payload"].get<std::string>())["run_id"] == "run-1");
  const auto& m = first["agent_message"];
  CHECK(m["direction"] == "out");
  CHECK(m["message_id"] == "msg-1");
  CHECK(m["content"] == "hi bob");
  CHECK(m["sender_session"] == parley::session_tag(alice_id));
  CHECK(m["other_session"] == rows["bob"]);  // bob's session received it, in the same file
  // Bob's copy points back.
  auto bob = s.get_json("/inspect/api/session/" + std::to_string(rows["bob"]));
  bool linked = false;
  for (const auto& row : bob["rows"])
    if (row["type"] == "agent_message") linked = row["other_session"] == rows["alice"];
  CHECK(linked);

  // The cursor: pages of 3 after each last_id give the same rows, in order.
  json paged = json::array();
  std::int64_t after = 0;
  for (int guard = 0; guard < 100; ++guard) {
    auto page = s.get_json("/inspect/api/session/" + alice + "?limit=3&after=" + std::to_string(after));
    CHECK(page["rows"].size() <= 3);
    for (const auto& row : page["rows"]) paged.push_back(row);
    after = page["last_id"];
    if (!page["more"].get<bool>()) break;
  }
  CHECK(paged == r);
  auto none = s.get_json("/inspect/api/session/" + alice + "?after=" + std::to_string(previous));
  CHECK(none["rows"].empty());
  CHECK(none["last_id"] == previous);

  CHECK(has(s.get_json("/inspect/api/session/999999", 404)["error"], "999999"));
  CHECK(has(s.get_json("/inspect/api/session/abc", 400)["error"], "row"));
  CHECK(has(s.get_json("/inspect/api/session/" + alice + "?limit=0", 400)["error"], "limit"));
  CHECK(has(s.get_json("/inspect/api/session/" + alice + "?limit=20001", 400)["error"], "20000"));
  CHECK(s.get_json("/inspect/api/session/" + alice + "?limit=20000")["rows"] == r);
}

BACKEND_CASE("the inspector draws diagrams, serves its page, and asks for the token") {
  test::backend db;
  if (db.skipped()) return;
  const auto path = db.where();
  write_sessions(db);
  server s(path);
  const auto alice = std::to_string(s.get_json("/inspect/api/sessions?user=alice")["sessions"][0]["row"].get<std::int64_t>());

  auto svg = s.get("/inspect/api/diagram.svg?session=" + alice);
  CHECK(svg.result_int() == 200);
  CHECK(svg[wstest::http::field::content_type] == "image/svg+xml");
  CHECK(has(svg.body(), "<svg"));
  for (const char* state : {"initial", "ask", "ready"}) CHECK(has(svg.body(), state));
  auto whole = s.get("/inspect/api/diagram.svg?agent=testbot");
  CHECK(whole.result_int() == 200);
  CHECK(has(whole.body(), "<svg"));
  auto dot = s.get("/inspect/api/diagram?session=" + alice);
  CHECK(dot.result_int() == 200);
  CHECK(has(dot.body(), "digraph"));
  auto mermaid = s.get("/inspect/api/diagram?session=" + alice + "&format=mermaid");
  CHECK(has(mermaid.body(), "stateDiagram"));
  CHECK(has(s.get_json("/inspect/api/diagram?format=png", 400)["error"], "format"));
  CHECK(s.get_json("/inspect/api/diagram.svg?session=999999", 404).contains("error"));
  CHECK(has(s.get_json("/inspect/api/diagram.svg?agent=nobody", 400)["error"], "nobody"));

  // The page's files need no token (they hold no data); the API does.
  auto page = wstest::http_get(s.io, s.srv.port(), "/inspect");
  CHECK(page.result_int() == 200);
  CHECK(has(std::string(page["Content-Security-Policy"]), "default-src 'none'"));
  CHECK(wstest::http_get(s.io, s.srv.port(), "/inspect/inspector.js").result_int() == 200);
  CHECK(wstest::http_get(s.io, s.srv.port(), "/inspect/inspector.css").result_int() == 200);
  auto root = wstest::http_get(s.io, s.srv.port(), "/?token=T");
  CHECK(root.result_int() == 302);
  CHECK(root[wstest::http::field::location] == "/inspect?token=T");
  auto bare = wstest::http_get(s.io, s.srv.port(), "/inspect/api/sessions");
  CHECK(bare.result_int() == 401);
  CHECK(has(json::parse(bare.body())["error"], "token"));
  CHECK(wstest::http_get(s.io, s.srv.port(), "/inspect/api/sessions?token=wrong").result_int() == 401);
  CHECK(wstest::http_get(s.io, s.srv.port(), "/inspect/api/sessions",
                         {{"Authorization", "Bearer T"}})
            .result_int() == 200);
  wstest::client live(s.io);
  CHECK(live.connect(s.srv.port(), "/inspect/live") == websocket_error_declined());
  CHECK(live.status() == wstest::http::status::unauthorized);
}

#if !PARLEY_TEST_PG  // not about the database
TEST_CASE("the inspector answers 503 naming the fix when it has no database to read") {
  test::temp_dir dir;
  server none("");
  CHECK(has(none.get_json("/inspect/api/sessions", 503)["error"], "--db"));
  server missing(dir.file("missing.db"));
  CHECK(has(missing.get_json("/inspect/api/sessions", 503)["error"], "does not exist"));
  // The page itself is still served.
  CHECK(wstest::http_get(none.io, none.srv.port(), "/inspect").result_int() == 200);
}
#endif

BACKEND_CASE("the inspector follows a session live while the greetings bot writes it") {
  test::backend db;
  if (db.skipped()) return;
  const auto path = db.where();
  // parley::run gives the WebSocket platform's inspector the --db database.
  test::child bot({PARLEY_GREETINGS_BIN, "--db", path, "--port", "0", "--log-level", "info"});
  const auto port = test::listening_port(bot);
  INFO("the bot's log: " << bot.err());
  REQUIRE(port != 0);
  wstest::net::io_context io;
  const std::string id = "secret-live-4d2c9b8a7e6f5013";
  wstest::client chat(io);
  REQUIRE(!chat.connect(port, "/?session_id=" + id + "&user_id=dave"));
  CHECK(has(chat.read().dump(), "greetings bot"));
  std::int64_t row = 0;
  REQUIRE(test::eventually([&] {
    auto j = json::parse(wstest::http_get(io, port, "/inspect/api/sessions?user=dave").body());
    if (j["sessions"].empty()) return false;
    row = j["sessions"][0]["row"];
    return true;
  }));

  wstest::client live(io), changes(io);
  REQUIRE(!live.connect(port, "/inspect/live?session=" + std::to_string(row) + "&after=0"));
  REQUIRE(!changes.connect(port, "/inspect/live"));
  // At once: the session and the rows so far; then each new row as the bot writes it, in one
  // frame or several, each after the last.
  std::vector<json> rows;
  std::int64_t last_id = 0;
  auto read_until = [&](const std::function<bool(const json&)>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = live.try_read(1s);
      if (!f) continue;
      CHECK_FALSE(has(f->dump(), id));
      CHECK((*f)["session"]["row"] == row);
      for (const auto& r : (*f)["rows"]) {
        CHECK(r["id"].get<std::int64_t>() > last_id);
        last_id = r["id"];
        rows.push_back(r);
      }
      CHECK((*f)["last_id"] == last_id);
      for (const auto& r : rows)
        if (pred(r)) return true;
    }
    return false;
  };
  CHECK(read_until([](const json& r) { return has(r["content"], "greetings bot"); }));

  chat.say("hello");
  CHECK(has(chat.read().dump(), "How are you"));
  CHECK(read_until([](const json& r) { return r["type"] == "chat" && has(r["content"], "How are you"); }));
  CHECK(std::any_of(rows.begin(), rows.end(), [](const json& r) { return r["type"] == "transition"; }));
  // A follower of the list hears that something changed.
  CHECK(changes.read() == json{{"sessions_changed", true}});

  wstest::client bad(io);
  CHECK(bad.connect(port, "/inspect/live?session=x") == websocket_error_declined());
  CHECK(bad.status() == wstest::http::status::bad_request);
  bot.kill(SIGTERM);
  CHECK(bot.finish() == 0);
}

#if !PARLEY_TEST_PG  // not about the database
TEST_CASE("the inspector is off for a non-loopback host unless enabled") {
  CHECK(parley::platforms::detail::inspector_enabled(std::nullopt, "127.0.0.1"));
  CHECK(parley::platforms::detail::inspector_enabled(std::nullopt, "::1"));
  CHECK(parley::platforms::detail::inspector_enabled(std::nullopt, "localhost"));
  CHECK_FALSE(parley::platforms::detail::inspector_enabled(std::nullopt, "0.0.0.0"));
  CHECK_FALSE(parley::platforms::detail::inspector_enabled(std::nullopt, "192.168.1.10"));
  CHECK(parley::platforms::detail::inspector_enabled(true, "0.0.0.0"));
  CHECK_FALSE(parley::platforms::detail::inspector_enabled(false, "127.0.0.1"));

  test::temp_dir dir;
  auto start = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{PARLEY_GREETINGS_BIN, "--db", dir.file("h.db"), "--port", "0",
                                  "--log-level", "info", "--set",
                                  "platforms.websocket.host=0.0.0.0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<test::child>(args);
  };
  wstest::net::io_context io;
  {
    auto bot = start({});
    const auto port = test::listening_port(*bot);
    REQUIRE(port != 0);
    auto off = wstest::http_get(io, port, "/inspect/api/sessions");
    CHECK(off.result_int() == 404);
    CHECK(has(off.body(), "platforms.websocket.inspector"));
    bot->kill(SIGTERM);
    bot->finish();
  }
  {
    auto bot = start({"--set", "platforms.websocket.inspector=true"});
    const auto port = test::listening_port(*bot);
    REQUIRE(port != 0);
    CHECK(wstest::http_get(io, port, "/inspect/api/sessions").result_int() == 200);
    bot->kill(SIGTERM);
    bot->finish();
  }
  // A wrong type is refused with the key's name.
  auto bad = test::run({PARLEY_GREETINGS_BIN, "--port", "0", "--set",
                        "platforms.websocket.inspector=sometimes"});
  CHECK(bad.code == 2);
  CHECK(has(bad.err, "platforms.websocket.inspector"));
}
#endif

BACKEND_CASE("parley-inspect DB serve prints its URL and serves the inspector") {
  test::backend db;
  if (db.skipped()) return;
  const auto path = db.where();
  write_sessions(db);
  test::child serve({PARLEY_INSPECT_BIN, path, "serve", "--port", "0", "--token", "T"});
  std::uint16_t port = 0;
  const std::regex url("^inspector: http://127\\.0\\.0\\.1:([0-9]+)/inspect\n");
  REQUIRE(serve.read_until([&](const std::string& out) {
    std::smatch m;
    if (!std::regex_search(out, m, url)) return false;
    port = static_cast<std::uint16_t>(std::stoi(m[1]));
    return true;
  }));
  wstest::net::io_context io;
  auto res = wstest::http_get(io, port, "/inspect/api/sessions?token=T");
  CHECK(res.result_int() == 200);
  CHECK(json::parse(res.body())["total"] == 3);
  CHECK(wstest::http_get(io, port, "/").result_int() == 302);
  // No agent here: a chat WebSocket is refused.
  wstest::client chat(io);
  CHECK(chat.connect(port, "/") == websocket_error_declined());
  serve.kill(SIGTERM);
  CHECK(serve.finish() == 0);

  auto svg = test::run({PARLEY_INSPECT_BIN, path, "diagram", "--format", "svg"});
  CHECK(svg.code == 0);
  CHECK(has(svg.out, "<svg"));
}
