// The transition engine: handling one event, moving between states, running bodies.
#include <parley/session.hpp>

#include <algorithm>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/intent.hpp>
#include <parley/log.hpp>
#include <parley/state.hpp>

namespace parley {

// ---- handling one event ----------------------------------------------------------------------

void session::handle(parley::event e) {
  if (e.user_seq_ != 0) user_turn_open_ = true;  // taken by pop_locked: its turn has begun
  handle_event(std::move(e));
  end_turn();  // unless a body or a prediction is still running: their ending ends it
}

void session::handle_event(parley::event e) {
  if (is_terminal()) return;
  if (e.reset_) {
    do_reset();
    return;
  }
  if (e.kind() == event_kind::timeout && e.generation() != generation_) {
    // A timeout armed in a state the session has left since: it belongs to nobody.
    PARLEY_LOG(trace, "session " << session_tag(id_) << ": stale timeout dropped");
    return;
  }
  if (!take_agent_message(e)) return;  // a resend of an agent message handled before
  if (agent_->traces()) begin_turn(e);
  if (e.kind() == event_kind::custom && e.name() == agent_error_event)
    if (auto* db = agent_->db())
      db->save_event(this, "agent_error",
                     redact_url(e.sender()) + ": " + e.payload().value("reason", std::string()));
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
  if (wants_async_prediction(e)) {
    predict_then_dispatch(std::move(e));
    return;
  }
  dispatch(std::move(e));
}

bool session::wants_async_prediction(const parley::event& e) const {
  const intent_model* m = state_->model();
  if (!m || !m->asynchronous()) return false;
  for (const transition& t : state_->transitions())
    if ((t.trigger_kind() == trigger::intent || t.trigger_kind() == trigger::no_intent) &&
        t.matches_event(e))
      return true;
  return false;
}

void session::predict_then_dispatch(parley::event e) {
  // The model answers later (an LLM): the session is busy as with a suspended coroutine body,
  // so its next events wait in the mailbox, in order, and the strand is free meanwhile. The
  // answer comes back through the strand; the event is then handled with that prediction.
  {
    std::lock_guard lock(mutex_);
    busy_ = true;
  }
  if (turn_) predict_started_ = wall_clock::now();
  std::string text = e.text();
  state_->model()->async_predict(
      std::move(text), [self = shared_from_this(), e = std::move(e)](intent_prediction p) mutable {
        net::post(self->strand_, [self, e = std::move(e), p = std::move(p)]() mutable {
          {
            std::lock_guard lock(self->mutex_);
            self->busy_ = false;
          }
          if (!self->is_terminal()) {
            self->ready_prediction_ = std::move(p);
            self->dispatch(std::move(e));
            self->ready_prediction_.reset();
          }
          self->end_turn();
          self->drain();
        });
      });
}

void session::dispatch(parley::event e) {
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
    if (turn_) turn_->set("parley.fallback", true);
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
  if (turn_) turn_->set("parley.unhandled", true);
  report_unhandled(event_);
  std::swap(event_, e);
}

void session::predict() {
  const std::string& text = event_.text();
  const auto started = ready_prediction_ ? predict_started_ : wall_clock::now();
  intent_prediction p;
  if (ready_prediction_) {
    p = std::move(*ready_prediction_);  // the asynchronous model's answer for this event
    ready_prediction_.reset();
  } else if (const intent_model* m = state_->model()) {
    p = m->predict(text);
  }
  if (p.intent && p.score < agent_->intent_threshold()) {
    p.intent = nullptr;
    p.intent_name.clear();
    p.parameters.clear();
  }
  if (auto* db = agent_->db()) db->save_prediction(*this, text, p);
  if (turn_) trace_prediction(p, started);
  PARLEY_LOG(debug, "session " << session_tag(id_) << " [" << state_->name() << "]: '" << text << "' -> "
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
  PARLEY_LOG(info, "session " << session_tag(id_) << " [" << state_->name() << "]: unhandled " << e.describe()
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
    if (turn_) turn_->fail("max_auto_moves", msg);
    return;
  }
  recent_[(chain_ - 1) % recent_.size()] = state_;
  // The transition's span covers the exit action, the entry and the new state's body (up to
  // its first suspension); the transitions that follow are its siblings.
  std::optional<span> ts;
  if (turn_) {
    ts = turn_->child("transition " + t.dest().name());
    ts->set("parley.transition.source", state_->name());
    ts->set("parley.transition.dest", t.dest().name());
    ts->set("parley.transition.kind", std::string(t.kind_name()));
    ts->set("parley.transition.event", t.describe_event());
    if (!t.conditions().empty()) ts->set("parley.transition.condition", t.describe_condition());
  }
  if (auto* db = agent_->db()) db->save_transition(*this, t, t.is_eventless() ? nullptr : &event_);
  PARLEY_LOG(debug, "session " << session_tag(id_) << ": " << state_->name() << " -> " << t.dest().name()
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
  const bool done = run_body(state_->body(), "body");
  if (ts) export_span(std::move(*ts));
  if (done) follow_eventless();
}

void session::enter_state(const parley::state& s) {
  state_ = &s;
  visible_state_.store(&s, std::memory_order_relaxed);
  ++generation_;
  entered_at_ = clock::now();
  timer_.cancel();
  after_due_.reset();
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
  body_cancelled_ = false;
  body_running_ = true;
  // The slot lets reset(), close() and an interrupting message end a body that waits on something slow (a model, a
  // peer): Asio passes it down to whatever the coroutine awaits.
  net::co_spawn(strand_, std::move(aw),
                net::bind_cancellation_slot(
                    body_cancel_.slot(), [self = shared_from_this(), what](std::exception_ptr ep) {
                  if (ep && self->body_cancelled_) {
                    // Ended by reset(), close() or an interrupting message: expected, not a
                    // failure of the body.
                    PARLEY_LOG(debug, "session " << session_tag(self->id_) << ": " << what
                                                 << " cancelled");
                    if (self->turn_) self->turn_->set("parley.cancelled", true);
                    ep = nullptr;
                  }
                  self->body_cancelled_ = false;
                  self->body_running_ = false;
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
                  self->end_turn();
                  self->drain();
                }));
  // A newer message already asked to interrupt this turn (it came while the body's turn was
  // queued, or while an earlier body of the turn ran): the body ends at its first suspension.
  if (user_turn_open_) interrupt_if_due();
  return false;
}

void session::cancel_body() {
  if (!busy_) return;
  body_cancelled_ = true;
  body_cancel_.emit(net::cancellation_type::terminal);
}

void session::body_failed(const char* what, const std::string& error) {
  PARLEY_LOG(error, "session " << session_tag(id_) << ": " << what << " of state '" << state_->name()
                               << "' threw: " << error);
  if (auto* db = agent_->db())
    db->save_event(this, "error", std::string(what) + " of state " + state_->name() + ": " + error);
  if (turn_) turn_->fail("body_error", std::string(what) + " of state " + state_->name() + " threw");
  if (!agent_->error_reply().empty()) reply(agent_->error_reply());
}

}  // namespace parley
