// Time: state timeouts (after), scheduled events and condition polling.
#include <parley/session.hpp>

#include <parley/agent.hpp>
#include <parley/state.hpp>

#include "session_internal.hpp"

namespace parley {

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
  after_due_ = due;
  timer_.async_wait([self = shared_from_this(), gen = generation_, d = ts[from]](
                        const boost::system::error_code& ec) {
    if (ec || gen != self->generation_) return;
    self->after_due_.reset();
    if (self->agent_->persists_sessions())
      if (auto* db = self->agent_->db()) db->delete_timer(*self, "after");
    self->enqueue_internal(event::timeout(gen, d));
  });
}

clock::time_point session::next_timer_due() const {
  clock::time_point next = after_due_.value_or(clock::time_point::max());
  for (const auto& sc : scheduled_) next = std::min(next, sc->timer.expiry());
  return next;
}

void session::schedule(clock::duration delay, parley::event e) {
  std::string key = "schedule:" + std::to_string(++timer_seq_) + ":" +
                    std::to_string(detail::now_ms());
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

}  // namespace parley
