// A session's rows for the inspectors (parley/db/inspect.hpp): every table's rows after an id,
// merged in id order.
#include <parley/db/inspect.hpp>

#include <algorithm>
#include <optional>
#include <vector>

#include "inspect_detail.hpp"

namespace parley::db {

namespace {

struct found {
  std::int64_t id;
  json row;
};

struct context {
  reader& db;
  std::int64_t session_row;
};

// One table's part of a session: its columns after "id, timestamp", and how a row becomes R.
struct table {
  const char* name;
  const char* columns;
  json (*make)(const read_row& q, context& cx);
};

json chat_row(const read_row& q, context&) {
  return {{"type", "chat"},
          {"is_user", q.integer(2) != 0},
          {"message_type", q.text(3)},
          {"content", q.text(4)}};
}

json intent_row(const read_row& q, context& cx) {
  json r = {{"type", "intent"},
            {"message", q.text(2)},
            {"classifier", q.text(3)},
            {"intent", q.nullable_text(4)},
            {"score", q.real(5)},
            {"parameters", json::array()}};
  for (const auto& p : cx.db.query("SELECT name, value, info FROM parameter WHERE intent_prediction_id = $1 "
                                   "ORDER BY id",
                                   {q.integer(0)}))
    r["parameters"].push_back({{"name", p.text(0)}, {"value", p.nullable_text(1)}, {"info", p.nullable_text(2)}});
  return r;
}

json transition_row(const read_row& q, context&) {
  return {{"type", "transition"},
          {"source", q.text(2)},
          {"dest", q.text(3)},
          {"event", q.text(4)},
          {"condition", q.text(5)}};
}

json event_row(const read_row& q, context&) {
  return {{"type", "event"}, {"event", q.text(2)}, {"info", q.text(3)}};
}

json reasoning_row(const read_row& q, context&) {
  return {{"type", "reasoning"},
          {"run_id", q.text(2)},
          {"step_number", q.nullable_int(3)},
          {"kind", q.text(4)},
          {"step_kind", q.text(5)},
          {"step", q.text(6)},
          {"summary", q.text(7)},
          {"payload", q.text(8)},  // raw JSON text: the page parses what it shows
          {"chat_id", q.nullable_int(9)},
          {"prompt_tokens", q.nullable_int(10)},
          {"completion_tokens", q.nullable_int(11)},
          {"latency_ms", q.is_null(12) ? json() : json(q.real(12))}};
}

// The other side of an agent message, when its records are in this database: the same
// message recorded by another session (sent here, received there, or the other way), else the
// message it answers or one that answers it.
json other_session(context& cx, const std::string& message_id, const std::string& causation_id) {
  auto same = cx.db.query("SELECT session_id FROM agent_message WHERE message_id = $1 "
                          "AND session_id IS NOT NULL AND session_id <> $2 LIMIT 1",
                          {message_id, cx.session_row});
  if (!same.empty()) return same.front().integer(0);
  auto linked = cx.db.query("SELECT session_id FROM agent_message WHERE session_id IS NOT NULL "
                            "AND session_id <> $3 AND (($1 <> '' AND message_id = $1) OR "
                            "($2 <> '' AND causation_id = $2)) LIMIT 1",
                            {causation_id, message_id, cx.session_row});
  if (!linked.empty()) return linked.front().integer(0);
  return nullptr;
}

json agent_message_row(const read_row& q, context& cx) {
  const auto& message_id = q.text(5);
  const auto& causation_id = q.text(6);
  return {{"type", "agent_message"},
          {"direction", q.text(2)},
          {"protocol", q.text(3)},
          {"peer", q.text(4)},
          {"message_id", message_id},
          {"causation_id", causation_id},
          {"correlation_id", q.text(7)},
          {"sender_agent", q.text(8)},
          {"sender_session", q.text(9)},  // a tag (agent_link.hpp), never an id
          {"depth", q.integer(10)},
          {"content", q.text(11)},
          {"status", q.text(12)},
          {"other_session", other_session(cx, message_id, causation_id)}};
}

const table tables[] = {
    {"chat", "is_user, type, content", chat_row},
    {"intent_prediction", "message, intent_classifier, intent, score", intent_row},
    {"transition", "source_state, dest_state, event, condition", transition_row},
    {"event", "event, info", event_row},
    {"reasoning_step",
     "run_id, step_number, kind, step_kind, step, summary, payload, chat_id, prompt_tokens, "
     "completion_tokens, latency_ms",
     reasoning_row},
    {"agent_message",
     "direction, protocol, peer, message_id, causation_id, correlation_id, sender_agent, "
     "sender_session, depth, content, status",
     agent_message_row},
};

}  // namespace

json session_rows(reader& db, std::int64_t row, std::int64_t after, std::size_t limit) {
  if (limit < 1 || limit > max_session_rows)
    throw inspect_error("limit must be between 1 and " + std::to_string(max_session_rows) +
                        ", got " + std::to_string(limit));
  // One snapshot: the summary and every table's rows agree.
  snapshot snap(db);
  auto summary = session_summary(db, row);
  if (!summary)
    throw no_such_session("no session with row " + std::to_string(row) +
                          "; list the sessions to find its row");
  // Each table: its first limit + 1 rows after `after` (its (session_id, id) index seeks
  // there); merged, the first `limit` of them are the session's next rows, and one more says
  // there are more.
  std::vector<found> all;
  context cx{db, row};
  for (const auto& t : tables) {
    for (const auto& q : db.query(std::string("SELECT id, timestamp, ") + t.columns + " FROM " + t.name +
                                      " WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                                  {row, after, static_cast<std::int64_t>(limit) + 1})) {
      const auto id = q.integer(0);
      json r = t.make(q, cx);
      r["id"] = id;
      r["timestamp"] = q.text(1);
      all.push_back({id, std::move(r)});
    }
  }
  std::sort(all.begin(), all.end(), [](const found& a, const found& b) { return a.id < b.id; });
  const bool more = all.size() > limit;
  if (more) all.resize(limit);
  json rows = json::array();
  std::int64_t last = after;
  for (auto& f : all) {
    last = f.id;
    rows.push_back(std::move(f.row));
  }
  return {{"session", std::move(*summary)}, {"rows", std::move(rows)}, {"last_id", last},
          {"more", more}};
}

std::int64_t last_row_id(reader& db) {
  std::int64_t last = 0;
  for (const auto& t : tables) {
    auto r = db.query(std::string("SELECT max(id) FROM ") + t.name);
    if (!r.empty() && !r.front().is_null(0)) last = std::max(last, r.front().integer(0));
  }
  return last;
}

}  // namespace parley::db
