// The MCP stdio client against the official npm servers (server-everything, server-filesystem)
// and a small node peer of our own (mcp_peer.mjs) for pages, odd names, a server that exits,
// writes garbage or never answers, server-to-client requests and the scrubbed environment.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>

#include <sys/wait.h>
#include <set>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>

#include <parley/llm/mcp_client.hpp>
#include <parley/llm/mcp_tools.hpp>

using namespace std::chrono_literals;
using parley::json;
namespace net = parley::net;
namespace llm = parley::llm;
namespace fs = std::filesystem;

namespace {

llm::mcp_server_options opts(std::string name, std::string command,
                             std::vector<std::string> args = {}) {
  llm::mcp_server_options o;
  o.name = std::move(name);
  o.command = std::move(command);
  o.args = std::move(args);
  return o;
}

const fs::path npm_bin = PARLEY_NPM_BIN;
const std::string peer_script = PARLEY_MCP_PEER;

// True when the npm peer is installed; otherwise the case is skipped with a message, or fails
// when PARLEY_REQUIRE_PEERS=1 (./dev test).
bool have_peer(const std::string& program) {
  if (fs::exists(npm_bin / program)) return true;
  const char* require = std::getenv("PARLEY_REQUIRE_PEERS");
  if (require && std::string(require) == "1")
    FAIL(program << " is not in " << npm_bin << ": run ./dev (it installs tests/npm)");
  MESSAGE("skipped: " << program << " is not installed in " << npm_bin << " (run ./dev)");
  return false;
}

struct io_fixture {
  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> guard = net::make_work_guard(io);

  // Runs `aw` to its end (or fails the test after `limit`): no sleeps, the io_context runs.
  template <class T>
  T run(net::awaitable<T> aw, std::chrono::milliseconds limit = 20s) {
    auto f = net::co_spawn(io, std::move(aw), net::use_future);
    const auto until = std::chrono::steady_clock::now() + limit;
    while (f.wait_for(0s) != std::future_status::ready) {
      if (std::chrono::steady_clock::now() > until) {
        FAIL("timed out after " << limit.count() << " ms");
      }
      io.run_one_for(50ms);
    }
    return f.get();
  }

  std::shared_ptr<llm::mcp_client> client(llm::mcp_server_options o) {
    return std::make_shared<llm::mcp_client>(io.get_executor(), std::move(o));
  }
  std::shared_ptr<llm::mcp_client> peer(std::chrono::milliseconds timeout = 10s,
                                        std::vector<std::string> extra_args = {}) {
    llm::mcp_server_options o = opts("peer", "node", {peer_script});
    for (auto& a : extra_args) o.args.push_back(a);
    o.timeout = timeout;
    return client(std::move(o));
  }
  // Shuts the server down and waits until the process is reaped.
  void finish(llm::mcp_client& c) {
    c.shutdown();
    run(c.wait_exited());
    CHECK(c.pid() == -1);
  }
};

template <class F>
llm::mcp_error error_of(F&& f) {
  try {
    f();
  } catch (const llm::mcp_error& e) {
    return e;
  }
  FAIL("no mcp_error was thrown");
  return llm::mcp_error(llm::mcp_error_kind::closed, "");
}

std::string run_tool(io_fixture& fx, const llm::mcp_toolset& set, const std::string& name,
                     json args) {
  const llm::tool* t = nullptr;
  for (const auto& x : set.tools)
    if (x.name == name) t = &x;
  REQUIRE_MESSAGE(t, "no tool named " << name);
  return fx.run(t->run(std::move(args))).get<std::string>();
}

}  // namespace

TEST_CASE("mcp_tool_name: prefixed, forbidden characters replaced, long names cut with a hash") {
  CHECK(llm::mcp_tool_name("fs", "read_text_file") == "fs__read_text_file");
  CHECK(llm::mcp_tool_name("my server", "a.b/c") == "my_server__a_b_c");
  const std::string long_name = llm::mcp_tool_name("srv", std::string(100, 'x'));
  CHECK(long_name.size() == 64);
  CHECK(long_name.rfind("srv__xxx", 0) == 0);
  CHECK(long_name == llm::mcp_tool_name("srv", std::string(100, 'x')));  // stable
  CHECK(long_name != llm::mcp_tool_name("srv", std::string(101, 'x')));
  for (char c : long_name) CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'));
}

TEST_CASE("mcp_result_text: text, resources, images and structured content as the model reads them") {
  json r = {{"content",
             {{{"type", "text"}, {"text", "first"}},
              {{"type", "image"}, {"data", "AAAA"}, {"mimeType", "image/png"}},
              {{"type", "resource"},
               {"resource", {{"uri", "file:///a.txt"}, {"mimeType", "text/plain"}, {"text", "inside"}}}},
              {{"type", "resource"}, {"resource", {{"uri", "file:///b.bin"}, {"blob", "AAAAAAAA"}}}},
              {{"type", "resource_link"}, {"uri", "file:///c"}, {"name", "c"}}}},
            {"structuredContent", {{"n", 1}}}};
  CHECK(llm::mcp_result_text(r) ==
        "first\n[image image/png, 3 bytes, not shown]\n[resource file:///a.txt (text/plain)]\n"
        "inside\n[resource file:///b.bin, 6 bytes of binary data, not shown]\n"
        "[resource link c: file:///c]");
  // Structured content alone is given as JSON.
  CHECK(llm::mcp_result_text({{"content", json::array()}, {"structuredContent", {{"n", 1}}}}) ==
        R"({"n":1})");
}

TEST_CASE("server-everything: initialize, every tool listed, echo and get-sum, a tool error") {
  if (!have_peer("mcp-server-everything")) return;
  io_fixture fx;
  auto c = fx.client(opts("everything", (npm_bin / "mcp-server-everything").string(), {"stdio"}));
  fx.run(c->start());
  CHECK(c->protocol_version() == "2025-11-25");
  CHECK(c->server_info().value("name", "") != "");
  auto listed = fx.run(c->list_tools());
  std::set<std::string> names;
  for (const auto& t : listed) names.insert(t.name);
  CHECK(names.count("echo"));
  CHECK(names.count("get-sum"));
  for (const auto& t : listed) CHECK(t.input_schema.is_object());

  json echo = fx.run(c->call_tool("echo", {{"message", "hello"}}));
  CHECK(llm::mcp_result_text(echo) == "Echo: hello");
  CHECK_FALSE(echo.value("isError", false));

  // Through llm::tool: the name the model sees, the result as text.
  llm::mcp_toolset set;
  set.add(c, listed);
  REQUIRE(set.find("everything__get-sum"));
  for (const auto& t : set.tools) {  // schemas as strict OpenAI-compatible servers take them
    CHECK_FALSE(t.parameters.contains("$schema"));
    CHECK(t.parameters["type"] == "object");
    CHECK(t.parameters["properties"].is_object());
  }
  CHECK(set.find("everything__get-sum")->mcp_name == "get-sum");
  CHECK(run_tool(fx, set, "everything__get-sum", {{"a", 2}, {"b", 3}}) == "The sum of 2 and 3 is 5.");

  // Arguments the tool rejects: a tool error (isError), which the llm::tool throws.
  json bad = fx.run(c->call_tool("get-sum", {{"a", "two"}}));
  CHECK(bad.value("isError", false));
  auto thrown = [&] {
    try {
      run_tool(fx, set, "everything__get-sum", {{"a", "two"}});
    } catch (const llm::mcp_tool_error& e) {
      return std::string(e.what());
    }
    return std::string("no throw");
  }();
  CHECK(thrown != "no throw");
  CHECK_FALSE(thrown.empty());

  // An unknown tool: the TS SDK answers with isError rather than a JSON-RPC error.
  json unknown = fx.run(c->call_tool("no-such-tool", json::object()));
  CHECK(unknown.value("isError", false));
  CHECK(llm::mcp_result_text(unknown).find("no-such-tool") != std::string::npos);
  fx.finish(*c);
}

TEST_CASE("server-filesystem: read and list files in a temp folder") {
  if (!have_peer("mcp-server-filesystem")) return;
  io_fixture fx;
  fs::path dir = fs::temp_directory_path() / ("parley-mcp-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "Parley reads this.\n";
  fs::create_directories(dir / "sub");
  auto c = fx.client(opts("fs", (npm_bin / "mcp-server-filesystem").string(), {dir.string()}));
  fx.run(c->start());
  auto set = fx.run(llm::tools_of(c));
  CHECK(set.find("fs__read_text_file"));
  std::string text = run_tool(fx, set, "fs__read_text_file", {{"path", (dir / "notes.txt").string()}});
  CHECK(text.find("Parley reads this.") != std::string::npos);
  std::string listing = run_tool(fx, set, "fs__list_directory", {{"path", dir.string()}});
  CHECK(listing.find("[FILE] notes.txt") != std::string::npos);
  CHECK(listing.find("[DIR] sub") != std::string::npos);
  // Outside the allowed folder: a tool error naming the path.
  json outside = fx.run(c->call_tool("read_text_file", {{"path", "/etc/hostname"}}));
  CHECK(outside.value("isError", false));
  fx.finish(*c);
  fs::remove_all(dir);
}

TEST_CASE("tools/list pages are all read, and clashing and long names get unique model names") {
  io_fixture fx;
  auto c = fx.peer();
  fx.run(c->start());
  CHECK(c->instructions() == "be nice");
  auto listed = fx.run(c->list_tools());
  REQUIRE(listed.size() == 11);  // 2 + 2 + 7 over three pages
  llm::mcp_toolset set;
  set.add(c, listed);
  std::set<std::string> names;
  for (const auto& t : set.tools) {
    names.insert(t.name);
    CHECK(t.name.size() <= 64);
  }
  CHECK(names.size() == set.tools.size());  // unique
  CHECK(set.find("peer__a_b")->mcp_name == "a.b");
  // "a_b" sanitises like "a.b": it gets the hash suffix and still maps back.
  const auto& clash = set.bindings[2];
  CHECK(clash.mcp_name == "a_b");
  CHECK(clash.llm_name != "peer__a_b");
  CHECK(set.find(clash.llm_name)->mcp_name == "a_b");
  CHECK(set.find(set.bindings[3].llm_name)->mcp_name == std::string(80, 'x'));
  CHECK(run_tool(fx, set, "peer__echo", {{"message", "hi"}}) == "Echo: hi");
  // Mixed content blocks as the model reads them.
  CHECK(run_tool(fx, set, "peer__blocks", json::object()) ==
        "first\n[image image/png, 3 bytes, not shown]\n[resource file:///a.txt (text/plain)]\n"
        "inside\n[resource link b: file:///b]");
  fx.finish(*c);
}

TEST_CASE("an unknown tool answered with a JSON-RPC error is an mcp_error with the code") {
  io_fixture fx;
  auto c = fx.peer();
  fx.run(c->start());
  auto e = error_of([&] { fx.run(c->call_tool("nope", json::object())); });
  CHECK(e.kind() == llm::mcp_error_kind::rpc_error);
  CHECK(e.code() == -32602);
  CHECK(std::string(e.what()).find("MCP server 'peer'") != std::string::npos);
  // The connection is still good.
  CHECK(llm::mcp_result_text(fx.run(c->call_tool("echo", {{"message", "x"}}))) == "Echo: x");
  fx.finish(*c);
}

TEST_CASE("server requests are answered (ping) or refused (method not found), notifications ignored") {
  io_fixture fx;
  auto c = fx.peer();
  fx.run(c->start());
  CHECK_FALSE(c->tools_changed());
  fx.run(c->call_tool("ask_client", json::object()));
  // The peer answers in order, so our replies to its two requests came before this call.
  json answers = json::parse(llm::mcp_result_text(fx.run(c->call_tool("client_answers", json::object()))));
  REQUIRE(answers.size() == 2);
  CHECK(answers[0]["id"] == 1000);
  CHECK(answers[0]["result"] == json::object());
  CHECK(answers[1]["id"] == 1001);
  CHECK(answers[1]["error"]["code"] == -32601);
  CHECK(c->tools_changed());  // the peer sent notifications/tools/list_changed
  fx.run(c->list_tools());
  CHECK_FALSE(c->tools_changed());
  fx.finish(*c);
}

TEST_CASE("the server gets a scrubbed environment: no secrets of ours, its own variables") {
  ::setenv("PARLEY_TEST_SECRET_TOKEN", "s3cret", 1);
  io_fixture fx;
  llm::mcp_server_options o = opts("peer", "node", {peer_script});
  o.env["PEER_SETTING"] = "on";
  ::setenv("PARLEY_TEST_PASSED_TOKEN", "given", 1);
  o.pass_env = {"PARLEY_TEST_PASSED_TOKEN"};
  auto c = fx.client(o);
  fx.run(c->start());
  json env = json::parse(llm::mcp_result_text(fx.run(c->call_tool("env", json::object()))));
  CHECK_FALSE(env.contains("PARLEY_TEST_SECRET_TOKEN"));
  CHECK(env.value("PEER_SETTING", "") == "on");
  CHECK(env.contains("PATH"));
  CHECK(env.value("PARLEY_TEST_PASSED_TOKEN", "") == "given");  // named by pass_env
  fx.finish(*c);
  ::unsetenv("PARLEY_TEST_SECRET_TOKEN");
  ::unsetenv("PARLEY_TEST_PASSED_TOKEN");
  // A variable pass_env names that is not set: the server does not start, and we say which.
  o.pass_env = {"PARLEY_TEST_UNSET_VARIABLE"};
  auto missing = fx.client(o);
  auto e = error_of([&] { fx.run(missing->start()); });
  CHECK(e.kind() == llm::mcp_error_kind::spawn);
  CHECK(std::string(e.what()).find("PARLEY_TEST_UNSET_VARIABLE") != std::string::npos);
}

TEST_CASE("a server that exits mid-call fails the call, and every later one, naming it") {
  io_fixture fx;
  auto c = fx.peer();
  fx.run(c->start());
  auto e = error_of([&] { fx.run(c->call_tool("exit", json::object())); });
  CHECK(e.kind() == llm::mcp_error_kind::exited);
  std::string what = e.what();
  CHECK(what.find("MCP server 'peer' (node)") != std::string::npos);
  CHECK(what.find("exiting on purpose") != std::string::npos);  // its stderr, for the fix
  auto later = error_of([&] { fx.run(c->call_tool("echo", {{"message", "x"}})); });
  CHECK(later.kind() == llm::mcp_error_kind::exited);
  fx.run(c->wait_exited());
  CHECK(c->pid() == -1);
}

TEST_CASE("garbage on stdout fails the pending call with bad_output") {
  io_fixture fx;
  auto c = fx.peer();
  fx.run(c->start());
  auto e = error_of([&] { fx.run(c->call_tool("garbage", json::object())); });
  CHECK(e.kind() == llm::mcp_error_kind::bad_output);
  CHECK(std::string(e.what()).find("this is not json") != std::string::npos);
  fx.run(c->wait_exited());  // the client ends a server that broke the protocol
}

TEST_CASE("a call that gets no answer times out, and the connection stays usable") {
  io_fixture fx;
  auto c = fx.peer(10s);
  fx.run(c->start());
  auto started = std::chrono::steady_clock::now();
  auto e = error_of([&] { fx.run(c->call_tool("silent", json::object(), 200ms)); });
  CHECK(e.kind() == llm::mcp_error_kind::timeout);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(std::string(e.what()).find("mcp.servers.peer.timeout") != std::string::npos);
  CHECK(llm::mcp_result_text(fx.run(c->call_tool("echo", {{"message", "still"}}))) == "Echo: still");
  fx.finish(*c);
}

TEST_CASE("a cancelled call ends at once with cancelled, the server is told and keeps serving") {
  io_fixture fx;
  auto c = fx.peer(10s);
  fx.run(c->start());
  net::cancellation_signal stop;
  std::exception_ptr ended;
  bool done = false;
  net::co_spawn(fx.io, c->call_tool("silent", json::object()),
                net::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e, json) {
                  ended = e;
                  done = true;
                }));
  // A call made after it is answered after it was sent: the silent call is in flight.
  CHECK(llm::mcp_result_text(fx.run(c->call_tool("echo", {{"message", "1"}}))) == "Echo: 1");
  CHECK_FALSE(done);
  stop.emit(net::cancellation_type::terminal);
  auto until = std::chrono::steady_clock::now() + 5s;
  while (!done && std::chrono::steady_clock::now() < until) fx.io.run_one_for(50ms);
  REQUIRE(done);
  auto e = error_of([&] { std::rethrow_exception(ended); });
  CHECK(e.kind() == llm::mcp_error_kind::cancelled);
  CHECK(llm::mcp_result_text(fx.run(c->call_tool("echo", {{"message", "2"}}))) == "Echo: 2");
  fx.finish(*c);
}

TEST_CASE("shutdown: a server that ignores stdin's end and SIGTERM is killed and reaped") {
  io_fixture fx;
  llm::mcp_server_options o = opts("stubborn", "node", {peer_script, "stubborn"});
  o.shutdown_grace = 100ms;
  auto c = fx.client(o);
  fx.run(c->start());
  CHECK(c->pid() > 0);
  fx.finish(*c);
  auto e = error_of([&] { fx.run(c->call_tool("echo", {{"message", "x"}})); });
  CHECK(e.kind() == llm::mcp_error_kind::closed);
}

TEST_CASE("a command that does not exist fails start with a spawn error naming the key") {
  io_fixture fx;
  auto c = fx.client(opts("ghost", "/nonexistent/mcp-ghost"));
  auto e = error_of([&] { fx.run(c->start()); });
  CHECK(e.kind() == llm::mcp_error_kind::spawn);
  CHECK(std::string(e.what()).find("mcp.servers.ghost.command") != std::string::npos);
}

TEST_CASE("mcp.servers.* from YAML and --set: declared, typed, checked") {
  parley::config cfg;
  cfg.load_yaml(R"(
mcp:
  servers:
    fs:
      command: mcp-server-filesystem
      args: [/srv/docs, /srv/more]
      env: {LOG_LEVEL: warn, DEPTH: 3}
      timeout: 2.5
)");
  cfg.set_text("mcp.servers.peer.command", "node", "--set");
  cfg.set_text("mcp.servers.peer.args", "peer.mjs,stubborn", "--set");
  cfg.set_text("mcp.servers.peer.pass_env", "TOKEN_A,TOKEN_B", "--set");
  auto servers = llm::mcp_servers_from(cfg);
  REQUIRE(servers.size() == 2);
  CHECK(servers[0].name == "fs");
  CHECK(servers[0].command == "mcp-server-filesystem");
  CHECK(servers[0].args == std::vector<std::string>{"/srv/docs", "/srv/more"});
  CHECK(servers[0].env.at("LOG_LEVEL") == "warn");
  CHECK(servers[0].env.at("DEPTH") == "3");
  CHECK(servers[0].timeout == 2500ms);
  CHECK(servers[1].name == "peer");
  CHECK(servers[1].args == std::vector<std::string>{"peer.mjs", "stubborn"});
  CHECK(servers[1].pass_env == std::vector<std::string>{"TOKEN_A", "TOKEN_B"});
  for (const auto& k : cfg.unknown_keys()) CHECK(k.rfind("mcp.", 0) != 0);  // all declared
  CHECK(llm::mcp_servers_from(cfg).size() == 2);  // a second call reads them again

  parley::config no_command;
  no_command.load_yaml("mcp: {servers: {x: {args: [a]}}}");
  CHECK_THROWS_WITH_AS(llm::mcp_servers_from(no_command),
                       doctest::Contains("set mcp.servers.x.command"), parley::config_error);
  parley::config typo;
  typo.load_yaml("mcp: {servers: {x: {comand: a}}}");
  CHECK_THROWS_WITH_AS(llm::mcp_servers_from(typo), doctest::Contains("'comand' is not"),
                       parley::config_error);
  parley::config wrong_type;
  wrong_type.load_yaml("mcp: {servers: {x: {command: a, timeout: soon}}}");
  CHECK_THROWS_AS(llm::mcp_servers_from(wrong_type), parley::config_error);
}

TEST_CASE("start_mcp_servers starts every configured server and gathers their tools") {
  if (!have_peer("mcp-server-everything")) return;
  io_fixture fx;
  std::vector<llm::mcp_server_options> servers = {
      opts("everything", (npm_bin / "mcp-server-everything").string(), {"stdio"}),
      opts("peer", "node", {peer_script})};
  auto set = fx.run(llm::start_mcp_servers(fx.io.get_executor(), servers));
  CHECK(set.servers.size() == 2);
  CHECK(set.find("everything__echo"));
  CHECK(set.find("peer__echo"));
  CHECK(run_tool(fx, set, "everything__echo", {{"message", "a"}}) == "Echo: a");
  CHECK(run_tool(fx, set, "peer__echo", {{"message", "b"}}) == "Echo: b");
  fx.run(set.close());
  for (auto& s : set.servers) CHECK(s->pid() == -1);

  // One server that cannot start fails the call; the others are shut down.
  servers.push_back(opts("ghost", "/nonexistent/mcp-ghost"));
  auto e = error_of([&] { fx.run(llm::start_mcp_servers(fx.io.get_executor(), servers)); });
  CHECK(e.kind() == llm::mcp_error_kind::spawn);
}

TEST_CASE("an io_context destroyed while a server runs ends it without harm") {
  pid_t pid = -1;
  {
    io_fixture fx;
    auto c = fx.peer();
    fx.run(c->start());
    pid = c->pid();
    // Neither shutdown() nor wait_exited(): the client goes, then the io_context with the
    // client's reads still pending.
  }
  // Its stdin closed with the client, so the server exits; the test's time limit bounds this.
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
}
