// Sessions do not live forever: idle ones are evicted from memory (agent.session_idle_ttl),
// and evicted persisted sessions whose timers fall due are brought back.
#include <parley/agent.hpp>

#include <algorithm>

#include <boost/asio/post.hpp>

#include <parley/log.hpp>

namespace parley {

namespace {
// How often the sweep looks for idle sessions: a quarter of the TTL, so a session goes
// between 1 and 1.25 TTLs after its last activity, but not more often than every 50 ms nor
// less often than every 30 s.
clock::duration sweep_period(clock::duration ttl) {
  return std::clamp<clock::duration>(ttl / 4, std::chrono::milliseconds(50),
                                     std::chrono::seconds(30));
}
}  // namespace

// Upkeep strand.
void agent::arm_sweep() {
  if (stopping_.load()) return;
  sweep_timer_->expires_after(sweep_period(idle_ttl_));
  sweep_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    sweep();
    arm_sweep();
  });
}

// Upkeep strand. Cheap checks only, under the map lock: who has been quiet for the TTL with
// nothing queued or attached. Each candidate then decides on its own strand.
void agent::sweep() {
  const auto quiet_since =
      wall_clock::now() - std::chrono::duration_cast<wall_clock::duration>(idle_ttl_);
  std::vector<std::shared_ptr<session>> candidates;
  {
    std::lock_guard lock(sessions_mutex_);
    for (const auto& [id, s] : sessions_)
      if (s->attachment_count() == 0 && s->pending_event_count() == 0 &&
          s->last_activity() <= quiet_since)
        candidates.push_back(s);
  }
  for (auto& s : candidates) try_evict(s);
}

// The eviction is decided in two steps, so that no event is lost and no id gets two sessions:
// on the session's strand (nothing running, no timer due within the TTL), then under the map
// lock and the session's own lock (nothing queued or attached meanwhile, and the map still
// holds this very session). A post that loses the race sees the session evicted and goes to a
// successor, made under the map lock after this one is gone.
void agent::try_evict(const std::shared_ptr<session>& s) {
  net::post(s->strand(), [this, s] {
    if (!s->idle_until(clock::now() + idle_ttl_)) return;
    const auto quiet_since =
        wall_clock::now() - std::chrono::duration_cast<wall_clock::duration>(idle_ttl_);
    {
      std::lock_guard lock(sessions_mutex_);
      auto it = sessions_.find(s->id());
      if (it == sessions_.end() || it->second != s || !s->mark_evicted_if_idle(quiet_since))
        return;
      sessions_.erase(it);
    }
    const auto due = s->release_timers();
    PARLEY_LOG(debug, "session " << s->id() << " evicted after "
                                 << std::chrono::duration<double>(idle_ttl_).count()
                                 << " s idle");
    // Its durable timers are in the database; this brings it back when the first falls due.
    if (due && persist_ && db_)
      add_wake(*due, {s->id(), s->platform(), s->username(), s->session_name()});
  });
}

// Any thread.
void agent::add_wake(clock::time_point due, wake_entry w) {
  bool earliest = false;
  {
    std::lock_guard lock(wake_mutex_);
    auto it = wake_.emplace(due, std::move(w));
    earliest = it == wake_.begin();
  }
  if (earliest) net::post(*upkeep_, [this] { arm_wake(); });
}

// Upkeep strand: one timer for every evicted session, set to the earliest due.
void agent::arm_wake() {
  if (stopping_.load()) return;
  clock::time_point next;
  {
    std::lock_guard lock(wake_mutex_);
    if (wake_.empty()) return;
    next = wake_.begin()->first;
  }
  wake_timer_->expires_at(next);
  wake_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: re-armed for an earlier entry, or stopping
    wake_due();
    arm_wake();
  });
}

// Upkeep strand. Brings back each evicted session whose timer is due: it resumes from the
// database, and its overdue timers fire at once.
void agent::wake_due() {
  std::vector<wake_entry> due;
  {
    std::lock_guard lock(wake_mutex_);
    const auto now = clock::now();
    while (!wake_.empty() && wake_.begin()->first <= now) {
      due.push_back(std::move(wake_.begin()->second));
      wake_.erase(wake_.begin());
    }
  }
  for (auto& w : due) {
    if (find_session(w.id)) continue;  // back already (an event came first)
    // Claimed first without holding this strand (one node: at once; several: a round trip).
    async_claim(w.id, [this, w](std::exception_ptr e) mutable {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const not_owner_error& ex) {  // another node serves it now, timers and all
          PARLEY_LOG(info, "session " << session_tag(w.id) << ": its timer fires elsewhere: " << ex.what());
        } catch (const std::exception& ex) {
          PARLEY_LOG(warn, "session " << session_tag(w.id) << ": its timer waits: " << ex.what());
          add_wake(clock::now() + std::chrono::seconds(1), std::move(w));
        }
        return;
      }
      net::post(*upkeep_, [this, w = std::move(w)]() mutable {
        if (find_session(w.id)) return;
        try {
          get_or_create_session(w.id, w.p, w.username, w.session_name);
          PARLEY_LOG(debug, "session " << w.id << " brought back for its timer");
        } catch (const std::exception& ex) {
          PARLEY_LOG(warn, "session " << session_tag(w.id) << ": its timer waits: " << ex.what());
          add_wake(clock::now() + std::chrono::seconds(1), std::move(w));
        }
      });
    });
  }
}

}  // namespace parley
