#include <parley/state.hpp>

#include <algorithm>

#include <parley/agent.hpp>
#include <parley/intent.hpp>

namespace parley {

state::state(parley::agent& owner, std::string name, bool initial)
    : agent_(&owner), name_(std::move(name)), initial_(initial) {}

state::~state() = default;

state& state::set_body(parley::body b) {
  body_ = std::move(b);
  return *this;
}
state& state::set_fallback_body(parley::body b) {
  fallback_ = std::move(b);
  return *this;
}
state& state::set_exit_action(std::function<void(session&)> fn) {
  exit_ = std::move(fn);
  return *this;
}

transition_builder state::when_event() {
  transition_builder b(*this);
  b.t_.trigger_ = trigger::any_event;
  return b;
}
transition_builder state::when_event(event_kind kind) {
  transition_builder b(*this);
  b.t_.trigger_ = trigger::event_kind;
  b.t_.kind_ = kind;
  return b;
}
transition_builder state::when_event(std::string name) {
  transition_builder b(*this);
  b.t_.trigger_ = trigger::named_event;
  b.t_.event_name_ = std::move(name);
  return b;
}
transition_builder state::when_agent_message(std::string sender) {
  transition_builder b(*this);
  b.t_.trigger_ = trigger::agent_message;
  b.t_.event_name_ = std::move(sender);
  return b;
}
transition_builder state::when_intent_matched(const intent& i) {
  if (&i.owner() != agent_)
    throw definition_error("state '" + name_ + "': intent '" + i.name() +
                           "' belongs to agent '" + i.owner().name() + "', not '" +
                           agent_->name() + "'; make the intent with this agent's new_intent()");
  if (std::find(intents_.begin(), intents_.end(), &i) != intents_.end())
    throw definition_error("state '" + name_ + "' already has a transition for intent '" +
                           i.name() + "'; add conditions to that one instead of a second");
  transition_builder b(*this);
  b.t_.trigger_ = trigger::intent;
  b.t_.intent_ = &i;
  return b;
}
transition_builder state::when_no_intent_matched() {
  transition_builder b(*this);
  b.t_.trigger_ = trigger::no_intent;
  return b;
}
transition_builder state::when_condition(condition_fn fn, std::string description) {
  transition_builder b(*this);
  (void)b.when_condition(std::move(fn), std::move(description));
  return b;
}
transition_builder state::when_variable_matches_operation(std::string var, compare op,
                                                          json value) {
  transition_builder b(*this);
  (void)b.when_variable_matches_operation(std::move(var), op, std::move(value));
  return b;
}
transition_builder state::when_file_received(std::vector<std::string> types) {
  transition_builder b(*this);
  b.t_.trigger_ = trigger::file;
  b.t_.file_types_ = std::move(types);
  return b;
}
transition_builder state::after(clock::duration d) {
  if (d <= clock::duration::zero())
    throw definition_error("state '" + name_ + "': after() needs a positive duration");
  transition_builder b(*this);
  b.t_.trigger_ = trigger::timeout;
  b.t_.timeout_ = d;
  return b;
}
state& state::go_to(state& dest) { return transition_builder(*this).go_to(dest); }

void state::set_model(std::unique_ptr<intent_model> m) { model_ = std::move(m); }

void state::add(transition t) {
  if (&t.dest().owner() != agent_)
    throw definition_error("state '" + name_ + "' of agent '" + agent_->name() +
                           "' cannot go to state '" + t.dest().name() + "' of agent '" +
                           t.dest().owner().name() +
                           "': transitions stay within one agent; to talk to another agent, "
                           "send it a message");
  if (t.is_auto())
    for (const auto& other : transitions_)
      if (other.is_auto())
        throw definition_error("state '" + name_ + "' already has an auto transition (to '" +
                               other.dest().name() + "'); a second one (to '" +
                               t.dest().name() +
                               "') could never be taken: give one of them a condition");
  if (t.trigger_ == trigger::intent) intents_.push_back(t.intent_);
  if (t.trigger_ == trigger::no_intent) wants_prediction_ = true;
  if (t.trigger_ == trigger::timeout &&
      std::find(timeouts_.begin(), timeouts_.end(), t.timeout_) == timeouts_.end()) {
    timeouts_.push_back(t.timeout_);
    std::sort(timeouts_.begin(), timeouts_.end());
  }
  if (t.is_eventless()) has_eventless_ = true;
  transitions_.push_back(std::move(t));
}

}  // namespace parley
