#pragma once
// The A2A server's requests, without sockets: the agent card, and JSON-RPC 2.0 (SendMessage,
// SendStreamingMessage, GetTask, CancelTask, ListTasks, SubscribeToTask) answered through an
// `exchange` that the HTTP session implements. Errors carry the spec's codes and come back
// with HTTP 200, as @a2a-js/sdk's server answers them.
#include <memory>
#include <optional>
#include <string>

#include <parley/platforms/websocket_platform.hpp>

#include "a2a_tasks.hpp"

namespace parley::platforms::detail::a2a {

/// One HTTP request being answered (the HTTP session implements it; Beast stays there).
class exchange {
 public:
  virtual ~exchange() = default;
  /// The connection's strand (timers of the request run there).
  virtual net::any_io_executor executor() = 0;
  /// Any thread, once: a whole JSON response with HTTP 200.
  virtual void respond(std::string body) = 0;
  /// Any thread: an SSE event (`data: body`); the first sends the header, `last` ends the
  /// response. Events of one request must be given in order.
  virtual void event(std::string body, bool last) = 0;
};

/// What the server needs of an HTTP request.
struct rpc_request {
  std::optional<std::string> version;  ///< the A2A-Version header, when sent
  std::string content_type;
  std::string body;
};

class server {
 public:
  /// `needs_token`: the card declares bearer auth. Files in messages may be `max_file_size`
  /// bytes decoded.
  server(parley::agent& owner, parley::platform* plat, a2a_options opts, bool needs_token,
         std::size_t max_file_size);

  /// The agent card; its interface URL is opts.url, else `scheme://host` + opts.path.
  std::string card(std::string_view scheme, std::string_view host) const;
  /// Answers one JSON-RPC POST through `x`. Never throws.
  void handle(const rpc_request& r, const std::shared_ptr<exchange>& x);

  task_store& tasks() { return *tasks_; }
  const a2a_options& options() const { return tasks_->options(); }

 private:
  void send_message(const json& id, const json& params, bool stream,
                    const std::shared_ptr<exchange>& x);
  void subscribe(const json& id, const json& params, const std::shared_ptr<exchange>& x);

  parley::agent& agent_;
  std::shared_ptr<task_store> tasks_;
  bool needs_token_;
  std::size_t max_file_size_;
};

}  // namespace parley::platforms::detail::a2a
