#pragma once
// The HTTP side of the A2A client: URLs, one request/answer over a fresh connection (plain or
// TLS) bounded by a deadline, and SSE framing. Coroutines on the caller's executor.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <parley/net.hpp>

namespace parley::platforms::detail::a2a {

struct url_parts {
  bool tls = false;
  std::string host, port;
  std::string target;  ///< path and query ("/" at least)
  std::string token;   ///< ?token= of the URL, sent as a bearer token
  std::string origin() const;  ///< scheme://host:port
};

/// Parses an http:// or https:// URL. nullopt (and `why`) when it is not one.
std::optional<url_parts> parse_url(std::string_view url, std::string* why);

/// Where the SDK looks for the card of `base`: its folder + ".well-known/agent-card.json"
/// (new URL(".well-known/agent-card.json", base)), without the query.
url_parts card_location(const url_parts& base);

struct http_answer {
  unsigned status = 0;
  std::string content_type;
  std::string body;  ///< empty when the answer was an SSE stream given to on_sse
};

/// One request: GET when `body` is empty, else POST of JSON. `on_sse` (optional) gets the
/// bytes of a 200 text/event-stream answer as they come. Answers bigger than `max` throw.
/// With `a2a` false it is a plain HTTP request (no A2A-Version header; the OTLP exporter's).
/// @throws boost::system::system_error (timeout: beast::error::timeout), std::runtime_error.
net::awaitable<http_answer> http_exchange(const url_parts& url, std::string body,
                                          clock::time_point deadline, std::size_t max,
                                          const std::function<void(std::string_view)>* on_sse,
                                          bool a2a = true);

/// Splits an SSE byte stream into events; `on_data` gets each event's data (data: lines joined
/// with '\n') and its event: type. Lines starting with ':' are comments.
class sse_parser {
 public:
  explicit sse_parser(std::size_t max_event) : max_(max_event) {}
  /// @throws std::runtime_error when an event grows past max_event.
  void feed(std::string_view bytes,
            const std::function<void(const std::string& data, const std::string& type)>& on_data);

 private:
  std::size_t max_;
  std::string line_, data_, type_;
  bool has_data_ = false;
};

}  // namespace parley::platforms::detail::a2a
