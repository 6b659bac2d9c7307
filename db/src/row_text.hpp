#pragma once
// How both handlers turn what they record into column text (so SQLite and PostgreSQL rows
// read the same).
#include <optional>
#include <string>
#include <string_view>

#include <parley/db/timestamp.hpp>
#include <parley/db_handler.hpp>
#include <parley/log.hpp>
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

// A payload field that is a number, else null (the run columns of a reasoning step).
inline std::optional<double> number_field(const json& payload, const char* key) {
  if (!payload.is_object()) return std::nullopt;
  auto it = payload.find(key);
  if (it == payload.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// A stored payload read back: its JSON, or the text itself when it is not JSON.
inline json payload_from_text(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(std::string(text)) : j;
}

// A timer row read back, or null (logged) when its due time or event cannot be read.
inline std::optional<pending_timer> timer_from_row(std::string_view session_id, std::string key,
                                                   std::string_view due, std::string_view event) {
  pending_timer p;
  p.key = std::move(key);
  const auto at = parse_timestamp(due);
  p.event = json::parse(event, nullptr, false);
  if (!at || p.event.is_discarded()) {
    PARLEY_LOG(warn, "db: session " << session_tag(session_id) << ": timer '" << p.key
                                    << "' has an unreadable row; skipped");
    return std::nullopt;
  }
  p.due = *at;
  return p;
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
