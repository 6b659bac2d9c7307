#include <parley/log.hpp>

#include <pthread.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include <parley/fnv.hpp>

namespace parley {

void name_this_thread(std::string_view name) {
  char buf[16] = {};
  name.copy(buf, sizeof buf - 1);
  pthread_setname_np(pthread_self(), buf);
}

std::string session_tag(std::string_view session_id) {
  // FNV-1a, 64 bits, of which 32 are shown: enough to tell sessions apart in a log, far too
  // few to recover a 128-bit id.
  const std::uint64_t h = fnv1a(session_id);
  static const char* hex = "0123456789abcdef";
  std::string tag = "#";
  for (int shift = 60; shift >= 32; shift -= 4) tag += hex[(h >> shift) & 15];
  return tag;
}

namespace detail {
std::atomic<int> g_log_level{static_cast<int>(log_level::info)};

void log_write(log_level level, const std::string& line) {
  static std::mutex m;
  using namespace std::chrono;
  auto now = system_clock::now();
  auto t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  std::lock_guard lock(m);
  std::fprintf(stderr, "%s.%03d %-5s %s\n", stamp, static_cast<int>(ms),
               to_string(level).data(), line.c_str());
}
}  // namespace detail

log_level parse_log_level(std::string_view text) {
  for (int i = 0; i <= static_cast<int>(log_level::off); ++i)
    if (to_string(static_cast<log_level>(i)) == text) return static_cast<log_level>(i);
  throw config_error("unknown log level '" + std::string(text) +
                     "' (log.level, --log-level): use trace, debug, info, warn, error or off");
}

std::string_view to_string(log_level level) {
  switch (level) {
    case log_level::trace: return "trace";
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    case log_level::off: return "off";
  }
  return "?";
}

}  // namespace parley
