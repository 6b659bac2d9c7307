// The reasoning example end to end: the real program on the console, its model a scripted
// OpenAI-compatible server on loopback, the official MCP filesystem server as its MCP peer.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "../db/support.hpp"
#include "../llm/reasoning_support.hpp"

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A chat completion asking for one tool call (50 prompt tokens, 10 completion tokens).
parley::json tool_call(const std::string& name, const parley::json& args) {
  return test::tool_calls_answer({{"call_" + name, name, args.dump()}}, 50, 10);
}

std::vector<std::string> base_args(const test::scripted_server& model, const std::string& db) {
  return {REASONING_BIN, "--console", "--db", db, "--log-level", "warn",
          "--set", "llm.base_url=" + model.base_url(), "--set", "llm.model=scripted"};
}

}  // namespace

TEST_CASE("the reasoning example calls its tools, asks before saving a note, and records it all") {
  test::temp_dir dir;
  test::scripted_server model;
  model.push(test::exchange::json_body(tool_call("calculate", {{"a", 6}, {"op", "*"}, {"b", 7}})));
  model.push(test::exchange::json_body(test::completion("6 times 7 is 42.")));
  model.push(test::exchange::json_body(tool_call("save_note", {{"text", "buy milk"}})));
  model.push(test::exchange::json_body(test::completion("Noted: buy milk.")));

  const auto db = dir.file("r.db");
  auto r = test::run(base_args(model, db), "what is 6 times 7?\nnote that I must buy milk\nYes\n");
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.out, "Hello! Ask me anything"));
  CHECK(has(r.out, "6 times 7 is 42."));
  CHECK(has(r.out, "Yes"));  // the approval question's options
  CHECK(has(r.out, "Noted: buy milk."));
  // The model read the tool's result: the second request carries 42 as a tool message.
  const auto requests = model.requests();
  REQUIRE(requests.size() == 4);
  CHECK(has(requests[1].body, "\"role\":\"tool\""));
  CHECK(has(requests[1].body, "42"));
  CHECK(has(requests[3].body, "saved as note 1"));
  // Every step recorded, with tokens on the model calls.
  CHECK(test::query_count(db, "SELECT count(*) FROM reasoning_step WHERE step_kind = 'tool_result'") >= 2);
  CHECK(test::query_count(db, "SELECT count(*) FROM reasoning_step WHERE prompt_tokens = 50") >= 1);
  CHECK(test::query_count(db, "SELECT count(*) FROM reasoning_step WHERE step_kind = 'approval_requested'") == 1);
}

TEST_CASE("the reasoning example offers an MCP server's tools and runs them") {
  const std::string server = std::string(PARLEY_NPM_BIN) + "/mcp-server-filesystem";
  if (!std::ifstream(server)) {
    const char* require = std::getenv("PARLEY_REQUIRE_PEERS");
    REQUIRE_MESSAGE(!(require && std::string(require) == "1"),
                    "the MCP filesystem server is not installed; run ./dev test");
    MESSAGE("skipped: " << server << " is missing (./dev test installs it)");
    return;
  }
  test::temp_dir dir;
  const auto docs = dir.file("docs");
  std::filesystem::create_directories(docs);
  std::ofstream(docs + "/plan.txt") << "ship on Friday\n";
  test::scripted_server model;
  model.push(test::exchange::json_body(
      tool_call("files__read_text_file", {{"path", docs + "/plan.txt"}})));
  model.push(test::exchange::json_body(test::completion("The plan: ship on Friday.")));

  auto args = base_args(model, dir.file("r.db"));
  for (std::string a : {std::string("--set"), "mcp.servers.files.command=" + server,
                        std::string("--set"), "mcp.servers.files.args=" + docs})
    args.push_back(std::move(a));
  auto r = test::run(args, "what is the plan?\n");
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.out, "The plan: ship on Friday."));
  const auto requests = model.requests();
  REQUIRE(requests.size() == 2);
  CHECK(has(requests[0].body, "\"files__read_text_file\""));  // offered with the C++ tools
  CHECK(has(requests[0].body, "\"calculate\""));
  CHECK(has(requests[1].body, "ship on Friday"));  // the file's content came back as the result
}
