#include <parley/platforms/websocket_platform.hpp>

#include <parley/platforms/a2a_client.hpp>
#include <parley/platforms/websocket_agents.hpp>

#include <algorithm>

#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>
#include <parley/session.hpp>

#include "a2a_server.hpp"
#include "ws_hub.hpp"
#include "ws_protocol.hpp"

namespace parley::platforms {

namespace {
std::chrono::milliseconds seconds_key(const config& cfg, const std::string& key) {
  const double s = cfg.get_double(key);
  if (s <= 0) throw config_error(key + " must be a positive number of seconds, got " + std::to_string(s));
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

std::size_t positive(const config& cfg, const std::string& key) {
  const auto v = cfg.get_int(key);
  if (v < 1) throw config_error(key + " must be at least 1, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}
}  // namespace

a2a_options a2a_options::from_config(const config& cfg) {
  const std::string k = "platforms.a2a.";
  a2a_options o;
  o.enabled = cfg.get_bool(k + "enabled");
  o.path = cfg.get_string(k + "path");
  if (o.path.empty() || o.path.front() != '/' || o.path.find('?') != std::string::npos ||
      o.path == "/" || o.path == "/health")
    throw config_error(k + "path must be a path of its own starting with '/', e.g. /a2a; got '" +
                       o.path + "'");
  o.url = cfg.get_string(k + "url");
  if (!o.url.empty() && o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0)
    throw config_error(k + "url must be an http:// or https:// URL, got '" + o.url + "'");
  o.name = cfg.get_string(k + "name");
  o.description = cfg.get_string(k + "description");
  o.version = cfg.get_string(k + "version");
  o.skills = cfg.get_strings(k + "skills");
  o.input_required_states = cfg.get_strings(k + "input_required_states");
  o.max_body = positive(cfg, k + "max_body");
  o.max_tasks = positive(cfg, k + "max_tasks");
  o.wait_timeout = seconds_key(cfg, k + "wait_timeout");
  o.client_timeout = seconds_key(cfg, k + "client_timeout");
  o.card_ttl = seconds_key(cfg, k + "card_ttl");
  o.max_response = positive(cfg, k + "max_response");
  const auto idle = cfg.get_int(k + "max_idle_connections");
  if (idle < 0)
    throw config_error(k + "max_idle_connections must be 0 (no reuse) or more, got " +
                       std::to_string(idle));
  o.max_idle_connections = static_cast<std::size_t>(idle);
  o.idle_connection_timeout = seconds_key(cfg, k + "idle_connection_timeout");
  return o;
}

websocket_options websocket_options::from_config(const config& cfg) {
  const std::string k = "platforms.websocket.";
  websocket_options o;
  o.host = cfg.get_string(k + "host");
  const auto port = cfg.get_int(k + "port");
  if (port < 0 || port > 65535)
    throw config_error(k + "port must be between 0 and 65535, got " + std::to_string(port));
  o.port = static_cast<std::uint16_t>(port);
  o.max_size = positive(cfg, k + "max_size");
  o.max_file_size = positive(cfg, k + "max_file_size");
  o.origins = cfg.get_strings(k + "origins");
  o.token = cfg.get_string(k + "token");
  o.tls_cert = cfg.get_string(k + "tls_cert");
  o.tls_key = cfg.get_string(k + "tls_key");
  o.max_connections = positive(cfg, k + "max_connections");
  o.rate_limit = cfg.get_double(k + "rate_limit");
  if (o.rate_limit < 0) throw config_error(k + "rate_limit must be 0 (off) or positive");
  o.rate_burst = positive(cfg, k + "rate_burst");
  o.send_buffer = positive(cfg, k + "send_buffer");
  o.send_timeout = seconds_key(cfg, k + "send_timeout");
  o.handshake_timeout = seconds_key(cfg, k + "handshake_timeout");
  o.idle_timeout = seconds_key(cfg, k + "idle_timeout");
  o.forward = cfg.get_bool(k + "forward");
  o.advertise = cfg.get_string(k + "advertise");
  o.a2a = a2a_options::from_config(cfg);
  // Not set = decided by the host when the platform starts (the declared default is only
  // what a loopback host gets).
  if (cfg.find_set_value(k + "inspector")) o.inspector = cfg.get_bool(k + "inspector");
  return o;
}

struct websocket_platform::impl {
  std::shared_ptr<detail::ws_hub> hub = std::make_shared<detail::ws_hub>();
  std::shared_ptr<detail::ws_server> server;
  std::atomic<std::uint16_t> port{0};
  std::mutex stop_mutex;
  bool stopped = false;
};

websocket_platform::websocket_platform(websocket_options options)
    : options_(std::move(options)), impl_(std::make_shared<impl>()) {}

websocket_platform::~websocket_platform() { stop(); }

void websocket_platform::start(agent& owner) {
  std::lock_guard lock(impl_->stop_mutex);
  auto& hub = *impl_->hub;
  hub.stopping = false;
  impl_->stopped = false;
  hub.opts = options_;
  if (hub.opts.forward && !options_.tls_cert.empty()) {
    // Nodes relay to each other over plain ws: with TLS, a client reaches its owner itself.
    hub.opts.forward = false;
    PARLEY_LOG(info, "websocket: platforms.websocket.forward is off with TLS; a client whose "
                     "session another node owns gets 503 naming it");
  }
  hub.owner = &owner;
  hub.plat = this;
  hub.started = wall_clock::now();
  for (const auto& st : options_.a2a.input_required_states)
    if (!owner.find_state(st))
      throw config_error("platforms.a2a.input_required_states names '" + st +
                         "', which is not a state of agent " + owner.name());
  hub.a2a = options_.a2a.enabled
                ? std::make_shared<detail::a2a::server>(owner, this, options_.a2a,
                                                        !options_.token.empty(),
                                                        options_.max_file_size)
                : nullptr;
  // BAF's way to message other agents comes with the platform, unless the bot set its own.
  if (!owner.find_agent_transport("websocket")) {
    const bool configured =
        owner.config().declared().contains("platforms.websocket_agents.queue_limit");
    use_websocket_agents(owner, configured ? websocket_agent_options::from_config(owner.config())
                                           : websocket_agent_options{});
  }
  // Sessions reach other A2A agents through the same settings (session::ask_agent).
  if (options_.a2a.enabled) use_a2a_agents(owner, options_.a2a);
  hub.inspector = detail::inspector_enabled(options_.inspector, options_.host)
                      ? detail::start_inspector(options_.inspector_db, options_.token)
                      : nullptr;
  impl_->server = detail::start_ws_server(owner.io_context(), impl_->hub);
  impl_->port = impl_->server->port();
  // Published for the other nodes of a shared database, so they relay this node's clients.
  if (auto* db = owner.db()) db->set_node_address(hub.advertised);
  PARLEY_LOG(info, "websocket: agent " << owner.name() << " listening; open " << url());
}

std::uint16_t websocket_platform::port() const { return impl_->port.load(); }

std::string websocket_platform::url() const {
  std::string host = options_.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "localhost";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return impl_->hub->scheme + "://" + host + ":" + std::to_string(port()) + "/";
}

websocket_stats websocket_platform::stats() const {
  const auto& h = *impl_->hub;
  return {h.open.load(),        h.accepted.load(),     h.rejected.load(), h.slow_closed.load(),
          h.rate_limited.load(), h.frames_in.load(), h.frames_out.load(), h.forwarded.load()};
}

void websocket_platform::deliver(session& s, const reply& r) {
  if (auto& a2a = impl_->hub->a2a) a2a->tasks().on_reply(s, r);
  auto conns = impl_->hub->connections_of(s.id());
  if (conns.empty()) return;  // nobody connected now: the reply is in the chat log (with a DB)
  // Encoded once, shared by every connection of the session.
  auto frame = std::make_shared<const std::string>(detail::encode_reply(r));
  for (auto& c : conns) c->send(frame, r.seq);
}

void websocket_platform::session_ended(session& s, std::string_view reason) {
  if (!reason.starts_with("moved")) return;  // a closed session's connections stay (a new one starts)
  for (auto& c : impl_->hub->connections_of(s.id())) c->moved();
}

void websocket_platform::stop() {
  std::lock_guard lock(impl_->stop_mutex);
  if (impl_->stopped || !impl_->server) return;
  impl_->stopped = true;
  auto& hub = *impl_->hub;
  hub.stopping = true;  // no new connections; frames that arrive from now on are dropped
  impl_->server->stop();
  // The acceptor must not outlive the agent's io_context: from here on only its pending
  // handlers (run or destroyed with the io_context) hold the listener.
  impl_->server.reset();
  const auto deadline = clock::now() + std::chrono::milliseconds(2000);

  // Let the sessions of open connections answer what they have queued, so those replies
  // are sent before the close (bounded: a stuck body cannot hold the shutdown).
  // (Only ids are kept here: holding the connections would keep them alive past their close.)
  std::vector<std::string> ids;
  for (const auto& c : hub.all_connections())
    if (std::find(ids.begin(), ids.end(), c->session_id()) == ids.end())
      ids.push_back(c->session_id());
  if (hub.owner) {
    auto pending = std::make_shared<std::atomic<std::size_t>>(0);
    auto m = std::make_shared<std::mutex>();
    auto cv = std::make_shared<std::condition_variable>();
    for (const auto& id : ids) {
      auto s = hub.owner->find_session(id);
      if (!s) continue;
      ++*pending;
      s->when_idle([pending, m, cv] {
        if (pending->fetch_sub(1) == 1) {
          std::lock_guard l(*m);
          cv->notify_all();
        }
      });
    }
    std::unique_lock l(*m);
    cv->wait_until(l, clock::now() + std::chrono::milliseconds(1000),
                   [&] { return pending->load() == 0; });
  }
  // Each connection sends what it has queued, then closes with 1001.
  for (auto& c : hub.all_connections()) c->shutdown();
  if (!hub.wait_all_closed(deadline))
    PARLEY_LOG(info, "websocket: " << hub.open.load()
                                   << " connection(s) did not finish closing in time");
  // Its queries answer what is queued (503), its watcher stops.
  if (hub.inspector) detail::stop_inspector(*hub.inspector);
  PARLEY_LOG(info, "websocket: stopped");
}

}  // namespace parley::platforms
