// The A2A client (session::ask_agent): card, send or stream, and what comes back as events.
#include <parley/platforms/a2a_client.hpp>

#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/log.hpp>

#include "a2a_asks.hpp"
#include "a2a_http.hpp"
#include "a2a_model.hpp"
#include "a2a_pool.hpp"
#include "beast.hpp"

namespace parley::platforms {

namespace {

using namespace detail::a2a;
namespace beast = detail::beast;

// A peer's card, as much of it as the client needs.
struct card_info {
  url_parts rpc;
  bool streaming = false;
  std::string name;
  clock::time_point fetched{};
};

// One session's conversation with one peer: its context, and the task it left waiting.
struct conversation {
  std::string context_id, open_task;
  std::unordered_set<std::string> delivered;  // artifact ids of open_task already delivered
};

// Thrown for an answer that is not A2A, or an A2A error: the reason for the agent_error.
struct peer_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

card_info read_card(const json& card, const url_parts& base) {
  if (!card.is_object()) throw peer_error("its agent card is not a JSON object");
  auto ifs = card.find("supportedInterfaces");
  if (ifs == card.end() || !ifs->is_array()) {
    if (card.contains("url") || card.contains("preferredTransport"))
      throw peer_error("its agent card is A2A v0.3 (url/preferredTransport); this client speaks "
                       "A2A v1.0 (supportedInterfaces)");
    throw peer_error("its agent card is not an A2A card: no supportedInterfaces");
  }
  for (const auto& i : *ifs) {
    if (!i.is_object() || !i.value("url", json()).is_string()) continue;
    const auto binding = i.value("protocolBinding", std::string());
    if (!beast::iequals(binding, "JSONRPC")) continue;
    const auto version = i.value("protocolVersion", std::string("1.0"));
    if (!version.empty() && version != protocol_version) continue;
    std::string why;
    auto rpc = parse_url(i["url"].get<std::string>(), &why);
    if (!rpc) throw peer_error("its agent card's JSON-RPC url is unusable: " + why);
    rpc->token = base.token;
    card_info c;
    c.rpc = std::move(*rpc);
    const auto caps = card.value("capabilities", json::object());
    c.streaming = caps.is_object() && caps.value("streaming", false) == true;
    c.name = card.value("name", std::string());
    c.fetched = clock::now();
    return c;
  }
  throw peer_error("its agent card offers no JSON-RPC interface of A2A 1.0");
}

// The A2A answer inside a JSON-RPC response, or the error it carries.
json rpc_result(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw peer_error("it answered something that is not JSON-RPC");
  if (auto e = j.find("error"); e != j.end() && e->is_object())
    throw peer_error("it answered JSON-RPC error " + std::to_string(e->value("code", 0)) + ": " +
                     e->value("message", std::string()));
  auto r = j.find("result");
  if (r == j.end() || !r->is_object()) throw peer_error("its JSON-RPC answer has no result object");
  return *r;
}

class a2a_client final : public agent_transport,
                         public asks_in_flight,
                         public std::enable_shared_from_this<a2a_client> {
 public:
  a2a_client(agent& owner, a2a_options o)
      : agent_(owner), opts_(std::move(o)),
        pool_(std::make_shared<connection_pool>(agent_.io_context().get_executor(),
                                                opts_.max_idle_connections,
                                                opts_.idle_connection_timeout)) {}

  void send(session& from, const std::string& url, const json& message, const lineage& l) override {
    {
      std::lock_guard lock(mu_);
      ++in_flight_[from.id()];
    }
    net::co_spawn(net::make_strand(agent_.io_context()),
                  run(from.id(), url, message, l), net::detached);
  }

  bool when_answered(const std::string& session_id, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    if (!in_flight_.contains(session_id)) return true;
    answered_[session_id].push_back(std::move(fn));
    return false;
  }

  void forget(const std::string& session_id) override {
    std::lock_guard lock(mu_);
    convos_.erase(session_id);
  }

 private:
  // Everything an ask brought back is posted to the session: its turn may end.
  void ask_ended(const std::string& sid) noexcept {
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard lock(mu_);
      auto it = in_flight_.find(sid);
      if (it == in_flight_.end() || --it->second > 0) return;
      in_flight_.erase(it);
      if (auto w = answered_.find(sid); w != answered_.end()) {
        waiters = std::move(w->second);
        answered_.erase(w);
      }
    }
    for (auto& fn : waiters) {
      try {
        fn();
      } catch (const std::exception& e) {
        PARLEY_LOG(warn, "a2a: session " << session_tag(sid) << ": ending its turn failed: " << e.what());
      }
    }
  }

  // Never throws: every failure becomes an agent_error event of the session.
  net::awaitable<void> run(std::string sid, std::string url, json message, lineage l) {
    // At the end of the coroutine, whichever way it ends. Weak: a frame destroyed with the
    // io_context (after the agent dropped this client) must not reach it.
    struct ended {
      std::weak_ptr<a2a_client> c;
      const std::string& sid;
      ~ended() {
        if (auto client = c.lock()) client->ask_ended(sid);
      }
    } guard{weak_from_this(), sid};
    const auto deadline = clock::now() + opts_.client_timeout;
    std::string reason;
    try {
      std::string why;
      auto base = parse_url(url, &why);
      if (!base) throw peer_error(why);
      const card_info card = co_await card_of(*base, deadline);
      co_await ask(sid, url, card, std::move(message), l, deadline);
    } catch (const boost::system::system_error& e) {
      if (e.code() == beast::error::timeout) {
        std::ostringstream os;
        os << "no answer within " << std::chrono::duration<double>(opts_.client_timeout).count()
           << " s (platforms.a2a.client_timeout)";
        reason = os.str();
      } else {
        reason = "cannot reach it: " + e.code().message();
      }
    } catch (const std::exception& e) {
      reason = e.what();
    }
    if (reason.empty()) co_return;
    {
      // The peer may have dropped the task it left waiting: the next ask starts a new one.
      std::lock_guard lock(mu_);
      if (auto c = convos_.find(sid); c != convos_.end())
        if (auto it = c->second.find(url); it != c->second.end()) it->second.open_task.clear();
    }
    PARLEY_LOG(info, "a2a: session " << session_tag(sid) << ": asking " << redact_url(url)
                                     << " failed: " << reason);
    deliver(sid, event::agent_error(url, "A2A agent " + redact_url(url) + ": " + reason, l.id));
  }

  net::awaitable<card_info> card_of(const url_parts& base, clock::time_point deadline) {
    const url_parts where = card_location(base);
    const std::string key = where.origin() + where.target + "#" + where.token;
    {
      std::lock_guard lock(mu_);
      auto it = cards_.find(key);
      if (it != cards_.end() && clock::now() - it->second.fetched < opts_.card_ttl) co_return it->second;
    }
    const auto a = co_await pool_->exchange(where, {}, deadline, opts_.max_response, nullptr);
    if (a.status != 200)
      throw peer_error("its agent card (" + where.target + ") answered HTTP " + std::to_string(a.status));
    const json j = json::parse(a.body, nullptr, false);
    if (j.is_discarded()) throw peer_error("its agent card is not JSON");
    card_info c = read_card(j, base);
    std::lock_guard lock(mu_);
    if (cards_.size() > 1000) cards_.clear();  // a bound; cards are cheap to fetch again
    cards_[key] = c;
    co_return c;
  }

  net::awaitable<void> ask(const std::string& sid, const std::string& url, const card_info& card,
                           json message, const lineage& l, clock::time_point deadline) {
    json parts = message.is_string() ? json::array({{{"text", message}, {"mediaType", "text/plain"}}})
                                     : json::array({{{"data", message}, {"mediaType", "application/json"}}});
    json msg = {{"messageId", l.id}, {"role", "ROLE_USER"}, {"parts", std::move(parts)},
                {"metadata", {{std::string(lineage_key), l.to_json()}}}};
    {
      std::lock_guard lock(mu_);
      auto& c = convos_[sid][url];
      if (!c.context_id.empty()) msg["contextId"] = c.context_id;
      if (!c.open_task.empty()) msg["taskId"] = c.open_task;
    }
    const json req = {{"jsonrpc", "2.0"}, {"id", 1},
                      {"method", card.streaming ? "SendStreamingMessage" : "SendMessage"},
                      {"params", {{"message", std::move(msg)}}}};
    reply_state st{sid, url, card.name, l};
    sse_parser sse(opts_.max_response);
    bool ended = false;
    const std::function<void(std::string_view)> on_bytes = [&](std::string_view bytes) {
      sse.feed(bytes, [&](const std::string& data, const std::string&) {
        ended = on_stream(st, rpc_result(data)) || ended;
      });
    };
    const auto a = co_await pool_->exchange(card.rpc, req.dump(), deadline, opts_.max_response,
                                          card.streaming ? &on_bytes : nullptr);
    if (a.status != 200 && a.body.empty())
      throw peer_error("it answered HTTP " + std::to_string(a.status));
    if (!a.body.empty()) {  // a plain JSON answer (SendMessage, or an error before any event)
      if (a.status != 200 && a.content_type.find("json") == std::string::npos)
        throw peer_error("it answered HTTP " + std::to_string(a.status));
      const json r = rpc_result(a.body);
      if (auto t = r.find("task"); t != r.end() && t->is_object()) {
        on_task(st, *t, true);
      } else if (auto m = r.find("message"); m != r.end() && m->is_object()) {
        on_message(st, *m);
      } else {
        throw peer_error("its SendMessage result holds neither task nor message");
      }
    } else if (!ended) {
      throw peer_error("its stream ended before the task did");
    }
  }

  struct reply_state {
    std::string sid, url, peer_name;
    lineage sent;
  };

  // One StreamResponse; true when it ends the exchange (a message, or a final state).
  bool on_stream(reply_state& st, const json& r) {
    if (auto t = r.find("task"); t != r.end() && t->is_object()) {
      const auto s = task_state_from(t->value("status", json::object()).value("state", ""));
      remember(st, t->value("contextId", ""), t->value("id", ""), s);
      if (!s || !(terminal(*s) || interrupted(*s))) return false;
      on_task(st, *t, true);
      return true;
    }
    if (auto m = r.find("message"); m != r.end() && m->is_object()) {
      on_message(st, *m);
      return true;
    }
    if (auto a = r.find("artifactUpdate"); a != r.end() && a->is_object()) {
      deliver_artifact(st, a->value("artifact", json::object()));
      return false;
    }
    if (auto u = r.find("statusUpdate"); u != r.end() && u->is_object()) {
      const json status = u->value("status", json::object());
      const auto s = task_state_from(status.value("state", ""));
      if (!s) throw peer_error("it sent a status update without a known TASK_STATE");
      if (auto m = status.find("message"); m != status.end() && m->is_object())
        deliver_parts(st, m->value("parts", json::array()));
      remember(st, u->value("contextId", ""), u->value("taskId", ""), s);
      if (terminal(*s) || interrupted(*s)) {
        deliver_status(st, u->value("taskId", ""), u->value("contextId", ""), *s);
        return true;
      }
      return false;
    }
    throw peer_error("it streamed an event that is not an A2A StreamResponse");
  }

  void on_task(reply_state& st, const json& t, bool final) {
    const json status = t.value("status", json::object());
    const auto s = task_state_from(status.value("state", ""));
    if (!s || !t.value("id", json()).is_string())
      throw peer_error("its task has no id or no known TASK_STATE");
    for (const auto& a : t.value("artifacts", json::array())) deliver_artifact(st, a);
    if (auto m = status.find("message"); m != status.end() && m->is_object())
      deliver_parts(st, m->value("parts", json::array()));
    remember(st, t.value("contextId", ""), t.value("id", ""), s);
    if (final) deliver_status(st, t.value("id", ""), t.value("contextId", ""), *s);
  }

  void on_message(reply_state& st, const json& m) {
    remember(st, m.value("contextId", ""), "", task_state::completed);
    deliver_parts(st, m.value("parts", json::array()));
  }

  // Keeps the peer's context for the next ask, and the task it left waiting for input.
  void remember(reply_state& st, const std::string& context_id, const std::string& task_id,
                std::optional<task_state> s) {
    std::lock_guard lock(mu_);
    auto& c = convos_[st.sid][st.url];
    if (!context_id.empty()) c.context_id = context_id;
    if (!s) return;
    if (interrupted(*s)) {
      if (c.open_task != task_id) c.delivered.clear();
      c.open_task = task_id;
    } else if (terminal(*s)) {
      c.open_task.clear();
      c.delivered.clear();
    }
  }

  void deliver_artifact(reply_state& st, const json& a) {
    if (!a.is_object()) throw peer_error("it sent an artifact that is not an object");
    const std::string id = a.value("artifactId", "");
    {
      std::lock_guard lock(mu_);
      auto& c = convos_[st.sid][st.url];
      // A task continued after INPUT_REQUIRED comes back with the artifacts already delivered.
      if (!id.empty() && !c.delivered.insert(id).second) return;
    }
    deliver_parts(st, a.value("parts", json::array()));
  }

  void deliver_parts(reply_state& st, const json& parts) {
    if (!parts.is_array()) throw peer_error("it sent parts that are not an array");
    for (const auto& p : parts) {
      if (!p.is_object()) throw peer_error("it sent a part that is not an object");
      event e;
      if (auto t = p.find("text"); t != p.end() && t->is_string()) {
        e = event::text(t->get<std::string>(), false);
      } else if (auto d = p.find("data"); d != p.end()) {
        e = event::json_payload(*d, false);
      } else if (auto r = p.find("raw"); r != p.end() && r->is_string()) {
        e = event::file({p.value("filename", ""), p.value("mediaType", "application/octet-stream"),
                         r->get<std::string>()},
                        false);
      } else if (auto u = p.find("url"); u != p.end() && u->is_string()) {
        e = event::json_payload({{"url", *u}, {"mediaType", p.value("mediaType", "")},
                                 {"filename", p.value("filename", "")}},
                                false);
      } else {
        throw peer_error("it sent a part with none of text, data, raw, url");
      }
      e.from_agent(st.url, lineage_of(st, p), "a2a");
      deliver(st.sid, std::move(e));
    }
  }

  // The peer's own lineage when it sent one (a Parley agent does), else one caused by ours.
  lineage lineage_of(const reply_state& st, const json& part) {
    if (auto md = part.find("metadata"); md != part.end() && md->is_object())
      if (auto it = md->find(lineage_key); it != md->end())
        if (auto l = lineage::from_json(*it)) return *l;
    lineage l;
    l.id = random_id();
    l.causation_id = st.sent.id;
    l.correlation_id = st.sent.correlation_id;
    l.sender_agent = st.peer_name;
    l.depth = st.sent.depth + 1;
    return l;
  }

  void deliver_status(reply_state& st, const std::string& task_id, const std::string& context_id,
                      task_state s) {
    auto e = event::custom("a2a_status", {{"url", redact_url(st.url)}, {"task_id", task_id},
                                          {"context_id", context_id}, {"state", to_string(s)}});
    e.from_agent(st.url, lineage{}, "a2a");
    deliver(st.sid, std::move(e));
  }

  void deliver(const std::string& sid, event e) {
    if (auto r = agent_.receive_event(sid, std::move(e)); !r)
      PARLEY_LOG(debug, "a2a: session " << session_tag(sid) << " did not take an answer: " << r.error);
  }

  agent& agent_;
  a2a_options opts_;
  std::shared_ptr<connection_pool> pool_;  // this client's connections to its peers
  std::mutex mu_;
  std::map<std::string, card_info> cards_;
  std::map<std::string, std::map<std::string, conversation>> convos_;  // session -> url -> ...
  std::unordered_map<std::string, std::size_t> in_flight_;  // session -> asks running
  std::unordered_map<std::string, std::vector<std::function<void()>>> answered_;  // when_answered
};

}  // namespace

std::shared_ptr<agent_transport> make_a2a_transport(agent& owner, a2a_options options) {
  return std::make_shared<a2a_client>(owner, std::move(options));
}

void use_a2a_agents(agent& owner, a2a_options options) {
  owner.set_agent_transport("a2a", make_a2a_transport(owner, std::move(options)));
}

}  // namespace parley::platforms
