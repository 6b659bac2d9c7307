#pragma once
#include <cstdint>

namespace wstest {
/// Segments carrying data that the socket `fd` has received so far (Linux TCP_INFO).
std::uint32_t data_segments_in(int fd);
}  // namespace wstest
