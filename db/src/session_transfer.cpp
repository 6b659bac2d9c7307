#include "session_transfer.hpp"

#include <limits>
#include <unordered_map>

#include <SQLiteCpp/Statement.h>

#include <parley/db/sqlite_db_handler.hpp>
#include <parley/db/timestamp.hpp>
#include <parley/errors.hpp>

namespace parley::db::detail {

namespace {
std::string text(const SQLite::Column& c) { return c.isNull() ? std::string() : c.getString(); }

json parse_or_string(const std::string& s) {
  auto j = json::parse(s, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(s) : j;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::int64_t session_row(SQLite::Database& db, const std::string& agent,
                         const std::string& id) {
  SQLite::Statement q(db, "SELECT id FROM session WHERE agent_name = ? AND session_id = ?");
  q.bind(1, agent);
  q.bind(2, id);
  return q.executeStep() ? q.getColumn(0).getInt64() : 0;
}
}  // namespace

json export_rows(SQLite::Database& db, const std::string& agent, const std::string& id,
                 const std::string& path) {
  SQLite::Statement s(db,
                      "SELECT id, session_name, username, platform_name, timestamp, variables, "
                      "current_state, closed_reason, last_activity FROM session "
                      "WHERE agent_name = ? AND session_id = ?");
  s.bind(1, agent);
  s.bind(2, id);
  if (!s.executeStep())
    throw db_error("agent '" + agent + "' has no session '" + id + "' in database '" + path +
                   "'; list the sessions with `parley-inspect " + path + " sessions`");
  const auto row = s.getColumn(0).getInt64();
  json out{{"format", export_format},
           {"version", export_version},
           {"schema_version", schema_version()},
           {"agent_name", agent},
           {"exported_at", format_timestamp(wall_clock::now())}};
  out["session"] = {{"session_id", id},
                    {"session_name", text(s.getColumn(1))},
                    {"username", text(s.getColumn(2))},
                    {"platform_name", text(s.getColumn(3))},
                    {"timestamp", text(s.getColumn(4))},
                    {"variables", parse_or_string(text(s.getColumn(5)))},
                    {"current_state", text(s.getColumn(6))},
                    {"closed_reason", text(s.getColumn(7))},
                    {"last_activity", text(s.getColumn(8))}};

  auto rows = [&](const char* sql, auto&& each) {
    SQLite::Statement q(db, sql);
    q.bind(1, row);
    json arr = json::array();
    while (q.executeStep()) arr.push_back(each(q));
    return arr;
  };
  out["chat"] = rows(
      "SELECT id, type, content, is_user, timestamp, seq FROM chat WHERE session_id = ? "
      "ORDER BY id",
      [](SQLite::Statement& q) {
        json r{{"id", q.getColumn(0).getInt64()}, {"type", text(q.getColumn(1))},
               {"content", text(q.getColumn(2))}, {"is_user", q.getColumn(3).getInt() != 0},
               {"timestamp", text(q.getColumn(4))}};
        if (!q.getColumn(5).isNull()) r["seq"] = q.getColumn(5).getInt64();  // replies only
        return r;
      });
  out["transitions"] = rows(
      "SELECT source_state, dest_state, event, condition, timestamp, id FROM transition "
      "WHERE session_id = ? ORDER BY id",
      [](SQLite::Statement& q) {
        return json{{"id", q.getColumn(5).getInt64()},
                    {"source_state", text(q.getColumn(0))}, {"dest_state", text(q.getColumn(1))},
                    {"event", text(q.getColumn(2))}, {"condition", text(q.getColumn(3))},
                    {"timestamp", text(q.getColumn(4))}};
      });
  out["intent_predictions"] = rows(
      "SELECT id, message, timestamp, intent_classifier, intent, score FROM intent_prediction "
      "WHERE session_id = ? ORDER BY id",
      [&](SQLite::Statement& q) {
        json p{{"id", q.getColumn(0).getInt64()}, {"message", text(q.getColumn(1))},       {"timestamp", text(q.getColumn(2))},
               {"intent_classifier", text(q.getColumn(3))},
               {"intent", q.getColumn(4).isNull() ? json() : json(text(q.getColumn(4)))},
               {"score", q.getColumn(5).getDouble()}, {"parameters", json::array()}};
        SQLite::Statement pq(db,
                             "SELECT name, value, info FROM parameter "
                             "WHERE intent_prediction_id = ? ORDER BY id");
        pq.bind(1, q.getColumn(0).getInt64());
        while (pq.executeStep())
          p["parameters"].push_back({{"name", text(pq.getColumn(0))},
                                     {"value", text(pq.getColumn(1))},
                                     {"info", parse_or_string(text(pq.getColumn(2)))}});
        return p;
      });
  out["events"] = rows(
      "SELECT event, info, timestamp, id FROM event WHERE session_id = ? ORDER BY id",
      [](SQLite::Statement& q) {
        return json{{"id", q.getColumn(3).getInt64()}, {"event", text(q.getColumn(0))}, {"info", text(q.getColumn(1))},
                    {"timestamp", text(q.getColumn(2))}};
      });
  out["reasoning_steps"] = rows(
      "SELECT chat_id, kind, step_kind, step, summary, payload, timestamp, id, run_id, "
      "step_number, prompt_tokens, completion_tokens, latency_ms FROM reasoning_step "
      "WHERE session_id = ? ORDER BY id",
      [](SQLite::Statement& q) {
        auto num = [&](int i) {
          const auto c = q.getColumn(i);
          if (c.isNull()) return json();
          return i == 12 ? json(c.getDouble()) : json(c.getInt64());
        };
        return json{{"id", q.getColumn(7).getInt64()}, {"chat_id", num(0)},
                    {"kind", text(q.getColumn(1))},      {"step_kind", text(q.getColumn(2))},
                    {"step", text(q.getColumn(3))},      {"summary", text(q.getColumn(4))},
                    {"payload", parse_or_string(text(q.getColumn(5)))},
                    {"timestamp", text(q.getColumn(6))}, {"run_id", text(q.getColumn(8))},
                    {"step_number", num(9)},             {"prompt_tokens", num(10)},
                    {"completion_tokens", num(11)},      {"latency_ms", num(12)}};
      });
  out["agent_messages"] = rows(
      "SELECT id, direction, protocol, peer, message_id, causation_id, correlation_id, "
      "sender_agent, sender_session, depth, content, status, timestamp FROM agent_message "
      "WHERE session_id = ? ORDER BY id",
      [](SQLite::Statement& q) {
        return json{{"id", q.getColumn(0).getInt64()},     {"direction", text(q.getColumn(1))},
                    {"protocol", text(q.getColumn(2))},    {"peer", text(q.getColumn(3))},
                    {"message_id", text(q.getColumn(4))},  {"causation_id", text(q.getColumn(5))},
                    {"correlation_id", text(q.getColumn(6))},
                    {"sender_agent", text(q.getColumn(7))},
                    {"sender_session", text(q.getColumn(8))},
                    {"depth", q.getColumn(9).getInt64()},  {"content", text(q.getColumn(10))},
                    {"status", text(q.getColumn(11))},     {"timestamp", text(q.getColumn(12))}};
      });
  out["timers"] = rows("SELECT key, due, event FROM timer WHERE session_id = ? ORDER BY id",
                       [](SQLite::Statement& q) {
                         return json{{"key", text(q.getColumn(0))},
                                     {"due", text(q.getColumn(1))},
                                     {"event", parse_or_string(text(q.getColumn(2)))}};
                       });
  return out;
}

std::string import_rows(SQLite::Database& db, const std::string& agent, const json& data,
                        const std::string& new_id, const std::string& path,
                        std::int64_t& next_id) {
  if (!data.is_object() || data.value("format", std::string()) != export_format ||
      !data.contains("session") || !data["session"].is_object())
    throw db_error(std::string("not a Parley session export (expected an object with \"format\": \"") +
                   export_format + "\" and a \"session\"); export one with export_session");
  if (data.value("version", 0) > export_version)
    throw db_error("the session export has version " + std::to_string(data.value("version", 0)) +
                   ", newer than this build of Parley reads (" +
                   std::to_string(export_version) + "); import it with a newer Parley");
  const json& s = data["session"];
  const std::string id = new_id.empty() ? str(s, "session_id") : new_id;
  if (id.empty()) throw db_error("the session export has no session_id; give the import an id");
  if (session_row(db, agent, id) != 0)
    throw db_error("agent '" + agent + "' already has a session '" + id + "' in database '" +
                   path + "'; delete it first, or import under another id");

  const std::string now = format_timestamp(wall_clock::now());
  auto or_now = [&](const json& j, const char* key) {
    auto v = str(j, key);
    return v.empty() ? now : v;
  };
  SQLite::Statement ins(db,
                        "INSERT INTO session (agent_name, session_id, session_name, username, "
                        "platform_name, timestamp, variables, current_state, closed_reason, "
                        "last_activity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) RETURNING id");
  ins.bind(1, agent);
  ins.bind(2, id);
  ins.bind(3, str(s, "session_name"));
  ins.bind(4, str(s, "username"));
  ins.bind(5, str(s, "platform_name"));
  ins.bind(6, or_now(s, "timestamp"));
  const json vars = s.value("variables", json::object());
  ins.bind(7, vars.is_object() ? vars.dump() : std::string("{}"));
  const auto state = str(s, "current_state");
  if (state.empty())
    ins.bind(8);
  else
    ins.bind(8, state);
  ins.bind(9, or_now(s, "last_activity"));
  ins.executeStep();
  const auto row = ins.getColumn(0).getInt64();

  auto each = [&](const char* key, auto&& fn) {
    if (auto it = data.find(key); it != data.end() && it->is_array())
      for (const auto& r : *it) fn(r);
  };
  // New ids keep the exported rows' order across tables: new = base + (old - lowest old).
  // Rows without an id (hand-written documents) come after them.
  std::int64_t lowest = std::numeric_limits<std::int64_t>::max(), highest = 0;
  for (const char* key : {"chat", "transitions", "intent_predictions", "events", "reasoning_steps",
                          "agent_messages"})
    each(key, [&](const json& r) {
      if (auto it = r.find("id"); it != r.end() && it->is_number_integer()) {
        lowest = std::min(lowest, it->get<std::int64_t>());
        highest = std::max(highest, it->get<std::int64_t>());
      }
    });
  const std::int64_t base = next_id;
  std::int64_t extra = highest >= lowest ? base + (highest - lowest) + 1 : base;
  auto new_row_id = [&](const json& r) {
    if (auto it = r.find("id"); it != r.end() && it->is_number_integer())
      return base + (it->get<std::int64_t>() - lowest) + 1;
    return ++extra;
  };
  std::unordered_map<std::int64_t, std::int64_t> chat_ids;  // exported id -> new id
  {
    SQLite::Statement q(db,
                        "INSERT INTO chat (session_id, type, content, is_user, timestamp, id, "
                        "seq) VALUES (?, ?, ?, ?, ?, ?, ?)");
    each("chat", [&](const json& r) {
      q.reset();
      const auto nid = new_row_id(r);
      q.bind(6, nid);
      // A reply keeps its number: the imported (or forked) session numbers on from it.
      if (const auto it = r.find("seq"); it != r.end() && it->is_number_integer())
        q.bind(7, it->get<std::int64_t>());
      else
        q.bind(7);
      q.bind(1, row);
      q.bind(2, str(r, "type"));
      q.bind(3, str(r, "content"));
      q.bind(4, r.value("is_user", false) ? 1 : 0);
      q.bind(5, or_now(r, "timestamp"));
      q.exec();
      if (r.contains("id") && r["id"].is_number_integer())
        chat_ids[r["id"].get<std::int64_t>()] = nid;
    });
  }
  {
    SQLite::Statement q(db,
                        "INSERT INTO transition (session_id, source_state, dest_state, event, "
                        "condition, timestamp, id) VALUES (?, ?, ?, ?, ?, ?, ?)");
    each("transitions", [&](const json& r) {
      q.reset();
      q.bind(7, new_row_id(r));
      q.bind(1, row);
      q.bind(2, str(r, "source_state"));
      q.bind(3, str(r, "dest_state"));
      q.bind(4, str(r, "event"));
      q.bind(5, str(r, "condition"));
      q.bind(6, or_now(r, "timestamp"));
      q.exec();
    });
  }
  {
    SQLite::Statement q(db,
                        "INSERT INTO intent_prediction (session_id, message, timestamp, "
                        "intent_classifier, intent, score, id) VALUES (?, ?, ?, ?, ?, ?, ?)");
    SQLite::Statement pq(db,
                         "INSERT INTO parameter (intent_prediction_id, name, value, info) "
                         "VALUES (?, ?, ?, ?)");
    each("intent_predictions", [&](const json& r) {
      q.reset();
      const auto pid = new_row_id(r);
      q.bind(7, pid);
      q.bind(1, row);
      q.bind(2, str(r, "message"));
      q.bind(3, or_now(r, "timestamp"));
      q.bind(4, str(r, "intent_classifier"));
      if (r.value("intent", json()).is_null())
        q.bind(5);
      else
        q.bind(5, str(r, "intent"));
      q.bind(6, r.value("score", 0.0));
      q.exec();
      if (auto it = r.find("parameters"); it != r.end() && it->is_array())
        for (const auto& p : *it) {
          pq.reset();
          pq.bind(1, pid);
          pq.bind(2, str(p, "name"));
          pq.bind(3, str(p, "value"));
          pq.bind(4, p.value("info", json()).dump());
          pq.exec();
        }
    });
  }
  {
    SQLite::Statement q(db,
                        "INSERT INTO event (session_id, agent_name, event, info, timestamp, id) "
                        "VALUES (?, ?, ?, ?, ?, ?)");
    each("events", [&](const json& r) {
      q.reset();
      q.bind(6, new_row_id(r));
      q.bind(1, row);
      q.bind(2, agent);
      q.bind(3, str(r, "event"));
      q.bind(4, str(r, "info"));
      q.bind(5, or_now(r, "timestamp"));
      q.exec();
    });
  }
  {
    SQLite::Statement q(db,
                        "INSERT INTO reasoning_step (session_id, chat_id, kind, step_kind, step, "
                        "summary, payload, timestamp, id, run_id, step_number, prompt_tokens, "
                        "completion_tokens, latency_ms) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    each("reasoning_steps", [&](const json& r) {
      q.reset();
      q.bind(9, new_row_id(r));
      q.bind(1, row);
      const json c = r.value("chat_id", json());
      auto it = c.is_number_integer() ? chat_ids.find(c.get<std::int64_t>()) : chat_ids.end();
      if (it == chat_ids.end())
        q.bind(2);
      else
        q.bind(2, it->second);
      q.bind(3, str(r, "kind"));
      q.bind(4, str(r, "step_kind"));
      q.bind(5, str(r, "step"));
      q.bind(6, str(r, "summary"));
      q.bind(7, r.value("payload", json::object()).dump());
      q.bind(8, or_now(r, "timestamp"));
      q.bind(10, str(r, "run_id"));
      int col = 11;
      for (const char* key : {"step_number", "prompt_tokens", "completion_tokens", "latency_ms"}) {
        const json v = r.value(key, json());
        if (v.is_number_integer())
          q.bind(col, v.get<std::int64_t>());
        else if (v.is_number())
          q.bind(col, v.get<double>());
        else
          q.bind(col);
        ++col;
      }
      q.exec();
    });
  }
  {
    SQLite::Statement q(db,
                        "INSERT INTO agent_message (session_id, direction, protocol, peer, "
                        "message_id, causation_id, correlation_id, sender_agent, sender_session, "
                        "depth, content, status, timestamp, id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    each("agent_messages", [&](const json& r) {
      q.reset();
      q.bind(14, new_row_id(r));
      q.bind(1, row);
      int i = 2;
      for (const char* key : {"direction", "protocol", "peer", "message_id", "causation_id",
                              "correlation_id", "sender_agent", "sender_session"})
        q.bind(i++, str(r, key));
      const json d = r.value("depth", json(0));
      q.bind(10, d.is_number_integer() ? d.get<std::int64_t>() : std::int64_t{0});
      q.bind(11, str(r, "content"));
      q.bind(12, str(r, "status"));
      q.bind(13, or_now(r, "timestamp"));
      q.exec();
    });
  }
  {
    SQLite::Statement q(db, "INSERT INTO timer (session_id, key, due, event) VALUES (?, ?, ?, ?)");
    each("timers", [&](const json& r) {
      q.reset();
      q.bind(1, row);
      q.bind(2, str(r, "key"));
      q.bind(3, or_now(r, "due"));
      q.bind(4, r.value("event", json::object()).dump());
      q.exec();
    });
  }
  next_id = extra;
  return id;
}

std::vector<stored_session> list_rows(SQLite::Database& db, const std::string& agent,
                                      const std::string& username, std::size_t limit,
                                      std::size_t offset) {
  SQLite::Statement q(db,
                      "SELECT session_id, username, session_name, platform_name, current_state, "
                      "closed_reason, timestamp, last_activity FROM session "
                      "WHERE agent_name = ?1 AND (?2 = '' OR username = ?2) "
                      "ORDER BY last_activity DESC, id DESC LIMIT ?3 OFFSET ?4");
  q.bind(1, agent);
  q.bind(2, username);
  q.bind(3, static_cast<std::int64_t>(limit));
  q.bind(4, static_cast<std::int64_t>(offset));
  std::vector<stored_session> out;
  while (q.executeStep()) {
    stored_session s;
    s.session_id = text(q.getColumn(0));
    s.username = text(q.getColumn(1));
    s.session_name = text(q.getColumn(2));
    s.platform = text(q.getColumn(3));
    s.state = text(q.getColumn(4));
    s.closed_reason = text(q.getColumn(5));
    s.created = parse_timestamp(text(q.getColumn(6))).value_or(wall_clock::time_point{});
    s.last_activity = parse_timestamp(text(q.getColumn(7))).value_or(wall_clock::time_point{});
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace parley::db::detail
