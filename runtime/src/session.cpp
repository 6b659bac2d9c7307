#include <parley/session.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>
#include <parley/platform.hpp>
#include <parley/state.hpp>

namespace parley {

// A `schedule()`d event waiting for its time. Owned by the session (so close() can cancel it)
// and by its pending wait.
struct session::scheduled {
  explicit scheduled(const strand_type& s) : timer(s) {}
  timer_type timer;
  std::string key;
};

namespace {
std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             wall_clock::now().time_since_epoch())
      .count();
}
constexpr int drain_budget = 64;  // events per strand turn before yielding to other sessions
}  // namespace

session::session(parley::agent& owner, std::string id, parley::platform* platform,
                 std::string username, std::string session_name)
    : agent_(&owner),
      platform_(platform),
      id_(std::move(id)),
      username_(std::move(username)),
      session_name_(std::move(session_name)),
      strand_(net::make_strand(owner.io_context())),
      timer_(strand_) {
  touch();
}

session::~session() = default;

void session::touch() { last_activity_ms_.store(now_ms(), std::memory_order_relaxed); }

wall_clock::time_point session::last_activity() const {
  return wall_clock::time_point(std::chrono::milliseconds(last_activity_ms_.load()));
}

std::string_view session::current_state_name() const {
  const parley::state* s = visible_state_.load(std::memory_order_relaxed);
  return s ? std::string_view(s->name()) : std::string_view();
}

std::string session::closed_reason() const {
  std::lock_guard lock(mutex_);
  return closed_reason_;
}

// ---- dictionary --------------------------------------------------------------------------

json session::get(const std::string& key, json fallback) const {
  if (!dictionary_.is_object()) return fallback;
  auto it = dictionary_.find(key);
  return it == dictionary_.end() ? fallback : *it;
}

void session::set(const std::string& key, json value) {
  dictionary_[key] = std::move(value);
  if (auto* db = agent_->db()) db->save_variables(*this);
}

bool session::erase(const std::string& key) {
  if (!dictionary_.is_object() || dictionary_.erase(key) == 0) return false;
  if (auto* db = agent_->db()) db->save_variables(*this);
  return true;
}

// ---- replies ---------------------------------------------------------------------------------

void session::reply(std::string text) { send({reply_kind::text, std::move(text), {}}); }
void session::reply_markdown(std::string md) { send({reply_kind::markdown, std::move(md), {}}); }
void session::reply_html(std::string html) { send({reply_kind::html, std::move(html), {}}); }
void session::reply_options(std::vector<std::string> options) {
  send({reply_kind::options, {}, json(std::move(options))});
}
void session::reply_json(json value) { send({reply_kind::json, {}, std::move(value)}); }
void session::reply_file(file_data f) {
  send({reply_kind::file, {}, {{"name", f.name}, {"type", f.type}, {"base64", f.base64}}});
}
void session::reply_image(file_data f) {
  send({reply_kind::image, {}, {{"name", f.name}, {"type", f.type}, {"base64", f.base64}}});
}
void session::reply_location(double latitude, double longitude) {
  send({reply_kind::location, {}, {{"latitude", latitude}, {"longitude", longitude}}});
}
void session::reply_reasoning_step(json step) {
  send({reply_kind::reasoning_step, {}, std::move(step)});
}
void session::reply_task_list(json tasks) {
  send({reply_kind::task_list_update, {}, std::move(tasks)});
}

void session::send(parley::reply r) {
  touch();
  if (auto* db = agent_->db()) {
    if (db->sync_commit() && platform_) {
      // The client sees the reply only once its row is durable (db.sync_commit).
      auto self = shared_from_this();
      auto copy = r;
      db->save_message(*this, r, false,
                       [self, copy = std::move(copy)] { self->platform_->deliver(*self, copy); });
      return;
    }
    db->save_message(*this, r, false);
  }
  if (platform_) platform_->deliver(*this, r);
}

// ---- chat log and reasoning ------------------------------------------------------------------

void session::save_message(const parley::reply& message, bool is_user) {
  if (auto* db = agent_->db()) db->save_message(*this, message, is_user);
}

std::vector<chat_message> session::get_chat_history(std::optional<std::size_t> n,
                                                    std::optional<wall_clock::time_point> until) {
  if (auto* db = agent_->db()) return db->chat_history(*this, n, until);
  PARLEY_LOG(warn, "session " << session_tag(id_)
                              << ": get_chat_history needs a DB handler (--db PATH)");
  return {};
}

void session::save_reasoning_event(std::string kind, json payload) {
  if (auto* db = agent_->db()) db->save_reasoning_event(*this, kind, payload);
}

std::vector<reasoning_event> session::get_reasoning_events(
    std::optional<wall_clock::time_point> until) {
  if (auto* db = agent_->db()) return db->reasoning_events(*this, until);
  return {};
}

// ---- the mailbox -----------------------------------------------------------------------------

// Called with mutex_ held: whether the caller must post a drain (none is pending yet).
bool session::claim_drain() {
  const bool claim = !drain_scheduled_;
  drain_scheduled_ = true;
  return claim;
}

// Called with mutex_ held: queues `e` (counted as pending); true when the caller must post a
// drain.
bool session::push_locked(parley::event&& e) {
  queue_.push_back(std::move(e));
  pending_.fetch_add(1, std::memory_order_relaxed);
  return claim_drain();
}

// Called with mutex_ held, the queue not empty: takes its front event.
parley::event session::pop_locked() {
  pending_.fetch_sub(1, std::memory_order_relaxed);
  return std::move(queue_[head_++]);
}

void session::post_drain() {
  net::post(strand_, [self = shared_from_this()] { self->drain(); });
}

post_result session::post(parley::event e) {
  bool schedule = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed))
      return post_result::refused("session '" + id_ + "' is closed (" + closed_reason_ +
                                  "); open a new session to talk to the agent again");
    const std::size_t queued = queue_.size() - head_;
    if (queued >= agent_->queue_capacity())
      return post_result::refused(
          "session '" + id_ + "' already has " + std::to_string(queued) +
          " events waiting (agent.queue_capacity): the agent is behind on this conversation; "
          "retry later, or raise agent.queue_capacity");
    schedule = push_locked(std::move(e));
  }
  touch();
  if (schedule) post_drain();
  return {};
}

// Timeouts and scheduled events come from the session itself, on its strand: they skip the
// capacity check (dropping a timeout would leave the session stuck), and when nothing is
// queued they are handled at once instead of taking another trip through the strand.
void session::enqueue_internal(parley::event e) {
  bool schedule = false;
  bool now = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return;
    now = !busy_ && started_ && !drain_scheduled_ && head_ == queue_.size();
    if (!now) schedule = push_locked(std::move(e));
  }
  if (now)
    handle(std::move(e));
  else if (schedule)
    post_drain();
}

void session::reset() {
  parley::event marker = event::custom("parley.reset");
  marker.reset_ = true;
  bool schedule = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return;
    // Not counted against the capacity: a reset must never be refused for a full queue.
    schedule = push_locked(std::move(marker));
  }
  if (schedule) post_drain();
}

void session::do_reset() {
  timer_.cancel();
  for (auto& sc : scheduled_) sc->timer.cancel();
  if (auto* db = agent_->db()) {
    // In the writer's order: every row this session wrote so far goes, then a fresh one.
    db->delete_session(agent_->name(), id_);
    db->session_started(*this);
  }
  dictionary_ = json();
  event_ = parley::event();
  chain_ = 0;
  PARLEY_LOG(debug, "session " << id_ << " reset");
  enter_state(agent_->initial_state());
  if (run_body(state_->body(), "body")) follow_eventless();
}

void session::when_idle(std::function<void()> fn) {
  bool schedule = false;
  {
    std::lock_guard lock(mutex_);
    idle_waiters_.push_back(std::move(fn));
    schedule = claim_drain();
  }
  if (schedule) post_drain();
}

void session::drain() {
  for (int n = 0; n < drain_budget; ++n) {
    parley::event e;
    std::vector<std::function<void()>> waiters;
    bool idle = false;
    {
      std::lock_guard lock(mutex_);
      if (busy_ || !started_) {
        // The coroutine's completion (or start()) drains again.
        drain_scheduled_ = false;
        return;
      }
      if (head_ == queue_.size()) {
        queue_.clear();
        head_ = 0;
        drain_scheduled_ = false;
        idle = true;
        waiters.swap(idle_waiters_);
      } else {
        e = pop_locked();
      }
    }
    if (idle) {
      for (auto& w : waiters) w();
      return;
    }
    handle(std::move(e));
  }
  // Yield the thread to other sessions; drain_scheduled_ stays true.
  post_drain();
}

void session::manage_transition() {
  parley::event e;
  bool have = false;
  {
    std::lock_guard lock(mutex_);
    if (!busy_ && head_ < queue_.size()) {
      e = pop_locked();
      have = true;
    }
  }
  if (have) {
    handle(std::move(e));
  } else if (!busy_) {
    chain_ = 0;
    follow_eventless();
  }
}

void session::call_manage_transition() {
  net::post(strand_, [self = shared_from_this()] {
    if (self->started_ && !self->busy_ && !self->is_terminal()) {
      self->chain_ = 0;
      self->follow_eventless();
    }
    self->drain();
  });
}

// ---- handling one event ----------------------------------------------------------------------

void session::handle(parley::event e) {
  if (is_terminal()) return;
  if (e.reset_) {
    do_reset();
    return;
  }
  if (e.kind() == event_kind::timeout && e.generation() != generation_) {
    // A timeout armed in a state the session has left since: it belongs to nobody.
    PARLEY_LOG(trace, "session " << id_ << ": stale timeout dropped");
    return;
  }
  chain_ = 0;
  if (e.human() && (e.kind() == event_kind::text || e.kind() == event_kind::json ||
                    e.kind() == event_kind::file)) {
    if (auto* db = agent_->db()) {
      parley::reply r;
      r.kind = e.kind() == event_kind::text ? reply_kind::text
               : e.kind() == event_kind::json ? reply_kind::json
                                              : reply_kind::file;
      r.text = e.text();
      if (e.kind() == event_kind::json) r.data = e.payload();
      if (const auto* f = e.file()) r.data = {{"name", f->name}, {"type", f->type}};
      r.timestamp = e.timestamp();
      db->save_message(*this, r, true);
    }
  }

  // Conditions may look at session.event(): it is the new event while transitions are
  // evaluated, and the previous one again if nothing handles it.
  std::swap(event_, e);
  bool wants_fallback = false;
  if (const transition* t = find_event_transition(wants_fallback)) {
    move(*t);
    return;
  }
  if (wants_fallback) {
    const parley::body& fb = state_->fallback_body() ? state_->fallback_body()
                                                     : agent_->global_fallback();
    if (run_body(fb, "fallback body")) follow_eventless();
    return;
  }
  if (event_.kind() == event_kind::timeout) {
    // No after(d) transition of this duration held (conditions): arm the next duration.
    const auto& ts = state_->timeouts();
    auto it = std::find(ts.begin(), ts.end(), event_.timeout_after());
    std::swap(event_, e);
    if (it != ts.end()) arm_timeouts(static_cast<std::size_t>(it - ts.begin()) + 1);
    return;
  }
  report_unhandled(event_);
  std::swap(event_, e);
}

void session::predict() {
  const std::string& text = event_.text();
  intent_prediction p;
  if (const intent_model* m = state_->model()) p = m->predict(text);
  if (p.intent && p.score < agent_->intent_threshold()) {
    p.intent = nullptr;
    p.intent_name.clear();
    p.parameters.clear();
  }
  if (auto* db = agent_->db()) db->save_prediction(*this, text, p);
  PARLEY_LOG(debug, "session " << id_ << " [" << state_->name() << "]: '" << text << "' -> "
                               << (p.intent ? p.intent_name : "(no intent)") << " " << p.score);
  event_.set_prediction(std::move(p));
}

bool session::conditions_hold(const transition& t) {
  for (const auto& c : t.conditions()) {
    try {
      if (!c.fn(*this)) return false;
    } catch (const std::exception& ex) {
      PARLEY_LOG(warn, "session " << session_tag(id_) << " [" << state_->name() << "]: condition '"
                                  << c.description << "' threw (counted as false): " << ex.what());
      if (auto* db = agent_->db())
        db->save_event(this, "condition_error", c.description + ": " + ex.what());
      return false;
    } catch (...) {
      PARLEY_LOG(warn, "session " << session_tag(id_) << ": condition '" << c.description
                                  << "' threw a non-exception (counted as false)");
      return false;
    }
  }
  return true;
}

const transition* session::find_event_transition(bool& wants_fallback) {
  bool predicted = false;
  for (const transition& t : state_->transitions()) {
    if (!t.matches_event(event_)) continue;
    if (t.trigger_kind() == trigger::intent || t.trigger_kind() == trigger::no_intent) {
      if (!predicted) {
        predict();
        predicted = true;
      }
      const intent_prediction* p = event_.prediction();
      const bool matched = p && p->matched();
      if (t.trigger_kind() == trigger::intent && !(matched && p->intent == t.intent())) continue;
      if (t.trigger_kind() == trigger::no_intent && matched) continue;
    }
    if (conditions_hold(t)) return &t;
  }
  wants_fallback = event_.human() && (event_.kind() == event_kind::text ||
                                      (event_.kind() == event_kind::json && !event_.text().empty()));
  return nullptr;
}

const transition* session::find_eventless_transition() {
  if (!state_->has_eventless_transitions()) return nullptr;
  for (const transition& t : state_->transitions())
    if (t.is_eventless() && conditions_hold(t)) return &t;
  return nullptr;
}

void session::report_unhandled(const parley::event& e) {
  PARLEY_LOG(info, "session " << session_tag(id_) << " [" << state_->name() << "]: unhandled "
                              << e.describe()
                              << " (no transition matches; dropped)");
  if (auto* db = agent_->db())
    db->save_event(this, "unhandled", e.describe() + " in state " + state_->name());
}

// ---- moving ----------------------------------------------------------------------------------

void session::move(const transition& t) {
  if (++chain_ > agent_->max_auto_moves()) {
    // Name the last states of the loop (a ring of the most recent moves).
    std::string loop;
    const std::uint32_t n = std::min<std::uint32_t>(chain_ - 1, recent_.size());
    for (std::uint32_t i = chain_ - 1 - n; i < chain_ - 1; ++i)
      loop += recent_[i % recent_.size()]->name() + " -> ";
    const std::string msg =
        "more than " + std::to_string(agent_->max_auto_moves()) +
        " moves without an event (..." + loop + state_->name() + " -> " + t.dest().name() +
        "): the eventless transitions of these states form a loop; make one wait for an event "
        "or give it a condition that becomes false";
    PARLEY_LOG(error, "session " << session_tag(id_) << ": " << msg);
    if (auto* db = agent_->db()) db->save_event(this, "error", msg);
    return;
  }
  recent_[(chain_ - 1) % recent_.size()] = state_;
  if (auto* db = agent_->db()) db->save_transition(*this, t, t.is_eventless() ? nullptr : &event_);
  PARLEY_LOG(debug, "session " << id_ << ": " << state_->name() << " -> " << t.dest().name()
                               << " (" << t.describe_event() << ")");
  if (const auto& exit = state_->exit_action()) {
    try {
      exit(*this);
    } catch (const std::exception& ex) {
      PARLEY_LOG(error, "session " << session_tag(id_) << ": exit action of '" << state_->name()
                                   << "' threw: " << ex.what());
    }
  }
  enter_state(t.dest());
  if (run_body(state_->body(), "body")) follow_eventless();
}

void session::enter_state(const parley::state& s) {
  state_ = &s;
  visible_state_.store(&s, std::memory_order_relaxed);
  ++generation_;
  entered_at_ = clock::now();
  timer_.cancel();
  if (agent_->persists_sessions())
    if (auto* db = agent_->db()) db->delete_timer(*this, "after");
  arm_timeouts(0);
}

void session::follow_eventless() {
  if (busy_ || is_terminal()) return;
  if (const transition* t = find_eventless_transition()) move(*t);
}

bool session::run_body(const parley::body& b, const char* what) {
  if (!b) return true;
  if (!b.is_coroutine()) {
    try {
      b.sync()(*this);
    } catch (const std::exception& ex) {
      body_failed(what, ex.what());
    } catch (...) {
      body_failed(what, "a non-exception was thrown");
    }
    return true;
  }
  net::awaitable<void> aw;
  try {
    aw = b.async()(*this);
  } catch (const std::exception& ex) {
    body_failed(what, ex.what());
    return true;
  }
  {
    std::lock_guard lock(mutex_);
    busy_ = true;
  }
  net::co_spawn(strand_, std::move(aw),
                [self = shared_from_this(), what](std::exception_ptr ep) {
                  if (ep) {
                    try {
                      std::rethrow_exception(ep);
                    } catch (const std::exception& ex) {
                      self->body_failed(what, ex.what());
                    } catch (...) {
                      self->body_failed(what, "a non-exception was thrown");
                    }
                  }
                  {
                    std::lock_guard lock(self->mutex_);
                    self->busy_ = false;
                  }
                  self->follow_eventless();
                  self->drain();
                });
  return false;
}

void session::body_failed(const char* what, const std::string& error) {
  PARLEY_LOG(error, "session " << session_tag(id_) << ": " << what << " of state '" << state_->name()
                               << "' threw: " << error);
  if (auto* db = agent_->db())
    db->save_event(this, "error", std::string(what) + " of state " + state_->name() + ": " + error);
  if (!agent_->error_reply().empty()) reply(agent_->error_reply());
}

// ---- time ------------------------------------------------------------------------------------

void session::arm_timeouts(std::size_t from, bool save) {
  const auto& ts = state_->timeouts();
  if (from >= ts.size()) return;
  const auto due = entered_at_ + ts[from];
  if (save && agent_->persists_sessions())
    if (auto* db = agent_->db())
      db->save_timer(*this, {"after",
                             wall_clock::now() + std::chrono::duration_cast<wall_clock::duration>(
                                                     due - clock::now()),
                             event_to_json(event::timeout(0, ts[from]))});
  timer_.expires_at(due);
  timer_.async_wait([self = shared_from_this(), gen = generation_, d = ts[from]](
                        const boost::system::error_code& ec) {
    if (ec || gen != self->generation_) return;
    if (self->agent_->persists_sessions())
      if (auto* db = self->agent_->db()) db->delete_timer(*self, "after");
    self->enqueue_internal(event::timeout(gen, d));
  });
}

void session::schedule(clock::duration delay, parley::event e) {
  std::string key = "schedule:" + std::to_string(++timer_seq_) + ":" +
                    std::to_string(now_ms());
  if (agent_->persists_sessions())
    if (auto* db = agent_->db())
      db->save_timer(*this, {key, wall_clock::now() + std::chrono::duration_cast<wall_clock::duration>(delay),
                             event_to_json(e)});
  add_timer(std::move(key), delay, std::move(e));
}

void session::add_timer(std::string key, clock::duration delay, parley::event e) {
  auto sc = std::make_shared<scheduled>(strand_);
  sc->key = std::move(key);
  sc->timer.expires_after(delay);
  scheduled_.push_back(sc);
  sc->timer.async_wait([self = shared_from_this(), sc, e = std::move(e)](
                           const boost::system::error_code& ec) mutable {
    std::erase(self->scheduled_, sc);
    if (ec) return;
    if (self->agent_->persists_sessions())
      if (auto* db = self->agent_->db()) db->delete_timer(*self, sc->key);
    self->enqueue_internal(std::move(e));
  });
}

void session::arm_poll() {
  const auto delay = agent_->check_transitions_delay();
  if (delay <= clock::duration::zero() || is_terminal()) return;
  if (!poll_) poll_ = std::make_unique<timer_type>(strand_);
  // One poll timer per session, re-armed only by its own completion: never more than one wait.
  poll_->expires_after(delay);
  poll_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (!self->busy_ && !self->is_terminal()) {
      self->chain_ = 0;
      self->follow_eventless();
    }
    self->arm_poll();
  });
}

// ---- life --------------------------------------------------------------------------------------

void session::start(const session_snapshot* snapshot) {
  if (started_) return;
  auto* db = agent_->db();
  // A session closed in an earlier life starts a new conversation under the same id.
  if (snapshot && snapshot->closed_reason.empty()) {
    const parley::state* s = agent_->find_state(snapshot->state);
    if (!s) {
      PARLEY_LOG(warn, "session " << session_tag(id_) << ": persisted state '" << snapshot->state
                                  << "' no longer exists; resuming in the initial state");
      s = &agent_->initial_state();
    }
    dictionary_ = snapshot->variables;
    state_ = s;
    visible_state_.store(s, std::memory_order_relaxed);
    ++generation_;
    entered_at_ = clock::now();
    for (const auto& t : snapshot->timers) {
      // Timers fire at their original due time (at once when overdue).
      const auto left = std::max(wall_clock::duration::zero(), t.due - wall_clock::now());
      const auto delay = std::chrono::duration_cast<clock::duration>(left);
      if (t.key == "after") {
        const auto after = event_from_json(t.event).timeout_after();
        const auto& ts = state_->timeouts();
        auto it = std::find(ts.begin(), ts.end(), after);
        if (it == ts.end()) continue;
        entered_at_ = clock::now() + delay - after;  // as if entered when it really was
        // The timer row is already stored with this due time: re-arm without rewriting it.
        arm_timeouts(static_cast<std::size_t>(it - ts.begin()), /*save=*/false);
      } else {
        add_timer(t.key, delay, event_from_json(t.event));
      }
    }
    {
      std::lock_guard lock(mutex_);
      started_ = true;
    }
    PARLEY_LOG(debug, "session " << id_ << " resumed in state " << state_->name());
  } else {
    if (db) db->session_started(*this);
    {
      std::lock_guard lock(mutex_);
      started_ = true;
    }
    enter_state(agent_->initial_state());
    if (run_body(state_->body(), "body")) follow_eventless();
  }
  arm_poll();
  drain();
}

void session::close(std::string reason) {
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return;
    closed_reason_ = reason;
    closed_.store(true, std::memory_order_release);
    pending_.fetch_sub(queue_.size() - head_, std::memory_order_relaxed);
    queue_.clear();
    head_ = 0;
  }
  net::post(strand_, [self = shared_from_this(), reason = std::move(reason)] {
    self->timer_.cancel();
    if (self->poll_) self->poll_->cancel();
    for (auto& sc : self->scheduled_) sc->timer.cancel();
    if (auto* db = self->agent_->db()) db->session_closed(*self, reason);
    if (self->platform_) self->platform_->session_ended(*self, reason);
    PARLEY_LOG(debug, "session " << self->id_ << " closed: " << reason);
  });
}

}  // namespace parley
