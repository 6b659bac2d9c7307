#pragma once
// FNV-1a, 64 bits: stable across platforms, builds and runs (std::hash is neither), for
// anything that must hash the same everywhere: session tags, NLU features, tool names, shards.
#include <cstdint>
#include <string_view>

namespace parley {

inline constexpr std::uint64_t fnv1a_offset = 14695981039346656037ull;
inline constexpr std::uint64_t fnv1a_prime = 1099511628211ull;

/// `h` (the offset basis, or the hash so far) mixed with the bytes of `s`.
constexpr std::uint64_t fnv1a(std::string_view s, std::uint64_t h = fnv1a_offset) {
  for (unsigned char c : s) h = (h ^ c) * fnv1a_prime;
  return h;
}

/// The hash of "a\0b": two strings that cannot run into each other.
constexpr std::uint64_t fnv1a_pair(std::string_view a, std::string_view b, std::uint64_t h = fnv1a_offset) {
  return fnv1a(b, fnv1a(std::string_view("\0", 1), fnv1a(a, h)));
}

}  // namespace parley
