#pragma once
// What the WebSocket platform and its connections share: options, counters, and the registry
// of open connections by session id (so a reply reaches every connection of its session).
// No Beast here: the platform's glue includes this without compiling Beast.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <parley/net.hpp>
#include <parley/platforms/websocket_platform.hpp>

namespace parley::platforms::detail {

namespace a2a {
class server;
}
class inspector_service;

/// One open WebSocket connection, seen from outside its strand.
class ws_connection_base {
 public:
  virtual ~ws_connection_base() = default;
  /// Any thread: queues a text frame (posted to the connection's strand). `seq` is the
  /// reply's number (reply::seq; 0 for frames that are not numbered replies): a connection
  /// with a cursor (?since=N) sends each number once, in order.
  virtual void send(std::shared_ptr<const std::string> frame, std::int64_t seq) = 0;
  /// Any thread: sends what is queued, then closes with 1001 (going away).
  virtual void shutdown() = 0;
  /// Any thread: sends what is queued, then closes with 1012 (service restart): the session
  /// moved to another node; the client reconnects (with ?since=N) and reaches it there.
  virtual void moved() = 0;
  /// The session this connection speaks for (immutable).
  virtual const std::string& session_id() const = 0;
};

struct ws_hub {
  websocket_options opts;
  parley::agent* owner = nullptr;
  parley::platform* plat = nullptr;
  std::atomic<bool> stopping{false};
  std::string scheme = "http";
  std::uint16_t port = 0;  // the bound port (set before accepting)
  std::string advertised;  // host:port the other nodes reach this one at (set before accepting)
  wall_clock::time_point started = wall_clock::now();
  std::shared_ptr<a2a::server> a2a;  // the A2A server on this port, when platforms.a2a.enabled
  // The web inspector on this port (/inspect), when enabled; with no owner (parley-inspect
  // serve) it is all the port serves.
  std::shared_ptr<inspector_service> inspector;

  std::atomic<std::size_t> open{0};  // reserved WebSocket slots (handshaking or open)
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, slow_closed{0}, rate_limited{0},
      frames_in{0}, frames_out{0}, forwarded{0};

  /// A slot for a new WebSocket, or false when max_connections are open. Any thread.
  bool try_reserve();
  /// Gives a slot back (the connection is gone). Any thread.
  void release();
  /// Blocks until no slot is held or `deadline`. Returns whether none is held.
  bool wait_all_closed(clock::time_point deadline);

  /// Registers an accepted connection of `session_id`; returns its id. Any thread.
  std::uint64_t add(const std::string& session_id, std::weak_ptr<ws_connection_base> c);
  void remove(std::uint64_t id, const std::string& session_id);
  std::vector<std::shared_ptr<ws_connection_base>> connections_of(const std::string& session_id);
  std::vector<std::shared_ptr<ws_connection_base>> all_connections();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t next_id_ = 1;
  struct entry {
    std::uint64_t id;
    std::weak_ptr<ws_connection_base> conn;
  };
  std::unordered_map<std::string, std::vector<entry>> by_session_;
};

/// The listening side, made by start_ws_server (Beast lives in ws_server.cpp).
class ws_server {
 public:
  virtual ~ws_server() = default;
  /// Any thread: stops accepting.
  virtual void stop() = 0;
  virtual std::uint16_t port() const = 0;
};

/// Binds, listens and starts accepting on `io`. @throws std::runtime_error naming the address
/// or the TLS file that failed.
std::shared_ptr<ws_server> start_ws_server(net::io_context& io, std::shared_ptr<ws_hub> hub);

/// The chat page (platforms/web/chat.html, built into the binary).
std::string_view chat_page();

/// The inspector's service (inspector_service.hpp) reading `db` ("" = none), asking `token`.
std::shared_ptr<inspector_service> start_inspector(std::string db, std::string token);
/// Stops its threads (inspector_service::stop). Idempotent.
void stop_inspector(inspector_service& i);

/// Whether the inspector is served: `setting` when given, else only on a loopback `host`.
bool inspector_enabled(const std::optional<bool>& setting, const std::string& host);

}  // namespace parley::platforms::detail
