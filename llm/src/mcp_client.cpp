#include <parley/llm/mcp_client.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <parley/log.hpp>

#include "child_process.hpp"

namespace parley::llm {

using std::chrono::milliseconds;

namespace detail {
namespace {

constexpr std::size_t max_line = 32u << 20;     // one JSON-RPC message from the server
constexpr std::size_t stderr_tail_size = 2048;  // kept for error messages

// One request waiting for its answer. The timer is the wake-up: the reader (or a failure)
// cancels it; expiring means the time limit passed. Strand only.
struct pending {
  explicit pending(const net::any_io_executor& ex) : wake(ex) {}
  net::steady_timer wake;
  bool answered = false;
  json message;
  std::optional<mcp_error> failure;
};

bool supported_version(const std::string& v) {
  return v == "2025-11-25" || v == "2025-06-18" || v == "2025-03-26";
}

std::string shorten(std::string_view s, std::size_t n = 120) {
  if (s.size() <= n) return std::string(s);
  return std::string(s.substr(0, n)) + "...";
}

}  // namespace

class mcp_session : public std::enable_shared_from_this<mcp_session> {
 public:
  mcp_session(net::any_io_executor ex, mcp_server_options o)
      : strand_(net::make_strand(ex)),
        options_(std::move(o)),
        stdin_(strand_),
        stdout_(strand_),
        stderr_(strand_),
        pidfd_(strand_),
        kill_timer_(strand_),
        exited_(strand_) {
    exited_.expires_at(clock::time_point::max());
  }

  const net::strand<net::any_io_executor>& strand() const { return strand_; }
  const mcp_server_options& options() const { return options_; }

  std::string protocol_version() const {
    std::lock_guard l(info_m_);
    return protocol_version_;
  }
  json server_info() const {
    std::lock_guard l(info_m_);
    return server_info_;
  }
  std::string instructions() const {
    std::lock_guard l(info_m_);
    return instructions_;
  }
  int pid() const { return pid_.load(); }
  bool tools_changed() const { return tools_changed_.load(); }
  void listing_tools() { tools_changed_ = false; }

  // ---- lifecycle (strand) --------------------------------------------------------------------

  net::awaitable<void> start() {
    if (started_) throw mcp_error(mcp_error_kind::protocol, who() + " was already started");
    started_ = true;
    child_process c;
    try {
      c = spawn_child(options_.command, options_.args,
                      scrubbed_environment(options_.env, options_.pass_env));
    } catch (const std::exception& e) {
      fail(mcp_error(mcp_error_kind::spawn,
                     who() + ": cannot start '" + options_.command + "': " + e.what() +
                         "; check mcp.servers." + options_.name +
                         ".command (a path, or a program on PATH) and that it is installed, "
                         "and export every variable named by .pass_env"));
      throw *failure_;
    }
    pid_ = c.pid;
    open_parts_ = 3;  // stdout, stderr, the process
    stdin_.assign(c.stdin_fd);
    stdout_.assign(c.stdout_fd);
    stderr_.assign(c.stderr_fd);
    if (c.pidfd >= 0) pidfd_.assign(c.pidfd);
    PARLEY_LOG(debug, "mcp " << options_.name << ": started '" << options_.command << "' pid "
                             << c.pid);
    auto self = shared_from_this();
    net::co_spawn(strand_, read_stdout(self), net::detached);
    net::co_spawn(strand_, read_stderr(self), net::detached);
    net::co_spawn(strand_, watch_exit(self), net::detached);

    json params = {{"protocolVersion", mcp_protocol_version},
                   {"capabilities", json::object()},
                   {"clientInfo", {{"name", "parley"}, {"version", "0.1.0"}}}};
    json r;
    try {
      r = co_await request("initialize", std::move(params), std::nullopt);
    } catch (const mcp_error&) {
      shutdown();  // a server that cannot start is not left running
      throw;
    }
    std::string version = r.value("protocolVersion", "");
    if (!supported_version(version)) {
      mcp_error e(mcp_error_kind::protocol,
                  who() + " speaks MCP revision '" + version + "', which Parley does not (it "
                          "speaks 2025-11-25, 2025-06-18 and 2025-03-26): use a newer server");
      fail(e);
      shutdown();
      throw e;
    }
    {
      std::lock_guard l(info_m_);
      protocol_version_ = version;
      server_info_ = r.value("serverInfo", json::object());
      instructions_ = r.value("instructions", "");
    }
    send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    PARLEY_LOG(info, "mcp " << options_.name << ": connected to "
                            << server_info().value("name", "?") << " (MCP " << version << ")");
  }

  void shutdown() {
    if (closing_) return;
    closing_ = true;
    fail(mcp_error(mcp_error_kind::closed, who() + " was shut down"));
    if (pid_ < 0) return;
    // Closing stdin asks the server to exit; then SIGTERM, then SIGKILL.
    boost::system::error_code ec;
    stdin_.close(ec);
    escalate(SIGTERM);
  }

  net::awaitable<void> wait_exited() {
    if (open_parts_ > 0) co_await exited_.async_wait(net::as_tuple(net::use_awaitable));
  }

  // ---- requests (strand) ---------------------------------------------------------------------

  net::awaitable<json> request(std::string method, json params,
                               std::optional<milliseconds> timeout) {
    // A cancelled caller (a session reset) ends the wait below, which then tells the server.
    co_await net::this_coro::throw_if_cancelled(false);
    if (failure_) throw *failure_;
    if (!started_) throw mcp_error(mcp_error_kind::protocol, who() + " is not started: co_await start() first");
    auto self = shared_from_this();
    const std::int64_t id = next_id_++;
    auto p = std::make_shared<pending>(strand_);
    const milliseconds limit = timeout.value_or(options_.timeout);
    p->wake.expires_after(limit);
    pending_[id] = p;
    json msg = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (!params.is_null()) msg["params"] = std::move(params);
    send(msg);
    co_await p->wake.async_wait(net::as_tuple(net::use_awaitable));
    pending_.erase(id);
    if (p->failure) throw *p->failure;
    auto cs = co_await net::this_coro::cancellation_state;
    if (!p->answered && cs.cancelled() != net::cancellation_type::none) {
      send({{"jsonrpc", "2.0"},
            {"method", "notifications/cancelled"},
            {"params", {{"requestId", id}, {"reason", "cancelled by the client"}}}});
      throw mcp_error(mcp_error_kind::cancelled, who() + ": " + method + " was cancelled");
    }
    if (!p->answered) {
      // Tell the server to stop working on it (the answer, if one comes, is dropped).
      send({{"jsonrpc", "2.0"},
            {"method", "notifications/cancelled"},
            {"params", {{"requestId", id}, {"reason", "timeout"}}}});
      throw mcp_error(mcp_error_kind::timeout,
                      who() + " did not answer " + method + " within " +
                          std::to_string(limit.count()) + " ms: raise mcp.servers." +
                          options_.name + ".timeout, or check the server is not stuck");
    }
    if (auto e = p->message.find("error"); e != p->message.end()) {
      int code = e->is_object() ? e->value("code", 0) : 0;
      std::string text = e->is_object() ? e->value("message", std::string()) : e->dump();
      std::string fix = code == -32601   ? "; the server does not offer this method"
                        : code == -32602 ? "; check the name and the arguments"
                                         : "";
      throw mcp_error(mcp_error_kind::rpc_error,
                      who() + " answered " + method + " with error " + std::to_string(code) +
                          ": " + text + fix,
                      code);
    }
    auto r = p->message.find("result");
    if (r == p->message.end() || !r->is_object())
      throw mcp_error(mcp_error_kind::protocol,
                      who() + " answered " + method + " with no result object");
    co_return std::move(*r);
  }

 private:
  std::string who() const {
    return "MCP server '" + options_.name + "' (" + options_.command + ")";
  }

  // Every request in flight, and every later one, ends with `e`.
  void fail(const mcp_error& e) {
    if (!failure_) failure_ = e;
    for (auto& [id, p] : pending_) {
      if (!p->failure && !p->answered) p->failure = e;
      p->wake.cancel();
    }
  }

  // The server broke the protocol or went away: fail everything and end it.
  void broken(const mcp_error& e) {
    if (closing_) return;
    PARLEY_LOG(warn, "mcp " << options_.name << ": " << e.what());
    fail(e);
    closing_ = true;
    boost::system::error_code ec;
    stdin_.close(ec);
    if (!reaped_) escalate(SIGTERM);
  }

  std::string stderr_hint() const {
    if (stderr_tail_.empty()) return "";
    return "; its last words on stderr: " + shorten(stderr_tail_, 400);
  }

  // ---- writing -------------------------------------------------------------------------------

  void send(const json& msg) {
    if (!stdin_.is_open()) return;
    // dump() writes one line: strings escape their newlines.
    outbox_.push_back(msg.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    if (!writing_) net::co_spawn(strand_, write_loop(shared_from_this()), net::detached);
  }

  static net::awaitable<void> write_loop(std::shared_ptr<mcp_session> self) {
    self->writing_ = true;
    while (!self->outbox_.empty() && self->stdin_.is_open()) {
      auto [ec, n] = co_await net::async_write(self->stdin_, net::buffer(self->outbox_.front()),
                                               net::as_tuple(net::use_awaitable));
      self->outbox_.pop_front();
      if (ec) {
        if (ec != net::error::operation_aborted && !self->closing_)
          self->broken(mcp_error(mcp_error_kind::exited,
                                 self->who() + " stopped reading its stdin (" + ec.message() +
                                     "); it has probably exited" + self->stderr_hint()));
        break;
      }
    }
    self->outbox_.clear();
    self->writing_ = false;
  }

  // ---- reading -------------------------------------------------------------------------------

  static net::awaitable<void> read_stdout(std::shared_ptr<mcp_session> self) {
    std::string buf;
    for (;;) {
      auto [ec, n] = co_await net::async_read_until(
          self->stdout_, net::dynamic_buffer(buf, max_line), '\n', net::as_tuple(net::use_awaitable));
      if (ec) {
        if (ec == net::error::not_found)
          self->broken(mcp_error(mcp_error_kind::bad_output,
                                 self->who() + " wrote a line longer than " +
                                     std::to_string(max_line >> 20) + " MiB on stdout"));
        else
          self->broken(mcp_error(mcp_error_kind::exited,
                                 self->who() + " exited or closed its stdout (" + ec.message() +
                                     "): check that mcp.servers." + self->options_.name +
                                     ".command and .args start an MCP stdio server" +
                                     self->stderr_hint()));
        break;
      }
      std::string_view line(buf.data(), n - 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty() && !self->on_line(line)) break;
      buf.erase(0, n);
    }
    boost::system::error_code ignored;
    self->stdout_.close(ignored);
    self->part_ended();
  }

  // One message from the server; false when it broke the protocol.
  bool on_line(std::string_view line) {
    json msg = json::parse(line, nullptr, false);
    auto garbage = [&] {
      broken(mcp_error(mcp_error_kind::bad_output,
                       who() + " wrote something that is not JSON-RPC on stdout: '" +
                           shorten(line) +
                           "'; an MCP stdio server must write only MCP messages there (logs "
                           "go to stderr): fix the server or its arguments"));
      return false;
    };
    if (!msg.is_object() || msg.value("jsonrpc", "") != "2.0") return garbage();
    auto id = msg.find("id");
    auto method = msg.find("method");
    if (method != msg.end()) {
      if (!method->is_string()) return garbage();
      if (id == msg.end()) {  // a notification: logging, progress, list_changed, ...
        if (*method == "notifications/tools/list_changed") tools_changed_ = true;
        PARLEY_LOG(debug, "mcp " << options_.name << ": notification " << method->get<std::string>());
        return true;
      }
      // A request from the server: ping is answered; nothing else is offered (no roots,
      // sampling or elicitation capability was declared).
      if (*method == "ping") {
        send({{"jsonrpc", "2.0"}, {"id", *id}, {"result", json::object()}});
      } else {
        PARLEY_LOG(debug, "mcp " << options_.name << ": refused server request "
                                 << method->get<std::string>());
        send({{"jsonrpc", "2.0"},
              {"id", *id},
              {"error", {{"code", -32601}, {"message", "Method not found"}}}});
      }
      return true;
    }
    if (id == msg.end() || (msg.find("result") == msg.end() && msg.find("error") == msg.end()))
      return garbage();
    if (!id->is_number_integer()) {
      PARLEY_LOG(debug, "mcp " << options_.name << ": answer with an unknown id " << id->dump());
      return true;
    }
    auto it = pending_.find(id->get<std::int64_t>());
    if (it == pending_.end()) {  // a request that timed out already
      PARLEY_LOG(debug, "mcp " << options_.name << ": late answer to request " << id->dump());
      return true;
    }
    it->second->answered = true;
    it->second->message = std::move(msg);
    it->second->wake.cancel();
    return true;
  }

  static net::awaitable<void> read_stderr(std::shared_ptr<mcp_session> self) {
    std::string buf;
    for (;;) {
      auto [ec, n] = co_await net::async_read_until(
          self->stderr_, net::dynamic_buffer(buf, 1u << 20), '\n', net::as_tuple(net::use_awaitable));
      std::string_view line(buf.data(), ec ? buf.size() : n - 1);
      if (!line.empty()) {
        PARLEY_LOG(debug, "mcp " << self->options_.name << " stderr: " << shorten(line, 1000));
        self->stderr_tail_.append(line).append(" | ");
        if (self->stderr_tail_.size() > stderr_tail_size)
          self->stderr_tail_.erase(0, self->stderr_tail_.size() - stderr_tail_size);
      }
      if (ec) break;
      buf.erase(0, n);
    }
    boost::system::error_code ignored;
    self->stderr_.close(ignored);
    self->part_ended();
  }

  // ---- the process ---------------------------------------------------------------------------

  static net::awaitable<void> watch_exit(std::shared_ptr<mcp_session> self) {
    if (self->pidfd_.is_open()) {
      // The pidfd becomes readable when the child exits: no thread, no polling.
      co_await self->pidfd_.async_wait(net::posix::descriptor_base::wait_read,
                                       net::as_tuple(net::use_awaitable));
    } else {
      // No pidfd_open (old kernel): look every 50 ms once stdout has closed or we are closing.
      net::steady_timer t(self->strand_);
      for (;;) {
        t.expires_after(std::chrono::milliseconds(50));
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        int status = 0;
        if (::waitpid(self->pid_, &status, WNOHANG) != 0) {
          self->reaped(status);
          co_return;
        }
      }
    }
    int status = 0;
    if (::waitpid(self->pid_, &status, 0) < 0) status = -1;  // ECHILD: SIGCHLD ignored
    self->reaped(status);
  }

  void reaped(int status) {
    reaped_ = true;
    kill_timer_.cancel();
    boost::system::error_code ec;
    pidfd_.close(ec);
    std::string how = status < 0            ? "exited"
                      : WIFEXITED(status)   ? "exited with status " + std::to_string(WEXITSTATUS(status))
                      : WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                            : "ended";
    if (closing_)
      PARLEY_LOG(debug, "mcp " << options_.name << ": pid " << pid_ << " " << how);
    else
      PARLEY_LOG(info, "mcp " << options_.name << ": pid " << pid_ << " " << how);
    pid_ = -1;
    part_ended();
    // Pending calls fail through stdout's end (the reader), which carries the stderr hint.
  }

  // The process is reaped and both its outputs have ended: nothing of ours is left in flight
  // on the io_context (an io_context destroyed with reads pending would destroy this object
  // from inside its own reads).
  void part_ended() {
    if (--open_parts_ == 0) exited_.cancel();
  }

  // Closing stdin asked the server to exit; give it the grace period, then `sig`.
  void escalate(int sig) {
    kill_timer_.expires_after(options_.shutdown_grace);
    kill_timer_.async_wait([self = shared_from_this(), sig](boost::system::error_code ec) {
      if (ec || self->reaped_ || self->pid_ < 0) return;
      PARLEY_LOG(debug, "mcp " << self->options_.name << ": sending signal " << sig << " to pid "
                               << self->pid_);
      ::kill(self->pid_, sig);
      if (sig == SIGTERM) self->escalate(SIGKILL);
    });
  }

  net::strand<net::any_io_executor> strand_;
  mcp_server_options options_;
  net::posix::stream_descriptor stdin_, stdout_, stderr_, pidfd_;
  net::steady_timer kill_timer_;
  net::steady_timer exited_;  // cancelled once the process is reaped
  std::atomic<int> pid_{-1};
  std::atomic<bool> tools_changed_{false};  // read from any thread
  int open_parts_ = 0;  // of the process, its stdout and its stderr, those not yet ended
  bool started_ = false;
  bool closing_ = false;
  bool reaped_ = false;
  bool writing_ = false;
  std::int64_t next_id_ = 1;
  std::map<std::int64_t, std::shared_ptr<pending>> pending_;
  std::deque<std::string> outbox_;
  std::optional<mcp_error> failure_;
  std::string stderr_tail_;

  mutable std::mutex info_m_;  // read from any thread
  std::string protocol_version_;
  json server_info_ = json::object();
  std::string instructions_;
};

}  // namespace detail

namespace {
// Runs `aw` on the server's strand; the caller resumes on its own executor.
template <class T>
net::awaitable<T> on_strand(const std::shared_ptr<detail::mcp_session>& s, net::awaitable<T> aw) {
  co_return co_await net::co_spawn(s->strand(), std::move(aw), net::use_awaitable);
}
}  // namespace

mcp_client::mcp_client(net::any_io_executor executor, mcp_server_options options)
    : impl_(std::make_shared<detail::mcp_session>(std::move(executor), std::move(options))) {
  // A write to a server that has exited must fail with EPIPE, not kill the process.
  static const bool sigpipe_ignored = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
}

mcp_client::~mcp_client() { shutdown(); }

// (No lambda coroutines handed to co_spawn here: GCC 12 destroys their captures twice.)
net::awaitable<void> mcp_client::start() {
  auto s = impl_;
  co_await net::co_spawn(s->strand(), s->start(), net::use_awaitable);
}

net::awaitable<std::vector<mcp_tool_info>> mcp_client::list_tools() {
  std::vector<mcp_tool_info> tools;
  std::optional<std::string> cursor;
  for (int page = 0;; ++page) {
    if (page >= 1000)
      throw mcp_error(mcp_error_kind::protocol,
                      "MCP server '" + impl_->options().name +
                          "' keeps sending tools/list pages (1000 so far): is its cursor stuck?");
    if (page == 0) impl_->listing_tools();
    json params = json::object();
    if (cursor) params["cursor"] = *cursor;
    json r = co_await request("tools/list", std::move(params));
    if (auto t = r.find("tools"); t != r.end() && t->is_array()) {
      for (const auto& x : *t) {
        if (!x.is_object() || !x.contains("name") || !x["name"].is_string()) continue;
        mcp_tool_info info;
        info.name = x["name"].get<std::string>();
        info.title = x.value("title", "");
        if (info.title.empty() && x.contains("annotations") && x["annotations"].is_object())
          info.title = x["annotations"].value("title", "");
        info.description = x.value("description", "");
        info.input_schema = x.value("inputSchema", json{{"type", "object"}});
        if (!info.input_schema.is_object()) info.input_schema = json{{"type", "object"}};
        info.annotations = x.value("annotations", json());
        tools.push_back(std::move(info));
      }
    }
    auto next = r.find("nextCursor");
    if (next == r.end() || !next->is_string() || next->get<std::string>().empty()) break;
    cursor = next->get<std::string>();
  }
  co_return tools;
}

net::awaitable<json> mcp_client::call_tool(std::string name, json arguments,
                                           std::optional<milliseconds> timeout) {
  if (arguments.is_null()) arguments = json::object();
  // (The params built first: GCC 12 miscompiles a braced list inside a co_await.)
  json params = json::object();
  params["name"] = std::move(name);
  params["arguments"] = std::move(arguments);
  json r = co_await request("tools/call", std::move(params), timeout);
  co_return r;
}

net::awaitable<json> mcp_client::request(std::string method, json params,
                                         std::optional<milliseconds> timeout) {
  auto s = impl_;
  co_return co_await on_strand(s, s->request(std::move(method), std::move(params), timeout));
}

void mcp_client::shutdown() {
  net::post(impl_->strand(), [s = impl_] { s->shutdown(); });
}

net::awaitable<void> mcp_client::wait_exited() {
  auto s = impl_;
  co_await net::co_spawn(s->strand(), s->wait_exited(), net::use_awaitable);
}

const mcp_server_options& mcp_client::options() const { return impl_->options(); }
std::string mcp_client::protocol_version() const { return impl_->protocol_version(); }
json mcp_client::server_info() const { return impl_->server_info(); }
std::string mcp_client::instructions() const { return impl_->instructions(); }
int mcp_client::pid() const { return impl_->pid(); }
bool mcp_client::tools_changed() const { return impl_->tools_changed(); }

}  // namespace parley::llm
