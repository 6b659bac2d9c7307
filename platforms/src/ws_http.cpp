#include "ws_http.hpp"

#include <algorithm>

#include <parley/agent.hpp>

#include "a2a_server.hpp"

namespace parley::platforms::detail {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Constant-time comparison for the token.
bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

// A Host header fit to go into the card's URL (else the listening address is used).
bool plausible_host(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' &&
        c != '[' && c != ']')
      return false;
  return true;
}

}  // namespace

bool inspector_enabled(const std::optional<bool>& setting, const std::string& host) {
  if (setting) return *setting;
  if (host == "localhost") return true;
  beast::error_code ec;
  const auto a = net::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

bool token_ok(const request& req, const std::string& token, std::string& why) {
  if (token.empty()) return true;
  std::string sent;
  if (auto h = req.find(http::field::authorization); h != req.end()) {
    const std::string_view v = h->value();
    if (v.size() > 7 && beast::iequals(v.substr(0, 7), "Bearer ")) sent = std::string(v.substr(7));
  }
  if (sent.empty()) sent = query_param(req.target(), "token");
  if (same(sent, token)) return true;
  why = sent.empty() ? "a token is required: send 'Authorization: Bearer TOKEN' or ?token=TOKEN"
                     : "the token is wrong";
  return false;
}

// A session id is a bearer secret: parley::random_id() gives 128 bits from the kernel's CSPRNG,
// written as a UUID is (BAF uses the connection's UUID).
std::string fresh_session_id() { return random_id(); }

std::optional<std::string> find_query_param(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    const auto eq = kv.find('=');
    if (percent_decode(kv.substr(0, eq)) == key)
      return eq == std::string_view::npos ? std::string() : percent_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return std::nullopt;
}

std::string query_param(std::string_view target, std::string_view key) {
  return find_query_param(target, key).value_or(std::string());
}

std::optional<std::int64_t> parse_since(std::string_view target, std::string& why) {
  const auto v = find_query_param(target, "since");
  if (!v) return std::nullopt;
  // Digits only (no sign, no spaces), at most 18 of them: every such number fits an int64.
  const bool digits = !v->empty() && v->size() <= 18 &&
                      std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    const std::string shown = v->size() > 40 ? v->substr(0, 40) + "..." : *v;
    why = "query parameter 'since' must be a whole number >= 0 (the \"seq\" of the last reply "
          "the client has; 0 for all stored replies), not '" + shown + "'";
    return -1;
  }
  return std::stoll(*v);
}

client_identity identify(const request& req) {
  client_identity who;
  const std::string_view target = req.target();
  if (auto h = req.find("X-Session-ID"); h != req.end() && !h->value().empty())
    who.session_id = std::string(h->value());
  else
    who.session_id = query_param(target, "session_id");
  if (who.session_id.empty()) who.session_id = fresh_session_id();
  if (auto h = req.find("X-User-ID"); h != req.end() && !h->value().empty())
    who.user = std::string(h->value());
  else
    who.user = query_param(target, "user_id");
  who.session_name = query_param(target, "session_name");
  std::string ignored;  // admit() has refused a bad one
  if (auto since = parse_since(target, ignored); since && *since >= 0) who.since = since;
  who.double_texting = parse_double_texting(query_param(target, "double_texting"));
  return who;
}

http::status admit(const request& req, ws_hub& hub, std::string& why) {
  const auto& o = hub.opts;
  if (hub.stopping.load()) {
    why = "the server is shutting down; try again later";
    return http::status::service_unavailable;
  }
  if (!o.origins.empty()) {
    const auto h = req.find(http::field::origin);
    const std::string origin = h == req.end() ? std::string() : std::string(h->value());
    bool ok = false;
    for (const auto& allowed : o.origins) ok = ok || beast::iequals(allowed, origin);
    if (!ok) {
      why = "origin '" + origin + "' is not allowed; add it to platforms.websocket.origins";
      return http::status::forbidden;
    }
  }
  if (!token_ok(req, o.token, why)) return http::status::unauthorized;
  for (const char* h : {"X-Session-ID", "X-User-ID"})
    if (auto it = req.find(h); it != req.end() && it->value().size() > 256) {
      why = std::string(h) + " is longer than 256 characters";
      return http::status::bad_request;
    }
  if (query_param(req.target(), "session_id").size() > 256) {
    why = "session_id is longer than 256 characters";
    return http::status::bad_request;
  }
  if (auto since = parse_since(req.target(), why); since && *since < 0)
    return http::status::bad_request;
  if (const auto dt = query_param(req.target(), "double_texting");
      !dt.empty() && !parse_double_texting(dt)) {
    why = "double_texting must be enqueue, reject or interrupt, got '" + dt.substr(0, 64) +
          "'; leave it out for the agent's default (agent.double_texting)";
    return http::status::bad_request;
  }
  if (!hub.try_reserve()) {
    why = "too many connections (platforms.websocket.max_connections = " +
          std::to_string(o.max_connections) + "); try again later";
    return http::status::service_unavailable;
  }
  return http::status::switching_protocols;
}

response text_response(http::status status, unsigned version, std::string body, bool keep_alive) {
  response res{status, version};
  res.set(http::field::server, "parley");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(keep_alive);
  res.body() = std::move(body) + "\n";
  res.prepare_payload();
  return res;
}

response handle_http(const request& req, ws_hub& hub) {
  const std::string_view path = path_of(req.target());
  if (req.method() != http::verb::get) {
    auto res = text_response(http::status::method_not_allowed, req.version(),
                             "only GET is served here", req.keep_alive());
    res.set(http::field::allow, "GET");
    return res;
  }
  response res{http::status::ok, req.version()};
  res.set(http::field::server, "parley");
  res.keep_alive(req.keep_alive());
  res.set(http::field::cache_control, "no-store");
  if (!hub.owner && (path == "/" || path == "/index.html")) {
    // parley-inspect serve: no agent, no chat; the inspector is the page (the query, e.g. a
    // token, goes along).
    const std::string_view target = req.target();
    const auto q = target.find('?');
    res.result(http::status::found);
    res.set(http::field::location,
            "/inspect" + std::string(q == std::string_view::npos ? "" : target.substr(q)));
  } else if (path == "/" || path == "/index.html") {
    res.set(http::field::content_type, "text/html; charset=utf-8");
    // The page loads nothing from elsewhere; this policy makes sure it cannot.
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data: blob:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = std::string(chat_page());
  } else if (path == "/health") {
    res.set(http::field::content_type, "application/json");
    const auto up = std::chrono::duration_cast<std::chrono::seconds>(wall_clock::now() - hub.started);
    json j = {{"status", hub.stopping.load() ? "stopping" : "ok"},
              {"agent", hub.owner ? hub.owner->name() : std::string()},
              {"connections", hub.open.load()},
              {"sessions", hub.owner ? hub.owner->session_count() : 0},
              {"db", hub.owner && hub.owner->db() ? json(std::string(hub.owner->db()->name())) : json(nullptr)},
              {"uptime_seconds", up.count()}};
    if (const auto* traces = hub.owner ? hub.owner->traces() : nullptr)
      j["telemetry"] = traces->stats();  // exported and dropped spans
    res.body() = j.dump();
  } else if (hub.a2a && path == a2a::card_path) {
    // The card is public (it holds no secret; the JSON-RPC endpoint checks the token).
    const auto h = req.find(http::field::host);
    std::string host = h == req.end() ? std::string() : std::string(h->value());
    if (!plausible_host(host)) host = hub.opts.host + ":" + std::to_string(hub.port);
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "public, max-age=300");
    res.body() = hub.a2a->card(hub.scheme, host);
  } else if (path == "/inspect" || path.starts_with("/inspect/")) {
    return text_response(http::status::not_found, req.version(),
                         "the inspector is off on this server: set platforms.websocket.inspector: "
                         "true (it is on by default only for a loopback host), and give the "
                         "agent a database (--db FILE)",
                         req.keep_alive());
  } else {
    return text_response(http::status::not_found, req.version(),
                         std::string("not found: this server has / (the chat page), /health") +
                             (hub.a2a ? ", the A2A agent card at " + std::string(a2a::card_path) +
                                            " with JSON-RPC at " + hub.opts.a2a.path
                                      : std::string()) +
                             " and WebSocket",
                         req.keep_alive());
  }
  res.prepare_payload();
  return res;
}

}  // namespace parley::platforms::detail
