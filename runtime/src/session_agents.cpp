// Messages to and from other agents: lineage, the loop guard, duplicates, recording.
#include <parley/session.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley {

namespace {
std::string content_of(const json& message) {
  return message.is_string() ? message.get<std::string>()
                             : message.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string enable_hint(std::string_view protocol) {
  if (protocol == "websocket")
    return "no 'websocket' agent transport is registered: serve the WebSocket platform (it "
           "registers one when it starts) or call parley::platforms::use_websocket_agents(agent)";
  if (protocol == "a2a")
    return "no 'a2a' agent transport is registered: enable the A2A client of "
           "parley::platforms, or call agent.set_agent_transport(\"a2a\", ...)";
  return "no '" + std::string(protocol) +
         "' agent transport is registered: call agent.set_agent_transport(\"" +
         std::string(protocol) + "\", ...)";
}
}  // namespace

parley::lineage session::next_lineage() const {
  parley::lineage l;
  l.id = random_id();
  if (const auto* cause = event_.lineage()) {
    l.causation_id = cause->id;
    l.correlation_id = cause->correlation_id.empty() ? cause->id : cause->correlation_id;
    l.depth = cause->depth + 1;
  } else {
    // A human's message (or a timer, a custom event): a new conversation between agents.
    l.correlation_id = l.id;
    l.depth = 1;
  }
  l.sender_agent = agent_->name();
  // The session's tag, never its id: an id is a bearer secret, and this goes to another agent
  // and into its database. The tag (a hash) still tells the sender's sessions apart.
  l.sender_session = session_tag(id_);
  return l;
}

std::string session::send_to_agent(const std::string& url, json message) {
  return message_agent("websocket", url, std::move(message));
}

std::string session::ask_agent(const std::string& url, json message) {
  return message_agent("a2a", url, std::move(message));
}

void session::create_agent_connection(const std::string& url) {
  if (auto t = agent_->find_agent_transport("websocket")) {
    t->open(*this, url);
    return;
  }
  post(event::agent_error(url, enable_hint("websocket"), ""));
}

std::string session::message_agent(std::string_view protocol, const std::string& url,
                                   json message) {
  touch();
  parley::lineage l = next_lineage();
  std::string content = content_of(message);
  if (refuse_deep(protocol, url, l, content)) return {};
  auto t = agent_->find_agent_transport(protocol);
  if (!t) {
    const std::string why = enable_hint(protocol);
    PARLEY_LOG(warn, "session " << session_tag(id_) << ": " << why);
    record_agent_message("out", protocol, url, l, std::move(content), "refused");
    post(event::agent_error(url, why, l.id));
    return {};
  }
  if (!message.is_string() && !message.is_object())
    message = content;  // what BAF accepts: a string, or a dictionary
  record_agent_message("out", protocol, url, l, std::move(content), "sent");
  t->send(*this, url, message, l);
  return l.id;
}

bool session::refuse_deep(std::string_view protocol, const std::string& peer,
                          const parley::lineage& l, const std::string& content) {
  const int max = agent_->max_agent_depth();
  if (l.depth <= max) return false;
  const std::string why =
      "loop guard: this message would be hop " + std::to_string(l.depth) +
      " between agents since a human spoke, over agent.max_agent_depth (" + std::to_string(max) +
      "); it was not sent. Agents that keep answering each other stop here; raise "
      "agent.max_agent_depth if the chain is meant to be this long";
  PARLEY_LOG(info, "session " << session_tag(id_) << ": message to " << redact_url(peer)
                              << " refused (depth " << l.depth << " > " << max << ")");
  record_agent_message("out", protocol, peer, l, content, "refused");
  post(event::agent_error(peer, why, l.id));
  return true;
}

// Strand, for every event handled: records agent messages and drops those already handled.
bool session::take_agent_message(const parley::event& e) {
  const auto* l = e.lineage();
  if (!l) return true;
  const std::string& peer = e.sender();
  std::string content;
  if (e.kind() == event_kind::text) content = e.text();
  else if (e.kind() == event_kind::json) content = content_of(e.payload());
  else if (const auto* f = e.file()) content = f->name;
  if (handled_ids_.contains(l->id)) {
    PARLEY_LOG(info, "session " << session_tag(id_) << ": agent message already handled; "
                                << "dropped as a duplicate");
    record_agent_message("in", e.agent_protocol(), peer, *l, std::move(content), "duplicate");
    return false;
  }
  remember_agent_id(l->id);
  record_agent_message("in", e.agent_protocol(), peer, *l, std::move(content), "handled");
  return true;
}

void session::remember_agent_id(const std::string& id) {
  if (!handled_ids_.insert(id).second) return;
  handled_order_.push_back(id);
  while (handled_order_.size() > agent_->agent_message_ids()) {
    handled_ids_.erase(handled_order_.front());
    handled_order_.pop_front();
  }
}

void session::record_agent_message(std::string direction, std::string_view protocol,
                                   std::string peer, const parley::lineage& l,
                                   std::string content, std::string status) {
  auto* db = agent_->db();
  if (!db) return;
  agent_message_record m;
  m.direction = std::move(direction);
  m.protocol = std::string(protocol);
  m.peer = redact_url(peer);
  m.lineage = l;
  m.content = std::move(content);
  m.status = std::move(status);
  db->save_agent_message(*this, m);
}

void session::forget_agent_links() {
  for (const auto& t : agent_->agent_transports()) {
    try {
      t->forget(id_);
    } catch (const std::exception& ex) {
      PARLEY_LOG(error, "session " << session_tag(id_) << ": an agent transport's forget threw: "
                                   << ex.what());
    }
  }
}

}  // namespace parley
