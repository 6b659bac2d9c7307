#pragma once
/// The web inspector's parts that other programs use: the standalone server of
/// `parley-inspect DB serve`, and the diagram layout. The inspector itself is described in
/// docs/inspector.md; with an agent it is served by the WebSocket platform (key
/// platforms.websocket.inspector).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace parley::platforms {

/// Lays out a DOT graph (e.g. render_diagram(..., diagram_format::dot)) with Graphviz's `dot`
/// and returns it as an SVG document. Any thread (Graphviz is not thread-safe; calls are
/// serialised). @throws std::runtime_error naming the problem when the text is not DOT.
std::string dot_to_svg(std::string_view dot);

struct inspector_options {
  std::string db;                 ///< the SQLite file or postgresql:// URI to inspect
  std::string host = "127.0.0.1";
  std::uint16_t port = 8780;      ///< 0 = any free port (see inspector_server::port)
  std::string token;              ///< required by /inspect/api and /inspect/live; "" = none
};

/// The inspector for a database file on its own, with no agent: the WebSocket platform's
/// listener and HTTP sessions on an io thread of its own, serving /inspect (and / redirecting
/// there) and /health. Methods: any thread.
class inspector_server {
 public:
  explicit inspector_server(inspector_options options);
  ~inspector_server();  ///< stops
  inspector_server(const inspector_server&) = delete;
  inspector_server& operator=(const inspector_server&) = delete;

  /// Binds and starts serving. @throws std::runtime_error naming the address that failed.
  void start();
  /// Closes the listener and the live sockets, joins the threads. Idempotent.
  void stop();
  /// The bound port (after start).
  std::uint16_t port() const;
  /// "http://HOST:PORT/inspect" (after start).
  std::string url() const;

 private:
  struct impl;
  inspector_options options_;
  std::unique_ptr<impl> impl_;
};

}  // namespace parley::platforms
