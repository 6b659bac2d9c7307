// The mailbox: the bounded FIFO event queue, and draining it on the strand.
#include <parley/session.hpp>

#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley {

namespace {
constexpr int drain_budget = 64;  // events per strand turn before yielding to other sessions
constexpr std::size_t compact_after = 32;  // taken events before the mailbox is compacted
}  // namespace

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
  parley::event e = std::move(queue_[head_++]);
  take_user_message_locked(e);
  if (head_ == queue_.size()) {
    queue_.clear();
    head_ = 0;
  } else if (head_ >= compact_after && head_ * 2 >= queue_.size()) {
    // A session that is never empty would otherwise grow its vector forever. Moving the
    // live half down costs at most what was popped since the last move: O(1) per event.
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  return e;
}

// Called with mutex_ held, the queue empty: an idle session keeps no large buffer.
void session::release_queue_locked() {
  queue_.clear();
  head_ = 0;
  if (queue_.capacity() > compact_after) std::vector<parley::event>().swap(queue_);
}

void session::post_drain() {
  net::post(strand_, [self = shared_from_this()] { self->drain(); });
}

post_result session::post(parley::event e, bool more_of_last) {
  bool schedule = false;
  bool interrupt = false;
  bool refused = false;
  bool queued_here = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed))
      return post_result::refused("session '" + id_ + "' is closed (" + closed_reason_ +
                                  "); open a new session to talk to the agent again");
    if (!evicted_.load(std::memory_order_relaxed)) {
      const std::size_t queued = queue_.size() - head_;
      if (queued >= agent_->queue_capacity())
        return post_result::refused(
            "session '" + id_ + "' already has " + std::to_string(queued) +
            " events waiting (agent.queue_capacity): the agent is behind on this "
            "conversation; retry later, or raise agent.queue_capacity");
      refused = !accept_user_message_locked(e, more_of_last, interrupt);
      queued_here = !refused;
      if (!refused) {
        schedule = push_locked(std::move(e));
        touch();
        if (schedule) post_drain();
      }
    }
  }
  // Outside the lock: recording may wait for a full DB queue.
  if (refused) return refuse_double_text(e);
  if (queued_here) {
    if (interrupt) net::post(strand_, [self = shared_from_this()] { self->interrupt_if_due(); });
    return {};
  }
  // Raced with the eviction: the conversation goes on in a successor (resumed from the
  // database when sessions are persisted), never in this object. Outside our lock: the
  // successor is made under the agent's.
  try {
    return successor()->post(std::move(e), more_of_last);
  } catch (const std::exception& ex) {
    return post_result::refused(ex.what());
  }
}

// Timeouts and scheduled events come from the session itself, on its strand: they skip the
// capacity check (dropping a timeout would leave the session stuck), and when nothing is
// queued they are handled at once instead of taking another trip through the strand.
void session::enqueue_internal(parley::event e) {
  bool schedule = false;
  bool now = false;
  bool gone = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_.load(std::memory_order_relaxed)) return;
    // Evicted: a timer that fired as the session went (eviction waits for timers due within
    // the TTL, so this is a safety net); its successor handles the event.
    gone = evicted_.load(std::memory_order_relaxed);
    now = !gone && !busy_ && started_ && !drain_scheduled_ && head_ == queue_.size();
    if (!gone && !now) schedule = push_locked(std::move(e));
  }
  if (gone) {
    try {
      successor()->post(std::move(e));
    } catch (const std::exception& ex) {
      PARLEY_LOG(warn, "session " << session_tag(id_) << ": " << e.describe() << " lost: " << ex.what());
    }
  } else if (now) {
    handle(std::move(e));
  } else if (schedule) {
    post_drain();
  }
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

void session::delivery_settled() {
  bool schedule = false;
  {
    std::lock_guard lock(mutex_);
    if (--awaiting_commit_ == 0 && !idle_waiters_.empty()) schedule = claim_drain();
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
        release_queue_locked();
        drain_scheduled_ = false;
        // Replies still waiting for their commit: the waiters wait for them too (the last to
        // settle drains again).
        if (awaiting_commit_ > 0) return;
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

}  // namespace parley
