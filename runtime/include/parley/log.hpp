#pragma once
/// One logging facility with levels. PARLEY_LOG(level, stream-expression) is lazy: the
/// expression is not evaluated when the level is off. Thread-safe.
#include <atomic>
#include <sstream>
#include <string>
#include <string_view>

#include <parley/errors.hpp>

namespace parley {

enum class log_level : int { trace = 0, debug, info, warn, error, off };

/// Parses "trace|debug|info|warn|error|off". @throws config_error naming the value.
log_level parse_log_level(std::string_view text);
std::string_view to_string(log_level level);

/// Names the calling thread as top, gdb and perf show it (Linux keeps 15 characters).
void name_this_thread(std::string_view name);

/// What logs at info and above show for a session id: session ids are bearer secrets (whoever
/// holds one joins the conversation), so those lines carry "#" and 8 hex digits of a hash of
/// it instead, the same for the same id in every run, from which the id cannot be read back.
/// Debug and trace lines show ids whole. Any thread.
std::string session_tag(std::string_view session_id);

namespace detail {
extern std::atomic<int> g_log_level;
void log_write(log_level level, const std::string& line);
}  // namespace detail

inline void set_log_level(log_level level) { detail::g_log_level.store(static_cast<int>(level)); }
inline log_level get_log_level() { return static_cast<log_level>(detail::g_log_level.load()); }
inline bool log_enabled(log_level level) {
  return static_cast<int>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}

}  // namespace parley

#define PARLEY_LOG(level, expr)                                   \
  do {                                                            \
    if (::parley::log_enabled(::parley::log_level::level)) {      \
      std::ostringstream parley_log_os_;                          \
      parley_log_os_ << expr;                                     \
      ::parley::detail::log_write(::parley::log_level::level,     \
                                  parley_log_os_.str());          \
    }                                                             \
  } while (0)
