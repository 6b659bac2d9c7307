#pragma once
// What the A2A server needs of the A2A client of the same agent: whether a session still waits
// for agents it asked (session::ask_agent), so that the A2A task of its turn ends only once
// their answers are in (a relay answers with its peer's reply, not before it).
#include <functional>
#include <string>

namespace parley::platforms::detail::a2a {

class asks_in_flight {
 public:
  virtual ~asks_in_flight() = default;
  /// Any thread. True when `session_id` has no ask in flight (`fn` is dropped); else false, and
  /// `fn` runs, on the thread that finished it, once the last one has ended, after everything
  /// it brought back was posted to the session.
  virtual bool when_answered(const std::string& session_id, std::function<void()> fn) = 0;
};

}  // namespace parley::platforms::detail::a2a
