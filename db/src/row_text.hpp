#pragma once
// How both handlers turn what they record into column text (so SQLite and PostgreSQL rows
// read the same).
#include <string>

#include <parley/net.hpp>
#include <parley/reply.hpp>
#include <parley/transition.hpp>

namespace parley::db::detail {

// JSON as stored. Never throws: a string that is not UTF-8 (a dictionary value made from raw
// bytes) is stored with U+FFFD in place of the bad bytes, instead of failing the recording
// call on the session's strand.
inline std::string to_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A payload field as column text ("" when absent or null; JSON text when not a string).
inline std::string field(const json& payload, const char* key) {
  if (!payload.is_object()) return {};
  auto it = payload.find(key);
  if (it == payload.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : to_text(*it);
}

// What made the transition fire, for people reading the log: "intent hello",
// "after 30000ms", "auto", or the trigger and its conditions.
inline std::string describe(const transition& t) {
  auto cond = t.describe_condition();
  if (t.is_eventless()) return cond.empty() ? std::string("auto") : cond;
  return cond.empty() ? t.describe_event() : t.describe_event() + " and " + cond;
}

// A bot message that ends its turn (its reasoning steps point at it); steps and task lists do not.
inline bool closes_turn(reply_kind k) {
  return k != reply_kind::reasoning_step && k != reply_kind::task_list_update;
}

}  // namespace parley::db::detail
