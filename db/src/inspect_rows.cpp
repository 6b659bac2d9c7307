// A session's rows for the inspectors (parley/db/inspect.hpp): every table's rows after an id,
// merged in id order.
#include <parley/db/inspect.hpp>

#include <algorithm>
#include <optional>
#include <vector>

#include "inspect_detail.hpp"

namespace parley::db {

namespace {

using detail::col;
using detail::nullable_int;

struct found {
  std::int64_t id;
  json row;
};

// What rows need besides their own columns, prepared once per call: a 10,000-row page would
// spend most of its time preparing the same statements again.
struct context {
  SQLite::Database& db;
  std::int64_t session_row;
  std::optional<SQLite::Statement> parameters, same_message, linked_message;

  SQLite::Statement& get(std::optional<SQLite::Statement>& s, const char* sql) {
    if (!s)
      s.emplace(db, sql);
    else
      s->reset();
    return *s;
  }
};

// One table's part of a session: its columns after "id, timestamp", and how a row becomes R.
struct table {
  const char* name;
  const char* columns;
  json (*make)(SQLite::Statement& q, context& cx);
};

json chat_row(SQLite::Statement& q, context&) {
  return {{"type", "chat"},
          {"is_user", q.getColumn(2).getInt() != 0},
          {"message_type", col(q.getColumn(3))},
          {"content", col(q.getColumn(4))}};
}

json intent_row(SQLite::Statement& q, context& cx) {
  json r = {{"type", "intent"},
            {"message", col(q.getColumn(2))},
            {"classifier", col(q.getColumn(3))},
            {"intent", q.getColumn(4).isNull() ? json() : json(q.getColumn(4).getString())},
            {"score", q.getColumn(5).getDouble()},
            {"parameters", json::array()}};
  auto& p = cx.get(cx.parameters,
                   "SELECT name, value, info FROM parameter WHERE intent_prediction_id = ?1 ORDER BY id");
  p.bind(1, q.getColumn(0).getInt64());
  while (p.executeStep())
    r["parameters"].push_back({{"name", col(p.getColumn(0))},
                               {"value", p.getColumn(1).isNull() ? json() : json(col(p.getColumn(1)))},
                               {"info", p.getColumn(2).isNull() ? json() : json(col(p.getColumn(2)))}});
  return r;
}

json transition_row(SQLite::Statement& q, context&) {
  return {{"type", "transition"},
          {"source", col(q.getColumn(2))},
          {"dest", col(q.getColumn(3))},
          {"event", col(q.getColumn(4))},
          {"condition", col(q.getColumn(5))}};
}

json event_row(SQLite::Statement& q, context&) {
  return {{"type", "event"}, {"event", col(q.getColumn(2))}, {"info", col(q.getColumn(3))}};
}

json reasoning_row(SQLite::Statement& q, context&) {
  const auto latency = q.getColumn(12);
  return {{"type", "reasoning"},
          {"run_id", col(q.getColumn(2))},
          {"step_number", nullable_int(q.getColumn(3))},
          {"kind", col(q.getColumn(4))},
          {"step_kind", col(q.getColumn(5))},
          {"step", col(q.getColumn(6))},
          {"summary", col(q.getColumn(7))},
          {"payload", col(q.getColumn(8))},  // raw JSON text: the page parses what it shows
          {"chat_id", nullable_int(q.getColumn(9))},
          {"prompt_tokens", nullable_int(q.getColumn(10))},
          {"completion_tokens", nullable_int(q.getColumn(11))},
          {"latency_ms", latency.isNull() ? json() : json(latency.getDouble())}};
}

// The other side of an agent message, when its records are in this file: the same message
// recorded by another session (sent here, received there, or the other way), else the message
// it answers or one that answers it.
json other_session(context& cx, const std::string& message_id, const std::string& causation_id) {
  const auto session_row = cx.session_row;
  auto& same = cx.get(cx.same_message, "SELECT session_id FROM agent_message WHERE message_id = ?1 "
                                       "AND session_id IS NOT NULL AND session_id <> ?2 LIMIT 1");
  same.bind(1, message_id);
  same.bind(2, session_row);
  if (same.executeStep()) return same.getColumn(0).getInt64();
  auto& linked = cx.get(cx.linked_message,
                        "SELECT session_id FROM agent_message WHERE session_id IS NOT NULL "
                        "AND session_id <> ?3 AND ((?1 <> '' AND message_id = ?1) OR "
                        "(?2 <> '' AND causation_id = ?2)) LIMIT 1");
  linked.bind(1, causation_id);
  linked.bind(2, message_id);
  linked.bind(3, session_row);
  if (linked.executeStep()) return linked.getColumn(0).getInt64();
  return nullptr;
}

json agent_message_row(SQLite::Statement& q, context& cx) {
  const auto message_id = col(q.getColumn(5)), causation_id = col(q.getColumn(6));
  return {{"type", "agent_message"},
          {"direction", col(q.getColumn(2))},
          {"protocol", col(q.getColumn(3))},
          {"peer", col(q.getColumn(4))},
          {"message_id", message_id},
          {"causation_id", causation_id},
          {"correlation_id", col(q.getColumn(7))},
          {"sender_agent", col(q.getColumn(8))},
          {"sender_session", col(q.getColumn(9))},  // a tag (agent_link.hpp), never an id
          {"depth", q.getColumn(10).getInt64()},
          {"content", col(q.getColumn(11))},
          {"status", col(q.getColumn(12))},
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

json session_rows(SQLite::Database& db, std::int64_t row, std::int64_t after, std::size_t limit) {
  if (limit < 1 || limit > max_session_rows)
    throw inspect_error("limit must be between 1 and " + std::to_string(max_session_rows) +
                        ", got " + std::to_string(limit));
  // One snapshot: the summary and every table's rows agree.
  detail::read_transaction snapshot(db);
  auto summary = session_summary(db, row);
  if (!summary)
    throw no_such_session("no session with row " + std::to_string(row) +
                          "; list the sessions to find its row");
  // Each table: its first limit + 1 rows after `after` (its (session_id, id) index seeks
  // there); merged, the first `limit` of them are the session's next rows, and one more says
  // there are more.
  std::vector<found> all;
  context cx{db, row, {}, {}, {}};
  for (const auto& t : tables) {
    SQLite::Statement q(db, std::string("SELECT id, timestamp, ") + t.columns + " FROM " + t.name +
                                " WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
    q.bind(1, row);
    q.bind(2, after);
    q.bind(3, static_cast<std::int64_t>(limit) + 1);
    while (q.executeStep()) {
      const auto id = q.getColumn(0).getInt64();
      json r = t.make(q, cx);
      r["id"] = id;
      r["timestamp"] = col(q.getColumn(1));
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

std::int64_t last_row_id(SQLite::Database& db) {
  std::int64_t last = 0;
  for (const auto& t : tables) {
    SQLite::Statement q(db, std::string("SELECT max(id) FROM ") + t.name);
    if (q.executeStep() && !q.getColumn(0).isNull()) last = std::max(last, q.getColumn(0).getInt64());
  }
  return last;
}

}  // namespace parley::db
