// The "websocket" agent transport: one link per (session, URL), made on first use.
#include <parley/platforms/websocket_agents.hpp>

#include <map>
#include <mutex>
#include <unordered_map>

#include <parley/agent.hpp>
#include <parley/log.hpp>
#include <parley/session.hpp>

#include "ws_agent_link.hpp"

namespace parley::platforms {

websocket_agent_options websocket_agent_options::from_config(const config& cfg) {
  const std::string k = "platforms.websocket_agents.";
  websocket_agent_options o;
  auto seconds = [&](const std::string& key) {
    const double s = cfg.get_double(k + key);
    if (s <= 0)
      throw config_error(k + key + " must be a positive number of seconds, got " +
                         std::to_string(s));
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
  };
  const auto limit = cfg.get_int(k + "queue_limit");
  if (limit < 1) throw config_error(k + "queue_limit must be at least 1, got " + std::to_string(limit));
  o.queue_limit = static_cast<std::size_t>(limit);
  const auto attempts = cfg.get_int(k + "reconnect_attempts");
  if (attempts < 0 || attempts > 1000)
    throw config_error(k + "reconnect_attempts must be between 0 and 1000, got " +
                       std::to_string(attempts));
  o.reconnect_attempts = static_cast<int>(attempts);
  o.connect_timeout = seconds("connect_timeout");
  o.backoff = seconds("backoff");
  o.token = cfg.get_string(k + "token");
  o.tls_verify = cfg.get_bool(k + "tls_verify");
  return o;
}

namespace {

class ws_agent_transport final : public agent_transport {
 public:
  ws_agent_transport(agent& a, websocket_agent_options o)
      : agent_(a), options_(std::move(o)), ssl_(detail::ssl::context::tls_client) {
    ssl_.set_default_verify_paths();
    ssl_.set_verify_mode(options_.tls_verify ? detail::ssl::verify_peer : detail::ssl::verify_none);
  }
  ~ws_agent_transport() override {
    for (auto& [sid, links] : links_)
      for (auto& [url, l] : links) l->close();
  }

  void send(session& from, const std::string& url, const json& message,
            const lineage& l) override {
    std::string why;
    auto link = link_for(from.id(), url, why);
    if (!link) {
      (void)from.post(event::agent_error(url, why, l.id));
      return;
    }
    json f = l.to_json();
    f["action"] = "agent_reply_str";
    f["message"] = message;
    link->send(std::make_shared<const std::string>(
                   f.dump(-1, ' ', false, json::error_handler_t::replace)),
               l);
  }

  void open(session& from, const std::string& url) override {
    std::string why;
    if (auto link = link_for(from.id(), url, why))
      link->open();
    else
      (void)from.post(event::agent_error(url, why, ""));
  }

  void forget(const std::string& session_id) override {
    std::map<std::string, std::shared_ptr<detail::ws_agent_link>> gone;
    {
      std::lock_guard lock(mutex_);
      auto it = links_.find(session_id);
      if (it == links_.end()) return;
      gone = std::move(it->second);
      links_.erase(it);
    }
    for (auto& [url, l] : gone) l->close();
  }

 private:
  std::shared_ptr<detail::ws_agent_link> link_for(const std::string& session_id,
                                                  const std::string& url, std::string& why) {
    std::lock_guard lock(mutex_);
    auto& links = links_[session_id];
    if (auto it = links.find(url); it != links.end()) return it->second;
    auto parsed = detail::parse_agent_url(url);
    if (!parsed.error.empty()) {
      why = parsed.error;
      if (links.empty()) links_.erase(session_id);
      return nullptr;
    }
    auto l = detail::make_ws_agent_link(agent_, session_id, url, std::move(parsed), options_, ssl_);
    links.emplace(url, l);
    return l;
  }

  agent& agent_;
  const websocket_agent_options options_;
  detail::ssl::context ssl_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::map<std::string, std::shared_ptr<detail::ws_agent_link>>>
      links_;  // guarded by mutex_: session id -> URL -> link
};

}  // namespace

std::shared_ptr<agent_transport> use_websocket_agents(agent& a, websocket_agent_options o) {
  auto t = std::make_shared<ws_agent_transport>(a, std::move(o));
  a.set_agent_transport("websocket", t);
  return t;
}

}  // namespace parley::platforms
