#pragma once
// One WebSocket client from one session to one agent URL (BAF's way to message agents), on its
// own strand. Private to the platforms library; see websocket_agents.hpp for the behaviour.
#include <memory>
#include <string>
#include <string_view>

#include <parley/agent_link.hpp>
#include <parley/platforms/websocket_agents.hpp>

#include "beast.hpp"

namespace parley {
class agent;
}

namespace parley::platforms::detail {

/// A ws:// or wss:// URL taken apart. `error` says what is wrong ("" when it is usable).
struct agent_url {
  bool tls = false;
  std::string host, port, target;
  std::string error;
};
agent_url parse_agent_url(std::string_view url);

class ws_agent_link {
 public:
  virtual ~ws_agent_link() = default;
  /// Any thread. Queues a frame (the message `l` is its lineage) and connects if needed.
  virtual void send(std::shared_ptr<const std::string> frame, lineage l) = 0;
  /// Any thread. Connects now if not connected.
  virtual void open() = 0;
  /// Any thread. Closes and drops what is queued; the link is done.
  virtual void close() = 0;
};

/// `ssl` must outlive the link (it is the transport's). `url` has been parsed without error.
std::shared_ptr<ws_agent_link> make_ws_agent_link(agent& a, std::string session_id,
                                                  std::string url, agent_url parsed,
                                                  const websocket_agent_options& o,
                                                  ssl::context& ssl);

}  // namespace parley::platforms::detail
