// A session's life: construction, start (fresh or resumed), reset and close.
#include <parley/session.hpp>

#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>
#include <parley/platform.hpp>
#include <parley/state.hpp>

#include "session_internal.hpp"

namespace parley {

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
  // Until start() (which may wait for the database), the session is in its initial state: a
  // caller on its strand never sees no state at all.
  try {
    state_ = &owner.initial_state();
  } catch (const definition_error&) {
  }
}

session::~session() = default;

void session::touch() { last_activity_ms_.store(detail::now_ms(), std::memory_order_relaxed); }

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

void session::reset() {
  parley::event marker = event::custom("parley.reset");
  marker.reset_ = true;
  bool schedule = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return;
    if (!evicted_.load(std::memory_order_relaxed)) {
      // Not counted against the capacity: a reset must never be refused for a full queue.
      schedule = push_locked(std::move(marker));
      ++resets_queued_;
      if (schedule) post_drain();
      // A body waiting on something slow would hold the reset back: end it now.
      net::post(strand_, [self = shared_from_this()] { self->cancel_body_for_reset(); });
      return;
    }
  }
  // Evicted: reset the successor (made or resumed for this id), outside our lock.
  try {
    successor()->reset();
  } catch (const std::exception& ex) {
    PARLEY_LOG(warn, "session " << session_tag(id_) << ": reset after eviction failed: " << ex.what());
  }
}

void session::do_reset() {
  {
    std::lock_guard lock(mutex_);
    --resets_queued_;
  }
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
  // A fresh conversation: links to other agents are closed, handled ids forgotten.
  forget_agent_links();
  handled_ids_.clear();
  handled_order_.clear();
  PARLEY_LOG(debug, "session " << session_tag(id_) << " reset");
  enter_state(agent_->initial_state());
  if (run_body(state_->body(), "body")) follow_eventless();
}

// Strand. Only a body that runs before the reset is handled is cancelled: once the marker is
// taken, the body running is the fresh conversation's.
void session::cancel_body_for_reset() {
  bool queued = false;
  {
    std::lock_guard lock(mutex_);
    queued = resets_queued_ > 0;
  }
  if (queued) cancel_body();
}

// ---- attachment and eviction ----------------------------------------------------------------

void session_attachment::reset() {
  if (auto s = s_.lock()) s->detach();
  s_.reset();
}

session_attachment session::attach() {
  {
    std::lock_guard lock(mutex_);
    if (!evicted_.load(std::memory_order_relaxed)) {
      attached_.fetch_add(1, std::memory_order_relaxed);
      return session_attachment(shared_from_this());
    }
  }
  // Evicted before the caller could attach: attach to the successor under the same id.
  return successor()->attach();
}

void session::detach() {
  std::lock_guard lock(mutex_);
  attached_.fetch_sub(1, std::memory_order_relaxed);
  touch();  // the idle time counts from the moment the last connection left
}

std::shared_ptr<session> session::successor() {
  return agent_->get_or_create_session(id_, platform_, username_, session_name_);
}

// A closed session may go too (close() alone leaves it in the map): its object then refuses
// events as closed, and its id starts a new conversation when it comes back.
bool session::idle_until(clock::time_point horizon) const {
  return started_ && !busy_ && next_timer_due() >= horizon;
}

bool session::mark_evicted_if_idle(wall_clock::time_point quiet_since) {
  std::lock_guard lock(mutex_);
  // Everything a racing post, attach or when_idle would change is checked under the lock it
  // takes: once evicted_ is set, they go to a successor instead.
  if (evicted_.load(std::memory_order_relaxed) ||
      attached_.load(std::memory_order_relaxed) != 0 || head_ != queue_.size() ||
      drain_scheduled_ || busy_ || !idle_waiters_.empty() || last_activity() > quiet_since)
    return false;
  evicted_.store(true, std::memory_order_release);
  release_queue_locked();
  return true;
}

std::optional<clock::time_point> session::release_timers() {
  std::optional<clock::time_point> due;
  if (const auto next = next_timer_due(); next != clock::time_point::max()) due = next;
  timer_.cancel();
  after_due_.reset();
  if (poll_) poll_->cancel();
  for (auto& sc : scheduled_) sc->timer.cancel();
  return due;
}

// ---- life --------------------------------------------------------------------------------------

void session::start(const session_snapshot* snapshot, bool resume) {
  if (started_) return;
  auto* db = agent_->db();
  // Replies are numbered on from the last stored one, whether the session resumes or starts
  // afresh under the same id (its earlier rows keep their numbers).
  if (snapshot) reply_seq_ = std::max(reply_seq_, snapshot->last_reply_seq);
  // A session closed in an earlier life starts a new conversation under the same id.
  if (snapshot && resume && snapshot->closed_reason.empty()) {
    const parley::state* s = agent_->find_state(snapshot->state);
    if (!s) {
      PARLEY_LOG(warn, "session " << session_tag(id_) << ": persisted state '" << snapshot->state
                                  << "' no longer exists; resuming in the initial state");
      s = &agent_->initial_state();
    }
    dictionary_ = snapshot->variables;
    for (const auto& id : snapshot->handled_agent_ids) remember_agent_id(id);
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
    PARLEY_LOG(debug, "session " << session_tag(id_) << " resumed in state " << state_->name());
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
    release_queue_locked();
  }
  net::post(strand_, [self = shared_from_this(), reason = std::move(reason)] {
    self->cancel_body();
    self->timer_.cancel();
    if (self->poll_) self->poll_->cancel();
    for (auto& sc : self->scheduled_) sc->timer.cancel();
    self->forget_agent_links();
    // A session that moved to another node is not closed there: nothing is recorded (its row
    // stays open, so its new owner restores it and its timers are found).
    if (auto* db = self->agent_->db(); db && !reason.starts_with("moved"))
      db->session_closed(*self, reason);
    if (self->platform_) self->platform_->session_ended(*self, reason);
    PARLEY_LOG(debug, "session " << session_tag(self->id_) << " closed: " << reason);
  });
}

}  // namespace parley
