#include "a2a_tasks.hpp"

#include <algorithm>

#include <parley/agent.hpp>
#include <parley/errors.hpp>
#include <parley/log.hpp>

#include "a2a_asks.hpp"
#include "ws_http.hpp"

namespace parley::platforms::detail::a2a {

struct task_store::task {
  std::string id, context_id;
  std::uint64_t seq = 0;
  task_state state = task_state::submitted;
  wall_clock::time_point updated = wall_clock::now();
  json status_message;                   // a Message, or null
  json history = json::array();          // Messages: the user's, and one per turn of replies
  json artifacts = json::array();        // one per reply
  json turn_parts = json::array();       // the running turn's replies, for its history entry
  std::vector<std::pair<std::uint64_t, task_listener>> listeners;
};

struct task_store::job {
  std::string task_id;
  std::vector<parley::event> events;  // marked from_agent when the message carried lineage
};

struct task_store::context {
  std::deque<job> waiting;
  std::string active;     // the task whose turn runs ("" = none)
  std::string open_task;  // the interrupted task the conversation waits on, if any
  session_attachment hold;  // the session is not evicted during a turn
};

namespace {
rpc_error not_found(const std::string& id) {
  return {error_code::task_not_found, "Task not found: " + id};
}
json agent_message(const std::string& task_id, const std::string& context_id, json parts) {
  return {{"messageId", fresh_session_id()}, {"contextId", context_id}, {"taskId", task_id},
          {"role", "ROLE_AGENT"}, {"parts", std::move(parts)}};
}
}  // namespace

task_store::task_store(parley::agent& owner, parley::platform* plat, a2a_options opts)
    : agent_(owner), plat_(plat), opts_(std::move(opts)) {
  for (const auto& s : opts_.input_required_states) input_states_.insert(s);
}

task_store::~task_store() = default;

std::size_t task_store::size() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

json task_store::snapshot(const task& t, std::optional<std::size_t> history_length,
                          bool artifacts) const {
  json status = {{"state", to_string(t.state)}, {"timestamp", timestamp(t.updated)}};
  if (!t.status_message.is_null()) status["message"] = t.status_message;
  json j = {{"id", t.id}, {"contextId", t.context_id}, {"status", std::move(status)}};
  if (artifacts && !t.artifacts.empty()) j["artifacts"] = t.artifacts;
  const std::size_t n = std::min(t.history.size(), history_length.value_or(t.history.size()));
  if (n > 0) {
    json h = json::array();
    for (std::size_t i = t.history.size() - n; i < t.history.size(); ++i) h.push_back(t.history[i]);
    j["history"] = std::move(h);
  }
  return j;
}

void task_store::emit(task& t, const json& event, bool last) {
  if (t.listeners.empty()) return;
  const json final_task = last ? snapshot(t, std::nullopt, true) : json();
  for (auto& [id, l] : t.listeners) l(event, last ? &final_task : nullptr);
  if (last) t.listeners.clear();
}

// Moves `t` to `s` and tells its listeners; a terminal or interrupted state is their last event.
void task_store::finish(task& t, task_state s, std::string message) {
  t.state = s;
  t.updated = wall_clock::now();
  if (!message.empty())
    t.status_message = agent_message(t.id, t.context_id, json::array({{{"text", message}}}));
  json status = {{"state", to_string(s)}, {"timestamp", timestamp(t.updated)}};
  if (!t.status_message.is_null()) status["message"] = t.status_message;
  emit(t, {{"statusUpdate", {{"taskId", t.id}, {"contextId", t.context_id}, {"status", status}}}},
       terminal(s) || interrupted(s));
  if (terminal(s)) ended_.push_back(t.id);
}

task_store::task& task_store::make_task(const std::string& context_id) {
  // Over the bound, tasks that ended go first, oldest first; running and interrupted ones stay.
  while (tasks_.size() >= opts_.max_tasks && !ended_.empty()) {
    tasks_.erase(ended_.front());
    ended_.pop_front();
  }
  if (tasks_.size() >= opts_.max_tasks)
    throw rpc_error{error_code::internal_error,
                    "this agent already holds " + std::to_string(tasks_.size()) +
                        " tasks that have not ended (platforms.a2a.max_tasks); retry later"};
  auto t = std::make_unique<task>();
  t->id = make_task_id(context_id);
  t->context_id = context_id;
  t->seq = ++seq_;
  auto& ref = *t;
  tasks_.emplace(ref.id, std::move(t));
  return ref;
}

json task_store::send(incoming_message in, json message, task_listener listener,
                      std::uint64_t* listener_id) {
  if (in.context_id.size() > 256)
    throw rpc_error{error_code::invalid_params, "message.contextId is longer than 256 characters"};
  std::string context_id;
  json result;
  {
    std::lock_guard lock(mu_);
    task* t = nullptr;
    if (!in.task_id.empty()) {
      auto it = tasks_.find(in.task_id);
      if (it == tasks_.end()) throw not_found(in.task_id);
      t = it->second.get();
      if (!in.context_id.empty() && in.context_id != t->context_id)
        throw rpc_error{error_code::invalid_params,
                        "message.contextId does not match the context of task " + t->id};
      if (terminal(t->state))
        throw rpc_error{error_code::unsupported_operation,
                        "Task " + t->id + " is in a terminal state (" +
                            std::string(to_string(t->state)) +
                            ") and cannot be modified; send without taskId to start a new task "
                            "in the same contextId"};
      if (!interrupted(t->state))
        throw rpc_error{error_code::unsupported_operation,
                        "Task " + t->id + " is still " + std::string(to_string(t->state)) +
                            "; wait for it (GetTask, SubscribeToTask) or cancel it"};
      t->state = task_state::submitted;
      t->status_message = nullptr;
      t->updated = wall_clock::now();
    } else {
      context_id = in.context_id.empty() ? fresh_session_id() : in.context_id;
      t = &make_task(context_id);
    }
    context_id = t->context_id;
    auto& ctx = contexts_[context_id];
    if (!ctx) ctx = std::make_unique<context>();
    // A new task while another waits for input: the conversation moved on, that one is done.
    if (!ctx->open_task.empty() && ctx->open_task != t->id) {
      if (auto it = tasks_.find(ctx->open_task); it != tasks_.end() && interrupted(it->second->state))
        finish(*it->second, task_state::completed);
    }
    ctx->open_task.clear();
    message["taskId"] = t->id;
    message["contextId"] = context_id;
    t->history.push_back(std::move(message));
    result = snapshot(*t, std::nullopt, true);
    if (listener) {
      const auto id = ++seq_;
      if (listener_id) *listener_id = id;
      listener({{"task", result}}, nullptr);
      t->listeners.emplace_back(id, std::move(listener));
    }
    ctx->waiting.push_back({t->id, std::move(in.events)});
  }
  start_turn(context_id);
  return result;
}

void task_store::start_turn(const std::string& context_id) {
  job j;
  {
    std::lock_guard lock(mu_);
    auto it = contexts_.find(context_id);
    if (it == contexts_.end() || !it->second->active.empty() || it->second->waiting.empty()) return;
    j = std::move(it->second->waiting.front());
    it->second->waiting.pop_front();
    // Active before the session is made: a new session's greeting belongs to this turn.
    it->second->active = j.task_id;
    running_.fetch_add(1);
    auto& t = *tasks_.at(j.task_id);
    t.state = task_state::working;
    t.updated = wall_clock::now();
    t.turn_parts = json::array();
    emit(t, {{"statusUpdate", {{"taskId", t.id}, {"contextId", t.context_id},
                               {"status", {{"state", to_string(t.state)},
                                           {"timestamp", timestamp(t.updated)}}}}}},
         false);
  }
  // Several nodes on one database: the session is claimed first, without holding this thread
  // (a slow database must not stall the other connections); at once when there is one node.
  auto pending = std::make_shared<job>(std::move(j));
  agent_.async_claim(context_id, [self = shared_from_this(), context_id, pending](std::exception_ptr e) {
    if (!e) return self->run_turn(context_id, *pending);
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      self->fail_turn(context_id, pending->task_id, ex.what());
    }
  });
}

void task_store::run_turn(const std::string& context_id, job& j) {
  std::shared_ptr<parley::session> s;
  try {
    auto hold = agent_.get_or_create_session(context_id, plat_)->attach();
    s = hold.session();
    std::lock_guard lock(mu_);
    contexts_.at(context_id)->hold = std::move(hold);
  } catch (const std::exception& ex) {
    return fail_turn(context_id, j.task_id, ex.what());
  }
  std::string refused;
  bool first = true;
  for (auto& e : j.events) {
    // The parts of one message are one message for double texting.
    auto r = s->post(std::move(e), /*more_of_last=*/!first);
    first = false;
    if (!r) {
      refused = r.error;
      break;
    }
  }
  if (!refused.empty()) {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(j.task_id);  // gone if it was canceled and evicted meanwhile
    if (it != tasks_.end() && !terminal(it->second->state))
      finish(*it->second, task_state::failed, refused);
  }
  end_turn_when_done(context_id, j.task_id, s);
}

// The turn ends once the session has handled these events, no body is suspended and the agents
// it asked over A2A have answered (their answers are events of the session, handled in the
// turn: a relay's task holds its peer's reply). The session runs the idle callback itself (so
// it is alive then); a strong capture would make a cycle through its own waiter list.
void task_store::end_turn_when_done(const std::string& context_id, const std::string& task_id,
                                    std::weak_ptr<parley::session> s) {
  auto live = s.lock();
  if (!live) return;
  live->when_idle([self = shared_from_this(), context_id, task_id, weak = std::move(s)] {
    auto now = weak.lock();
    if (!now) return;
    auto asks = std::dynamic_pointer_cast<asks_in_flight>(self->agent_.find_agent_transport("a2a"));
    if (asks && !asks->when_answered(now->id(), [self, context_id, task_id, weak] {
          self->end_turn_when_done(context_id, task_id, weak);
        }))
      return;
    self->end_turn(context_id, task_id, *now);
  });
}

void task_store::fail_turn(const std::string& context_id, const std::string& task_id,
                           std::string why) {
  PARLEY_LOG(info, "a2a: a turn of session " << session_tag(context_id) << " failed: " << why);
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task_id);
    if (it != tasks_.end() && !terminal(it->second->state))
      finish(*it->second, task_state::failed, std::move(why));
    contexts_.at(context_id)->active.clear();
    running_.fetch_sub(1);
  }
  start_turn(context_id);
  drop_context_if_idle(context_id);
}

// On the session's strand: current_state() may be read.
void task_store::end_turn(const std::string& context_id, const std::string& task_id,
                          parley::session& s) {
  const bool waits = !s.is_terminal() && input_states_.contains(s.current_state().name());
  session_attachment released;
  {
    std::lock_guard lock(mu_);
    auto& ctx = *contexts_.at(context_id);
    ctx.active.clear();
    released = std::move(ctx.hold);
    running_.fetch_sub(1);
    if (auto it = tasks_.find(task_id); it != tasks_.end()) {
      auto& t = *it->second;
      if (!t.turn_parts.empty())
        t.history.push_back(agent_message(t.id, t.context_id, std::move(t.turn_parts)));
      t.turn_parts = json::array();
      if (t.state == task_state::working) {
        finish(t, waits ? task_state::input_required : task_state::completed);
        if (waits) ctx.open_task = t.id;
      }
    }
  }
  start_turn(context_id);
  drop_context_if_idle(context_id);
}

void task_store::drop_context_if_idle(const std::string& context_id) {
  std::lock_guard lock(mu_);
  auto it = contexts_.find(context_id);
  if (it != contexts_.end() && it->second->active.empty() && it->second->waiting.empty() &&
      it->second->open_task.empty())
    contexts_.erase(it);
}

void task_store::on_reply(parley::session& s, const reply& r) {
  if (running_.load() == 0) return;  // no A2A turn anywhere: the common WebSocket case
  std::lock_guard lock(mu_);
  auto c = contexts_.find(s.id());
  if (c == contexts_.end() || c->second->active.empty()) return;
  auto it = tasks_.find(c->second->active);
  // Canceled or failed meanwhile (and perhaps evicted): the replies are no longer the task's.
  if (it == tasks_.end() || it->second->state != task_state::working) return;
  auto& t = *it->second;
  json part = reply_part(r);
  json artifact = {{"artifactId", t.id + "-" + std::to_string(t.artifacts.size() + 1)},
                   {"name", "reply"},
                   {"parts", json::array({part})}};
  t.turn_parts.push_back(std::move(part));
  t.artifacts.push_back(artifact);
  emit(t, {{"artifactUpdate", {{"taskId", t.id}, {"contextId", t.context_id},
                               {"artifact", std::move(artifact)}, {"lastChunk", true}}}},
       false);
}

json task_store::get(const std::string& id, std::optional<std::size_t> history_length) const {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) throw not_found(id);
  return snapshot(*it->second, history_length, true);
}

json task_store::cancel(const std::string& id) {
  std::string context_id;
  json result;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) throw not_found(id);
    auto& t = *it->second;
    if (t.state == task_state::canceled) return snapshot(t, std::nullopt, true);
    if (terminal(t.state))
      throw rpc_error{error_code::task_not_cancelable,
                      "Task " + id + " is " + std::string(to_string(t.state)) +
                          " and cannot be canceled"};
    context_id = t.context_id;
    if (auto c = contexts_.find(context_id); c != contexts_.end()) {
      auto& ctx = *c->second;
      std::erase_if(ctx.waiting, [&](const job& j) { return j.task_id == id; });
      if (ctx.open_task == id) ctx.open_task.clear();
    }
    // A running turn goes on in the session (a body cannot be stopped from outside); its
    // replies are no longer the task's.
    finish(t, task_state::canceled);
    result = snapshot(t, std::nullopt, true);
  }
  drop_context_if_idle(context_id);
  return result;
}

std::uint64_t task_store::subscribe(const std::string& id, task_listener listener) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) throw not_found(id);
  auto& t = *it->second;
  if (terminal(t.state))
    throw rpc_error{error_code::unsupported_operation,
                    "Task " + id + " is in a terminal state (" + std::string(to_string(t.state)) +
                        "); read it with GetTask"};
  const json snap = snapshot(t, std::nullopt, true);
  if (interrupted(t.state)) {
    listener({{"task", snap}}, &snap);
    return 0;
  }
  listener({{"task", snap}}, nullptr);
  const auto lid = ++seq_;
  t.listeners.emplace_back(lid, std::move(listener));
  return lid;
}

void task_store::unsubscribe(const std::string& task_id, std::uint64_t listener_id) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return;
  std::erase_if(it->second->listeners, [&](const auto& l) { return l.first == listener_id; });
}

json task_store::list(const json& params) const {
  const auto str = [&](const char* k) -> std::string {
    auto it = params.find(k);
    if (it == params.end() || it->is_null()) return {};
    if (!it->is_string()) throw rpc_error{error_code::invalid_params, std::string(k) + " must be a string"};
    return it->get<std::string>();
  };
  const auto num = [&](const char* k, std::int64_t def, std::int64_t lo, std::int64_t hi) {
    auto it = params.find(k);
    if (it == params.end() || it->is_null()) return def;
    if (!it->is_number_integer() || it->get<std::int64_t>() < lo || it->get<std::int64_t>() > hi)
      throw rpc_error{error_code::invalid_params, std::string(k) + " must be an integer from " +
                                                      std::to_string(lo) + " to " + std::to_string(hi)};
    return it->get<std::int64_t>();
  };
  const std::string context_id = str("contextId");
  // A context id is the session's id, a bearer secret: tasks are listed per context only.
  if (context_id.empty())
    throw rpc_error{error_code::invalid_params,
                    "contextId is required: this agent lists the tasks of one context (a context "
                    "id is a session's secret, so all contexts are never listed together)"};
  const std::string status = str("status");
  std::optional<task_state> want;
  if (!status.empty() && !(want = task_state_from(status)))
    throw rpc_error{error_code::invalid_params, "status must be a TASK_STATE_... name"};
  const auto page_size = num("pageSize", 50, 1, 100);
  const std::string token = str("pageToken");
  std::int64_t offset = 0;
  if (!token.empty()) {
    try {
      offset = std::stoll(token);
    } catch (const std::exception&) {
      throw rpc_error{error_code::invalid_params, "pageToken is not one this agent gave"};
    }
  }
  const auto history = num("historyLength", -1, 0, 1 << 20);
  bool artifacts = false;
  if (auto it = params.find("includeArtifacts"); it != params.end() && it->is_boolean())
    artifacts = it->get<bool>();

  std::lock_guard lock(mu_);
  std::vector<const task*> found;
  for (const auto& [id, t] : tasks_)
    if (t->context_id == context_id && (!want || t->state == *want)) found.push_back(t.get());
  std::sort(found.begin(), found.end(), [](auto* a, auto* b) { return a->seq > b->seq; });
  json tasks = json::array();
  const auto total = static_cast<std::int64_t>(found.size());
  for (std::int64_t i = offset; i < std::min(total, offset + page_size); ++i)
    tasks.push_back(snapshot(*found[static_cast<std::size_t>(i)],
                             history < 0 ? std::nullopt : std::optional<std::size_t>(history),
                             artifacts));
  const bool more = offset + page_size < total;
  return {{"tasks", std::move(tasks)},
          {"nextPageToken", more ? std::to_string(offset + page_size) : std::string()},
          {"pageSize", page_size},
          {"totalSize", total}};
}

}  // namespace parley::platforms::detail::a2a
