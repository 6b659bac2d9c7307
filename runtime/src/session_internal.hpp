#pragma once
// Private to the session's source files: what more than one of them needs.
#include <chrono>
#include <cstdint>
#include <string>

#include <parley/session.hpp>

namespace parley {

// A `schedule()`d event waiting for its time. Owned by the session (so close() can cancel it)
// and by its pending wait.
struct session::scheduled {
  explicit scheduled(const strand_type& s) : timer(s) {}
  timer_type timer;
  std::string key;
};

namespace detail {
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             wall_clock::now().time_since_epoch())
      .count();
}
}  // namespace detail

}  // namespace parley
