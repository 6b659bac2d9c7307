#include "a2a_http.hpp"

#include "a2a_model.hpp"
#include "beast.hpp"
#include "ws_http.hpp"

namespace parley::platforms::detail::a2a {

std::string url_parts::origin() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port;
}

std::optional<url_parts> parse_url(std::string_view url, std::string* why) {
  url_parts u;
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    if (why) *why = "'" + std::string(url.substr(0, 64)) + "' is not an http:// or https:// URL";
    return std::nullopt;
  }
  rest = rest.substr(0, rest.find('#'));
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (target.front() == '?') target.insert(0, "/");
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string_view port = u.tls ? "443" : "80";
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      if (why) *why = "the URL's host is not closed with ']'";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) {
    if (why) *why = "the URL has no host, or a port that is not a number";
    return std::nullopt;
  }
  u.port = std::string(port);
  u.target = std::move(target);
  u.token = query_param(u.target, "token");
  return u;
}

url_parts card_location(const url_parts& base) {
  url_parts c = base;
  std::string path = base.target.substr(0, base.target.find('?'));
  c.target = path.substr(0, path.rfind('/') + 1) + std::string(card_path.substr(1));
  return c;
}

void sse_parser::feed(std::string_view bytes,
                      const std::function<void(const std::string&, const std::string&)>& on_data) {
  for (const char c : bytes) {
    if (c != '\n') {
      line_ += c;
      if (line_.size() + data_.size() > max_)
        throw std::runtime_error("an SSE event is over " + std::to_string(max_) +
                                 " bytes (platforms.a2a.max_response)");
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {  // a blank line ends the event
      if (has_data_) on_data(data_, type_);
      data_.clear();
      type_.clear();
      has_data_ = false;
    } else if (line_.front() != ':') {
      const auto colon = line_.find(':');
      const std::string field = line_.substr(0, colon);
      std::string value = colon == std::string::npos ? std::string() : line_.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (field == "data") {
        if (has_data_) data_ += '\n';
        data_ += value;
        has_data_ = true;
      } else if (field == "event") {
        type_ = std::move(value);
      }
    }
    line_.clear();
  }
}

}  // namespace parley::platforms::detail::a2a
