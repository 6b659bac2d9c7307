#pragma once
// splitmix64: a tiny, fully specified generator, so shuffles and sampled text are identical
// on every platform and standard library (std::shuffle and the std distributions are not).
#include <cstddef>
#include <cstdint>

namespace parley::nlu::detail {

struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

}  // namespace parley::nlu::detail
