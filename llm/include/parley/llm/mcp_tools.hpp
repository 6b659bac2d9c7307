#pragma once
/// MCP servers' tools as `llm::tool`s, and the `mcp.servers.*` configuration.
///
///   mcp.servers.fs.command: mcp-server-filesystem
///   mcp.servers.fs.args: [/srv/docs]
///   mcp.servers.fs.env: {LOG_LEVEL: warn}     # optional: variables besides PATH, HOME, ...
///   mcp.servers.fs.pass_env: [GITHUB_TOKEN]   # optional: variables of ours it also gets
///   mcp.servers.fs.timeout: 30                # optional: seconds per call (60)
///
///   auto servers = llm::mcp_servers_from(agent.config());      // before agent.start()
///   llm::mcp_toolset tools = co_await llm::start_mcp_servers(ex, servers);
///   // tools.tools go to the model; tools.find(name) maps a model's tool name back.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <parley/config.hpp>
#include <parley/llm/mcp_client.hpp>
#include <parley/llm/tool.hpp>

namespace parley::llm {

/// The name the model sees for `tool` of `server`: "server__tool" with every character
/// outside [a-zA-Z0-9_-] replaced by '_', and, when longer than 64, cut and ended with "_"
/// and 8 hex digits of a hash of the original pair. Pure; any thread.
std::string mcp_tool_name(std::string_view server, std::string_view tool);

/// What the model reads of a tools/call result: the text blocks joined, resources' text
/// with their URI, a line for each image, audio or binary resource (the bytes are not
/// sent), and structuredContent as JSON when no text block carries it. Pure; any thread.
std::string mcp_result_text(const json& result);

/// A tools/call result with isError: the tool ran and failed. The llm::tool throws it, so
/// the model reads the message as a tool error.
class mcp_tool_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Which server and MCP tool a model's tool name stands for.
struct mcp_tool_binding {
  std::string llm_name;
  std::string server;
  std::string mcp_name;
};

/// The tools of one or more connected servers. The tools hold their servers alive.
struct mcp_toolset {
  std::vector<tool> tools;
  std::vector<mcp_tool_binding> bindings;  ///< one per tool, same order
  std::vector<std::shared_ptr<mcp_client>> servers;

  /// The binding of a model's tool name, or nullptr.
  const mcp_tool_binding* find(std::string_view llm_name) const;
  /// Adds a server's tools (listed with list_tools), naming them uniquely among those here:
  /// a clash gets the hash suffix. Strand or single thread.
  void add(std::shared_ptr<mcp_client> server, const std::vector<mcp_tool_info>& listed);
  /// Shuts every server down (any thread; returns at once).
  void shutdown();
  /// Shuts every server down and waits until each is reaped: call it before the agent stops
  /// (its io_context must still run), e.g. co_spawn(io, tools.close(), use_future).get().
  net::awaitable<void> close();
};

/// Connects `server` (already started) and lists its tools into a toolset of its own.
net::awaitable<mcp_toolset> tools_of(std::shared_ptr<mcp_client> server);

/// Reads every `mcp.servers.NAME.*` key set in `cfg` (file or --set), declares it with its
/// type (so a wrong type is an error naming the key) and returns the servers by name. A
/// `--set mcp.servers.NAME.args=a,b` list is split at commas. Call after the config is
/// loaded and before agent.start() (which warns about undeclared keys).
/// @throws config_error naming the key and the fix (a server with no command, an unknown
/// setting, a wrong type, a timeout that is not above 0).
std::vector<mcp_server_options> mcp_servers_from(config& cfg);

/// Starts every server (all at once), lists their tools and returns them together. A server
/// that fails to start fails the whole call, after the others are shut down.
/// @throws mcp_error naming the server.
net::awaitable<mcp_toolset> start_mcp_servers(net::any_io_executor executor,
                                              std::vector<mcp_server_options> servers);

}  // namespace parley::llm
