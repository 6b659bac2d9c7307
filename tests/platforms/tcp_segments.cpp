// Segments with data a TCP socket has received (TCP_INFO), apart from the tests: <linux/tcp.h>
// has the counter, and it cannot share a translation unit with <netinet/tcp.h> (Asio's).
#include "tcp_segments.hpp"

#include <linux/tcp.h>
#include <sys/socket.h>

namespace wstest {

std::uint32_t data_segments_in(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, 6 /* IPPROTO_TCP */, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_data_segs_in;
}

}  // namespace wstest
