#include <parley/transition.hpp>

#include <parley/intent.hpp>
#include <parley/session.hpp>
#include <parley/state.hpp>

namespace parley {

std::string_view to_string(compare op) {
  switch (op) {
    case compare::eq: return "==";
    case compare::ne: return "!=";
    case compare::lt: return "<";
    case compare::le: return "<=";
    case compare::gt: return ">";
    case compare::ge: return ">=";
    case compare::contains: return "contains";
  }
  return "?";
}

bool transition::matches_event(const event& e) const {
  switch (trigger_) {
    case trigger::none: return false;
    case trigger::any_event: return e.kind() != event_kind::timeout;
    case trigger::event_kind: return e.kind() == kind_;
    case trigger::named_event: return e.kind() == event_kind::custom && e.name() == event_name_;
    case trigger::intent:
    case trigger::no_intent:
      return e.kind() == event_kind::text || (e.kind() == event_kind::json && !e.text().empty());
    case trigger::file: {
      if (e.kind() != event_kind::file || !e.file()) return false;
      if (file_types_.empty()) return true;
      const auto& type = e.file()->type;
      for (const auto& t : file_types_)
        if (type == t || (!t.empty() && t.back() == '/' && type.starts_with(t))) return true;
      return false;
    }
    case trigger::timeout: return e.kind() == event_kind::timeout && e.timeout_after() == timeout_;
    case trigger::agent_message:
      return e.is_agent_message() && (event_name_.empty() || e.sender() == event_name_);
  }
  return false;
}

std::string transition::describe_event() const {
  switch (trigger_) {
    case trigger::none: return conditions_.empty() ? "auto" : "condition";
    case trigger::any_event: return "any event";
    case trigger::event_kind: return "event kind " + std::string(to_string(kind_));
    case trigger::named_event: return "event " + event_name_;
    case trigger::intent: return "intent " + intent_->name();
    case trigger::no_intent: return "no intent matched";
    case trigger::file: {
      std::string s = "file";
      for (const auto& t : file_types_) s += " " + t;
      return s;
    }
    case trigger::timeout:
      return "after " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count()) +
             "ms";
    case trigger::agent_message:
      return event_name_.empty() ? "agent message" : "agent message from " + redact_url(event_name_);
  }
  return "?";
}

std::string transition::describe_condition() const {
  std::string s;
  for (const auto& c : conditions_) {
    if (!s.empty()) s += " and ";
    s += c.description;
  }
  return s;
}

transition_builder& transition_builder::when_condition(condition_fn fn, std::string description) {
  t_.conditions_.push_back({std::move(fn), std::move(description)});
  return *this;
}

namespace {
bool compare_json(const json& a, compare op, const json& b) {
  switch (op) {
    case compare::eq: return a == b;
    case compare::ne: return a != b;
    case compare::lt: return a < b;
    case compare::le: return a <= b;
    case compare::gt: return a > b;
    case compare::ge: return a >= b;
    case compare::contains:
      if (a.is_string() && b.is_string())
        return a.get_ref<const std::string&>().find(b.get_ref<const std::string&>()) !=
               std::string::npos;
      if (a.is_array())
        for (const auto& x : a)
          if (x == b) return true;
      if (a.is_object() && b.is_string()) return a.contains(b.get<std::string>());
      return false;
  }
  return false;
}
}  // namespace

transition_builder& transition_builder::when_variable_matches_operation(std::string var, compare op,
                                                                        json value) {
  std::string description = var + " " + std::string(to_string(op)) + " " + value.dump();
  return when_condition(
      [var = std::move(var), op, value = std::move(value)](session& s) {
        const json& dict = s.dictionary();
        if (!dict.is_object()) return false;
        auto it = dict.find(var);
        // A missing variable matches nothing (not even "!=").
        return it != dict.end() && compare_json(*it, op, value);
      },
      std::move(description));
}

state& transition_builder::go_to(state& dest) {
  t_.dest_ = &dest;
  source_->add(std::move(t_));
  return *source_;
}

std::string_view transition::kind_name() const {
  switch (trigger_) {
    case trigger::none: return is_auto() ? "auto" : "condition";
    case trigger::intent:
    case trigger::no_intent: return "intent";
    case trigger::file: return "file";
    case trigger::timeout: return "timeout";
    case trigger::any_event:
    case trigger::event_kind:
    case trigger::named_event: return "event";
    case trigger::agent_message: return "agent";
  }
  return "event";
}

}  // namespace parley
