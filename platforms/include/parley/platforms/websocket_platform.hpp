#pragma once
/// The WebSocket platform: a Boost.Beast server speaking BAF's JSON frames
/// (`{"action","message","history","timestamp"}`), so BAF clients work unchanged. The same port
/// serves the browser chat page (GET /), a health check (GET /health), the web inspector
/// (/inspect, see docs/inspector.md) and 404 otherwise.
///
/// A connection picks its session with the `X-Session-ID` header or `?session_id=` (else a
/// fresh id); several connections may share one session and every reply goes to all of them.
/// Closing a connection never ends its session; reconnecting with the same id resumes it.
/// Limits (frame size, UTF-8, rate, connections, slow readers, timeouts), an Origin allow-list,
/// a bearer token and TLS come from `websocket_options` (config keys `platforms.websocket.*`).
/// A session id is a bearer secret: whoever holds it joins the conversation. Ids the server
/// makes are 128 random bits from the operating system's CSPRNG.
///
/// Beast stays in the .cpp files: this header only needs the runtime.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <parley/config.hpp>
#include <parley/platform.hpp>

namespace parley::platforms {

/// The A2A (Agent2Agent protocol v1.0) server that shares the WebSocket platform's port (agent
/// card at /.well-known/agent-card.json, JSON-RPC at `path`), and the client sessions use to
/// reach other A2A agents (session::ask_agent). Defaults are those of the `platforms.a2a.*` keys.
struct a2a_options {
  bool enabled = true;            ///< serve the card and JSON-RPC, and register the client
  std::string path = "/a2a";      ///< where JSON-RPC is served (the card's interface URL)
  /// The interface URL the card announces; "" = this server's scheme, the request's Host and
  /// `path` (set it behind a proxy).
  std::string url;
  std::string name;                         ///< the card's name; "" = the agent's name
  std::string description = "A Parley agent";
  std::string version = "1.0.0";           ///< the agent's version (the card's)
  /// Skills for the card, "name: description" each; empty = one skill per intent.
  std::vector<std::string> skills;
  /// States in which the agent waits for an answer to its question: a turn ending there leaves
  /// the task INPUT_REQUIRED; any other state completes it.
  std::vector<std::string> input_required_states;
  std::size_t max_body = 1 << 20;           ///< largest JSON-RPC request body, bytes (else 413)
  std::size_t max_tasks = 10000;            ///< tasks kept in memory (oldest ended go first)
  /// How long a blocking SendMessage waits for its turn to end; then the task is answered as
  /// it stands (WORKING) and the client may poll GetTask or SubscribeToTask.
  std::chrono::milliseconds wait_timeout{60'000};
  std::chrono::milliseconds client_timeout{30'000};  ///< client: one request (card, send, stream)
  std::chrono::milliseconds card_ttl{300'000};       ///< client: how long a fetched card is used
  std::size_t max_response = 4 << 20;                ///< client: largest answer or SSE event
  /// Client: idle keep-alive connections kept per peer origin (scheme://host:port); 0 = a new
  /// connection per request.
  std::size_t max_idle_connections = 100;
  /// Client: an idle connection is closed after this (sooner if the peer's Keep-Alive says so).
  std::chrono::milliseconds idle_connection_timeout{4'000};

  /// Reads `platforms.a2a.*` from `cfg`. @throws config_error naming a bad value.
  static a2a_options from_config(const config& cfg);
};

/// Settings of the WebSocket platform. Defaults are those of the config keys.
struct websocket_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8765;                  ///< 0 = any free port (see websocket_platform::port)
  std::size_t max_size = 1 << 20;             ///< largest frame, bytes; bigger closes with 1009
  std::size_t max_file_size = 1 << 20;        ///< largest decoded `user_file`, bytes
  std::vector<std::string> origins;           ///< allowed Origin headers; empty = any (else 403)
  std::string token;                          ///< required bearer token; empty = none (else 401)
  std::string tls_cert;                       ///< PEM certificate chain file; with tls_key: wss://
  std::string tls_key;                        ///< PEM private key file
  std::size_t max_connections = 10000;        ///< open WebSockets; over it: 503 at the handshake
  double rate_limit = 20.0;                   ///< messages per second per connection; 0 = none
  std::size_t rate_burst = 40;                ///< messages a connection may send at once
  /// Bytes of outgoing frames queued per connection; a client with more closes with 1008 (a
  /// frame bigger than this still goes when nothing else is queued).
  std::size_t send_buffer = 4 << 20;
  /// While frames are queued, the socket must take some of them this often, else 1008.
  std::chrono::milliseconds send_timeout{30'000};
  std::chrono::milliseconds handshake_timeout{10'000};  ///< HTTP request, TLS, upgrade and close
  std::chrono::milliseconds idle_timeout{60'000};       ///< no data this long (pinged at half) closes
  a2a_options a2a;                                      ///< the A2A server on the same port
  /// Several nodes on one database: a client whose session another node owns is relayed to
  /// that node (plain ws between nodes); off: it gets 503 naming the owner. Not with TLS.
  bool forward = true;
  /// Where the other nodes reach this one (host:port), published with its leases; "" =
  /// host and the bound port (the machine's host name when host is 0.0.0.0 or ::).
  std::string advertise;
  /// The web inspector at /inspect (docs/inspector.md): on or off; unset = on only when `host`
  /// is a loopback address. Key platforms.websocket.inspector.
  std::optional<bool> inspector;
  /// The database the inspector reads, a SQLite file or a postgresql:// URI (read-only
  /// connections of its own). parley::run sets
  /// it from --db; a bot that does not use parley::run sets it itself. "" = none (the
  /// inspector's API answers 503 saying so).
  std::string inspector_db;

  /// Reads `platforms.websocket.*` from `cfg`. @throws config_error naming a bad value.
  static websocket_options from_config(const config& cfg);
};

/// Counters, for /health, tests and benchmarks. Any thread.
struct websocket_stats {
  std::size_t connections = 0;      ///< open WebSocket connections
  std::uint64_t accepted = 0;       ///< WebSocket handshakes accepted so far
  std::uint64_t rejected = 0;       ///< handshakes refused (401, 403, 503)
  std::uint64_t slow_closed = 0;    ///< connections closed as slow readers (send_buffer, send_timeout)
  std::uint64_t rate_limited = 0;   ///< messages dropped by the rate limit
  std::uint64_t frames_in = 0;      ///< frames received
  std::uint64_t frames_out = 0;     ///< frames sent
  std::uint64_t forwarded = 0;      ///< connections relayed to the node that owns their session
};

class websocket_platform final : public platform {
 public:
  explicit websocket_platform(websocket_options options = {});
  ~websocket_platform() override;
  websocket_platform(const websocket_platform&) = delete;
  websocket_platform& operator=(const websocket_platform&) = delete;

  std::string_view name() const override { return "websocket"; }
  /// Binds and starts accepting on the agent's io_context. Logs "open http://HOST:PORT/".
  /// @throws std::runtime_error naming the address (in use, bad host) or the TLS files.
  void start(agent& owner) override;
  /// Any thread; idempotent. Stops accepting and reading, lets the sessions of open
  /// connections answer what they have queued, sends every queued reply, then closes each
  /// connection with 1001 (going away). Blocks for at most about 2 seconds; call it off the
  /// agent's worker threads (agent::stop does).
  void stop() override;
  /// Any thread: encodes the reply once and posts it to each connection of the session.
  void deliver(session& s, const reply& r) override;
  /// A session that moved to another node (several nodes on PostgreSQL): its connections here
  /// are closed with 1012, so their clients reconnect and reach it where it lives now.
  void session_ended(session& s, std::string_view reason) override;

  /// The bound port (after start): useful with port 0. Any thread.
  std::uint16_t port() const;
  /// "http://HOST:PORT/" (or https) after start. Any thread.
  std::string url() const;
  websocket_stats stats() const;
  const websocket_options& options() const { return options_; }

 private:
  struct impl;
  websocket_options options_;
  std::shared_ptr<impl> impl_;
};

}  // namespace parley::platforms
