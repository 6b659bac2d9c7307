#pragma once
/// The interface a platform (WebSocket, console, an embedding program) implements.
#include <string_view>

#include <parley/reply.hpp>

namespace parley {

class agent;
class session;

class platform {
 public:
  virtual ~platform() = default;
  virtual std::string_view name() const = 0;
  /// Starts serving (non-blocking). Called by agent::start() once the io_context runs.
  /// @throws std::runtime_error when it cannot (port in use, bad certificate ...).
  virtual void start(agent& owner) = 0;
  /// Stops accepting input and finishes sending queued replies. Any thread; idempotent.
  virtual void stop() = 0;
  /// Delivers a reply of `s`. Any thread (the session's strand, or a DB thread when
  /// db.sync_commit is on); replies of one session arrive in order.
  virtual void deliver(session& s, const reply& r) = 0;
  /// The session `s` was reset or closed (e.g. to tell its clients). Any thread.
  virtual void session_ended(session& /*s*/, std::string_view /*reason*/) {}
};

}  // namespace parley
