// A session's traces: one per turn (one event handled), with child spans for intent
// recognition and transitions. Built only when the agent has a trace sink.
#include <parley/session.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>
#include <parley/state.hpp>

namespace parley {

void session::export_span(span s) const {
  if (auto* sink = agent_->traces()) sink->export_span(std::move(s.finish()));
}

bool session::trace_content() const {
  const auto* sink = agent_->traces();
  return sink && sink->capture_content();
}

// Strand: the event has been taken and will be handled (not a reset, a stale timeout or a
// resend).
void session::begin_turn(const parley::event& e) {
  if (turn_) end_turn();  // cannot happen (a turn ends before the next event is taken)
  turn_ = std::make_unique<span>(span::root("invoke_agent " + agent_->name()));
  span& t = *turn_;
  t.set("gen_ai.operation.name", "invoke_agent");
  t.set("gen_ai.agent.name", agent_->name());
  // The tag, never the id: a session id lets whoever holds it join the conversation.
  t.set("gen_ai.conversation.id", session_tag(id_));
  t.set("parley.event.kind", std::string(to_string(e.kind())));
  t.set("parley.event.human", e.human());
  if (e.kind() == event_kind::custom) t.set("parley.event.name", std::string(e.name()));
  if (!e.sender().empty() && !e.human()) t.set("parley.event.sender", redact_url(e.sender()));
  if (state_) t.set("parley.state.start", state_->name());
  if (e.kind() == event_kind::text && trace_content()) t.set("parley.message", e.text());
}

// Strand: ends the turn once nothing of it runs any more (no suspended body, no prediction
// awaited); called wherever a turn may have ended. A user message's turn ends here for double
// texting too, traced or not.
void session::end_turn() {
  if (busy_) return;
  end_user_turn();
  if (!turn_) return;
  span t = std::move(*turn_);
  turn_.reset();
  if (state_) t.set("parley.state.end", state_->name());
  export_span(std::move(t));
}

void session::trace_prediction(const intent_prediction& p, wall_clock::time_point started) {
  span s = turn_->child("intent_recognition " + state_->name());
  s.start = started;
  s.set("parley.state", state_->name());
  s.set("parley.intent.classifier", p.classifier);
  s.set("parley.intent.name", p.intent ? p.intent_name : std::string());
  s.set("parley.intent.matched", p.matched());
  s.set("parley.intent.score", p.score);
  s.set("parley.intent.threshold", agent_->intent_threshold());
  export_span(std::move(s));
}

}  // namespace parley
