#pragma once
/// BAF's way to message other agents (issue 13): session::send_to_agent(url, message) opens a
/// WebSocket client per session and URL and sends `{"action":"agent_reply_str","message":...}`
/// with Parley's lineage fields ("id", "causation_id", "correlation_id", "sender", "depth"),
/// which BAF ignores. What the peer answers on that socket comes back to the session as
/// non-human events whose sender() is the URL. Failures (bad URL, unreachable, refused
/// handshake, dropped connection, full queue, error frames) come as `agent_error_event`s.
///
/// Each link opens lazily (never blocking the session's strand), speaks ws:// and wss://,
/// queues at most `queue_limit` messages, reconnects with backoff, resends the messages the
/// peer has not answered yet after a reconnect (the peer drops those it handled already, by
/// id), and closes when its session resets or closes. It joins the peer with a session id of
/// its own (X-Session-ID), kept across reconnects.
///
/// Beast stays in the .cpp files.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <parley/agent_link.hpp>
#include <parley/config.hpp>

namespace parley {
class agent;
}

namespace parley::platforms {

/// Settings of the agent links (config keys `platforms.websocket_agents.*`).
struct websocket_agent_options {
  std::size_t queue_limit = 256;  ///< messages waiting per link; beyond: agent_error "queue full"
  std::chrono::milliseconds connect_timeout{5'000};  ///< TCP, TLS and WebSocket handshakes
  int reconnect_attempts = 3;     ///< failed connects in a row before queued messages fail
  std::chrono::milliseconds backoff{200};       ///< first wait before reconnecting (doubles)
  std::chrono::milliseconds backoff_max{5'000};
  std::chrono::milliseconds idle_timeout{60'000};  ///< no data this long (pinged at half)
  std::string token;              ///< sent as `Authorization: Bearer` (a peer's ?token= works too)
  bool tls_verify = true;         ///< wss://: verify the peer's certificate and host name
  std::size_t max_size = 1 << 20; ///< largest frame accepted from a peer

  /// Reads `platforms.websocket_agents.*`. @throws config_error naming a bad value.
  static websocket_agent_options from_config(const config& cfg);
};

/// Registers the "websocket" agent transport on `a` (replacing one set before) and returns
/// it. The WebSocket platform calls it when it starts if none is set. Any thread.
std::shared_ptr<agent_transport> use_websocket_agents(agent& a, websocket_agent_options o = {});

}  // namespace parley::platforms
