#pragma once
/// A client for one MCP server over stdio (protocol revision 2025-11-25, the one the npm
/// servers speak): it starts the server as a child process with a scrubbed environment, talks
/// newline-delimited JSON-RPC 2.0 on its stdin and stdout (watched by Asio, no thread of its
/// own), logs its stderr at debug level, and reaps it.
///
///   auto fs = std::make_shared<llm::mcp_client>(ex, llm::mcp_server_options{
///       .name = "fs", .command = "mcp-server-filesystem", .args = {"/srv/docs"}});
///   co_await fs->start();                       // spawn, initialize, notifications/initialized
///   for (auto& t : co_await fs->list_tools()) ...
///   json r = co_await fs->call_tool("read_text_file", {{"path", "/srv/docs/a.txt"}});
///
/// When the server exits, closes its stdout or writes something that is not JSON-RPC, every
/// call in flight and every later call fails with an mcp_error naming the server and the fix.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <parley/net.hpp>

namespace parley::llm {

/// The protocol revision the client asks for; it also accepts 2025-06-18 and 2025-03-26.
inline constexpr const char* mcp_protocol_version = "2025-11-25";

struct mcp_server_options {
  std::string name;     ///< names the server in tool names, logs and errors
  std::string command;  ///< a path, or a program found on PATH
  std::vector<std::string> args;
  /// Variables the server gets besides the few harmless ones of the parent's environment
  /// (HOME, LOGNAME, PATH, SHELL, TERM, USER): never the parent's whole environment, so its
  /// secrets do not leak to a third-party server.
  std::map<std::string, std::string> env;
  /// Names of variables of the parent's environment the server also gets (a token it needs),
  /// so that secrets stay out of config files. Each must be set when the server starts.
  std::vector<std::string> pass_env;
  std::chrono::milliseconds timeout{60'000};  ///< per request (initialize and each call)
  /// After stdin is closed on shutdown, how long the server has to exit before SIGTERM, and
  /// again before SIGKILL.
  std::chrono::milliseconds shutdown_grace{2'000};
};

enum class mcp_error_kind {
  spawn,       ///< the command could not be started
  exited,      ///< the server exited or closed its stdout
  bad_output,  ///< the server wrote something that is not JSON-RPC on stdout
  timeout,     ///< no answer within the request's time limit
  rpc_error,   ///< the server answered with a JSON-RPC error (code())
  protocol,    ///< the answer does not follow MCP (e.g. an unsupported protocol version)
  cancelled,   ///< the awaiting coroutine was cancelled (the server is told)
  closed,      ///< the client was shut down
};

/// Every failed MCP request ends with this; what() names the server, the problem and the fix.
class mcp_error : public std::runtime_error {
 public:
  mcp_error(mcp_error_kind kind, const std::string& message, int code = 0)
      : std::runtime_error(message), kind_(kind), code_(code) {}
  mcp_error_kind kind() const { return kind_; }
  int code() const { return code_; }  ///< the JSON-RPC error code (rpc_error), else 0

 private:
  mcp_error_kind kind_;
  int code_;
};

/// A tool as the server lists it.
struct mcp_tool_info {
  std::string name;
  std::string title;
  std::string description;
  json input_schema;  ///< a JSON Schema object
  json annotations;   ///< readOnlyHint, destructiveHint, ... (untrusted hints); may be null
};

namespace detail {
class mcp_session;
}

/// One MCP server. Public calls are safe from any thread; the coroutines resume on the
/// awaiting coroutine's executor (a session body's strand). Requests run concurrently and
/// are matched to their answers by id. A call whose awaiting coroutine is cancelled (Asio
/// per-operation cancellation, e.g. a session reset) ends with mcp_error_kind::cancelled and
/// the server gets notifications/cancelled. Destroying the client shuts the server down;
/// destroy it before its io_context, like any Asio object.
class mcp_client {
 public:
  mcp_client(net::any_io_executor executor, mcp_server_options options);
  ~mcp_client();
  mcp_client(const mcp_client&) = delete;
  mcp_client& operator=(const mcp_client&) = delete;

  /// Starts the process and runs the initialize handshake. @throws mcp_error.
  net::awaitable<void> start();
  /// Every tool, following nextCursor through all pages. @throws mcp_error.
  net::awaitable<std::vector<mcp_tool_info>> list_tools();
  /// Calls a tool; returns the result object ({content, structuredContent?, isError?}) as the
  /// server sent it: a tool that failed is a result with isError, not a throw. `timeout`
  /// unset: the server's. @throws mcp_error (protocol errors, timeout, server gone).
  net::awaitable<json> call_tool(std::string name, json arguments,
                                 std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Any request (method and params). @throws mcp_error.
  net::awaitable<json> request(std::string method, json params,
                               std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  /// Closes the server's stdin, then SIGTERM and SIGKILL after the grace periods; calls in
  /// flight fail with mcp_error_kind::closed. Idempotent; any thread; returns at once.
  void shutdown();
  /// Waits until the process has been reaped and its stdout and stderr have ended (after
  /// shutdown() or its own exit): then nothing of the client is left on the io_context, which
  /// may be destroyed. (Destroying it with the server still running is undefined.)
  net::awaitable<void> wait_exited();

  const mcp_server_options& options() const;
  /// After start(): the negotiated revision, the server's serverInfo and instructions.
  std::string protocol_version() const;
  json server_info() const;
  std::string instructions() const;
  /// The process id while it runs (tests and logs), else -1.
  int pid() const;
  /// True once the server has said its tools changed (notifications/tools/list_changed)
  /// since the last list_tools(): list them again. Any thread.
  bool tools_changed() const;

 private:
  std::shared_ptr<detail::mcp_session> impl_;
};

}  // namespace parley::llm
