#pragma once
/// Transitions and the DSL that builds them:
///   s.when_intent_matched(hello).go_to(ask);
///   s.when_event("paid").when_condition(is_vip).go_to(thanks);
///   s.after(30s).go_to(idle);
///   s.go_to(next);  // auto transition
/// A state's transitions are evaluated in definition order; the first that holds moves.
#include <functional>
#include <string>
#include <vector>

#include <parley/event.hpp>

namespace parley {

class state;
class session;
class intent;

/// A condition on the session. One that throws counts as false (and is logged).
using condition_fn = std::function<bool(session&)>;

/// Comparison for `when_variable_matches_operation`.
enum class compare { eq, ne, lt, le, gt, ge, contains };
std::string_view to_string(compare op);

/// What a transition waits for.
enum class trigger : std::uint8_t {
  none,         ///< eventless: conditions only, or auto when there are none
  any_event,    ///< when_event(): any event
  event_kind,   ///< when_event(event_kind)
  named_event,  ///< when_event("name"): a custom event of that name
  intent,       ///< when_intent_matched(i)
  no_intent,    ///< when_no_intent_matched()
  file,         ///< when_file_received(types)
  timeout,      ///< after(d)
  agent_message,  ///< when_agent_message(): a text, JSON or file event from another agent
};

struct condition {
  condition_fn fn;
  std::string description;
};

class transition {
 public:
  state& source() const { return *source_; }
  state& dest() const { return *dest_; }
  trigger trigger_kind() const { return trigger_; }
  bool is_eventless() const { return trigger_ == trigger::none; }
  bool is_auto() const { return trigger_ == trigger::none && conditions_.empty(); }
  const parley::intent* intent() const { return intent_; }
  clock::duration timeout() const { return timeout_; }
  const std::vector<condition>& conditions() const { return conditions_; }

  /// True when `e` is what this transition waits for (ignoring conditions and intents,
  /// which need the session). Eventless transitions match no event.
  bool matches_event(const event& e) const;
  /// "intent hello", "event order_paid", "after 30000ms", "auto", ...
  std::string describe_event() const;
  /// The AND-ed condition descriptions, or "".
  std::string describe_condition() const;
  /// What kind of transition it is, as diagrams and traces name it: "intent", "event",
  /// "file", "timeout", "agent", "condition" (eventless, with conditions) or "auto".
  std::string_view kind_name() const;

 private:
  friend class transition_builder;
  friend class state;
  state* source_ = nullptr;
  state* dest_ = nullptr;
  trigger trigger_ = trigger::none;
  parley::event_kind kind_ = parley::event_kind::text;
  std::string event_name_;
  const parley::intent* intent_ = nullptr;
  std::vector<std::string> file_types_;
  clock::duration timeout_{};
  std::vector<condition> conditions_;
};

/// Accumulates a trigger and conditions; `go_to` adds the transition to the state. Nothing is
/// defined until `go_to`: a builder left unfinished (`s.when_intent_matched(hi);`) is a
/// compile-time warning ([[nodiscard]], -Wunused-result; an error with -Werror).
/// @throws definition_error from go_to (auto-transition conflicts, foreign states).
class [[nodiscard("a transition is defined only by .go_to(state)")]] transition_builder {
 public:
  explicit transition_builder(state& source) : source_(&source) { t_.source_ = &source; }

  /// AND-ed with the trigger and other conditions.
  [[nodiscard("a transition is defined only by .go_to(state)")]] transition_builder&
  when_condition(condition_fn fn, std::string description = "condition");
  [[nodiscard("a transition is defined only by .go_to(state)")]] transition_builder&
  with_condition(condition_fn fn, std::string description = "condition") {
    return when_condition(std::move(fn), std::move(description));
  }
  [[nodiscard("a transition is defined only by .go_to(state)")]] transition_builder&
  when_variable_matches_operation(std::string var, compare op, json value);
  /// Adds the transition; returns the source state so more can be chained.
  state& go_to(state& dest);

 private:
  friend class state;
  state* source_;
  transition t_;
};

}  // namespace parley
