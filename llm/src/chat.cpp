#include <parley/llm/chat.hpp>

namespace parley::llm {

std::string_view to_string(error_kind k) {
  switch (k) {
    case error_kind::config: return "config";
    case error_kind::connect: return "connect";
    case error_kind::timeout: return "timeout";
    case error_kind::cancelled: return "cancelled";
    case error_kind::unauthorized: return "unauthorized";
    case error_kind::http_status: return "http_status";
    case error_kind::server_error: return "server_error";
    case error_kind::malformed_response: return "malformed_response";
    case error_kind::closed_mid_stream: return "closed_mid_stream";
  }
  return "unknown";
}

}  // namespace parley::llm
