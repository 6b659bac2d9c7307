#pragma once
// The process's resident memory, for the tests that check memory comes back (eviction).
#include <unistd.h>

#include <cstddef>
#include <fstream>

namespace test {

// Sanitizers bring their own allocator, which keeps freed memory: RSS says nothing there.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool glibc_malloc = false;
#else
inline constexpr bool glibc_malloc = true;
#endif

// Resident set size of this process, in bytes (/proc/self/statm: pages).
inline std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace test
