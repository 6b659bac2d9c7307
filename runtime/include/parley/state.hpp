#pragma once
/// A state: a name, a body run on entry, an optional fallback body (for human messages that no
/// transition matches), an optional exit action, and its transitions in definition order.
/// States are made by `agent::new_state`, live as long as the agent, and are defined before
/// `run()`; after that they are read-only (safe from every thread).
#include <deque>
#include <string>
#include <vector>

#include <parley/body.hpp>
#include <parley/errors.hpp>
#include <parley/transition.hpp>

namespace parley {

class agent;
class intent_model;

class state {
 public:
  state(parley::agent& owner, std::string name, bool initial);
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state();

  const std::string& name() const { return name_; }
  bool initial() const { return initial_; }
  parley::agent& owner() const { return *agent_; }

  state& set_body(parley::body b);
  state& set_fallback_body(parley::body b);
  /// Runs (synchronously, on the session's strand) when the session leaves this state.
  state& set_exit_action(std::function<void(session&)> fn);
  const parley::body& body() const { return body_; }
  const parley::body& fallback_body() const { return fallback_; }
  const std::function<void(session&)>& exit_action() const { return exit_; }

  // ---- the transition DSL -------------------------------------------------------------
  /// Any event (no argument), events of one kind, or custom events with this name.
  transition_builder when_event();
  transition_builder when_event(event_kind kind);
  transition_builder when_event(std::string name);
  /// A message from another agent (a non-human text, JSON or file event), from any agent or,
  /// with `sender`, only from that one (its URL as passed to send_to_agent, or its name).
  transition_builder when_agent_message(std::string sender = {});
  /// An `agent_error_event`: a message to another agent failed or was refused. Its payload
  /// holds "url", "reason" and "message_id".
  transition_builder when_agent_error() { return when_event(std::string(agent_error_event)); }
  /// A text (or JSON-with-message) event whose predicted intent is `i` (above threshold).
  /// @throws definition_error if `i` belongs to another agent or is already used here.
  transition_builder when_intent_matched(const intent& i);
  /// A text event for which no competing intent reached the threshold.
  transition_builder when_no_intent_matched();
  transition_builder when_condition(condition_fn fn, std::string description = "condition");
  transition_builder when_variable_matches_operation(std::string var, compare op, json value);
  /// A file event; `types` are MIME types ("image/png") or prefixes ("image/"); empty = any.
  transition_builder when_file_received(std::vector<std::string> types = {});
  /// Fires `d` after entering this state, unless the session left it before.
  transition_builder after(clock::duration d);
  /// Auto transition: taken right after the body runs. At most one per state.
  state& go_to(state& dest);

  const std::deque<transition>& transitions() const { return transitions_; }
  /// Intents named by this state's transitions, in definition order (these compete).
  const std::vector<const intent*>& intents() const { return intents_; }
  bool has_intent_transitions() const { return !intents_.empty() || wants_prediction_; }
  /// Distinct `after(d)` durations, ascending.
  const std::vector<clock::duration>& timeouts() const { return timeouts_; }
  bool has_eventless_transitions() const { return has_eventless_; }

  /// The trained model for this state (set at run(); null when it has no intents).
  const intent_model* model() const { return model_.get(); }
  void set_model(std::unique_ptr<intent_model> m);

 private:
  friend class transition_builder;
  void add(transition t);

  parley::agent* agent_;
  std::string name_;
  bool initial_;
  bool wants_prediction_ = false;
  bool has_eventless_ = false;
  parley::body body_;
  parley::body fallback_;
  std::function<void(session&)> exit_;
  std::deque<transition> transitions_;  // deque: stable addresses as transitions are added
  std::vector<const intent*> intents_;
  std::vector<clock::duration> timeouts_;
  std::unique_ptr<intent_model> model_;
};

}  // namespace parley
