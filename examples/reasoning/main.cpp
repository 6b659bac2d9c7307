// A reasoning agent: each message runs a tool-calling loop with an OpenAI-compatible model
// (llama.cpp's llama-server, Ollama, vLLM, or a hosted API), with three C++ tools and the tools
// of any MCP servers in the config. Every step is recorded; inspect them with
// `parley-inspect parley.db reasoning SESSION`. See README.md beside this file.
#include <future>
#include <memory>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>

#include <parley/llm/client.hpp>
#include <parley/llm/config_keys.hpp>
#include <parley/llm/mcp_tools.hpp>
#include <parley/llm/reasoning.hpp>
#include <parley/parley.hpp>

#include "reasoning_tools.hpp"

namespace llm = parley::llm;

int main(int argc, char** argv) {
  // The model's and the MCP servers' I/O run on a thread of their own, on an io_context that
  // outlives the agent (made and destroyed inside parley::run); sessions still await them on
  // their own strands.
  parley::net::io_context io;
  auto work = parley::net::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  std::unique_ptr<llm::client> model;
  llm::mcp_toolset mcp;
  auto pad = std::make_shared<reasoning_example::note_pad>();

  const int code = parley::run("reasoning", argc, argv, [&](parley::agent& agent) {
    llm::declare_config(agent.config());
    model = std::make_unique<llm::client>(io.get_executor(),
                                          llm::client_options::from(agent.config()));
    llm::reasoning_options options;
    options.tools = {reasoning_example::calculate(), reasoning_example::current_time()};
    for (auto& t : reasoning_example::notes(pad)) options.tools.push_back(std::move(t));
    // mcp.servers.NAME.command / .args in the config file or with --set: their tools too.
    if (auto servers = llm::mcp_servers_from(agent.config()); !servers.empty()) {
      mcp = parley::net::co_spawn(io, llm::start_mcp_servers(io.get_executor(), std::move(servers)),
                                  parley::net::use_future)
                .get();
      options.tools.insert(options.tools.end(), mcp.tools.begin(), mcp.tools.end());
    }
    options.history_messages = 10;

    auto& welcome = agent.new_state("welcome", /*initial=*/true);
    welcome.set_body([](parley::session& s) {
      s.reply("Hello! Ask me anything: I can calculate, tell the time, keep notes, and use the "
              "tools of the MCP servers I was given.");
    });
    auto& think = llm::new_reasoning_state(agent, "think", *model, std::move(options));
    welcome.go_to(think);
  });

  // Every MCP server shut down and reaped while the io_context still runs.
  if (!mcp.servers.empty()) parley::net::co_spawn(io, mcp.close(), parley::net::use_future).get();
  model.reset();
  work.reset();
  io.stop();
  io_thread.join();
  return code;
}
