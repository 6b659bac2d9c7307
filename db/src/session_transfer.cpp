#include "session_transfer.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

#include <parley/db/timestamp.hpp>
#include <parley/errors.hpp>

namespace parley::db::detail {

namespace {

json parse_or_string(const std::string& s) {
  auto j = json::parse(s, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(s) : j;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// A nullable number cell as JSON (integer, or real for latency_ms).
json number(const read_row& r, std::size_t i, bool real = false) {
  if (r.is_null(i)) return json();
  return real ? json(r.real(i)) : json(r.integer(i));
}

}  // namespace

json export_rows(reader& r, const std::string& agent, const std::string& id, int schema_version) {
  const auto found = r.query(
      "SELECT id, session_name, username, platform_name, timestamp, variables, current_state, "
      "closed_reason, last_activity FROM session WHERE agent_name = $1 AND session_id = $2",
      {agent, id});
  if (found.empty())
    throw db_error("agent '" + agent + "' has no session '" + id + "' in database '" + r.where() +
                   "'; list the sessions with `parley-inspect " + r.where() + " sessions`");
  const auto& s = found.front();
  const std::int64_t row = s.integer(0);
  json out{{"format", export_format},
           {"version", export_version},
           {"schema_version", schema_version},
           {"agent_name", agent},
           {"exported_at", format_timestamp(wall_clock::now())}};
  out["session"] = {{"session_id", id},
                    {"session_name", s.text(1)},
                    {"username", s.text(2)},
                    {"platform_name", s.text(3)},
                    {"timestamp", s.text(4)},
                    {"variables", parse_or_string(s.text(5))},
                    {"current_state", s.text(6)},
                    {"closed_reason", s.text(7)},
                    {"last_activity", s.text(8)}};

  auto rows = [&](const std::string& sql, auto&& each) {
    json arr = json::array();
    for (const auto& q : r.query(sql, {row})) arr.push_back(each(q));
    return arr;
  };
  out["chat"] = rows("SELECT id, type, content, is_user, timestamp, seq FROM chat WHERE session_id = $1 ORDER BY id",
                     [](const read_row& q) {
                       json c{{"id", q.integer(0)}, {"type", q.text(1)}, {"content", q.text(2)},
                              {"is_user", q.integer(3) != 0}, {"timestamp", q.text(4)}};
                       if (!q.is_null(5)) c["seq"] = q.integer(5);  // replies only
                       return c;
                     });
  out["transitions"] = rows(
      "SELECT id, source_state, dest_state, event, condition, timestamp FROM transition "
      "WHERE session_id = $1 ORDER BY id",
      [](const read_row& q) {
        return json{{"id", q.integer(0)},  {"source_state", q.text(1)}, {"dest_state", q.text(2)},
                    {"event", q.text(3)}, {"condition", q.text(4)},    {"timestamp", q.text(5)}};
      });
  std::map<std::int64_t, json> parameters;  // by prediction
  for (const auto& p : r.query("SELECT p.intent_prediction_id, p.name, p.value, p.info FROM parameter p "
                               "JOIN intent_prediction ip ON ip.id = p.intent_prediction_id "
                               "WHERE ip.session_id = $1 ORDER BY p.id",
                               {row})) {
    auto& list = parameters[p.integer(0)];
    if (list.is_null()) list = json::array();
    list.push_back({{"name", p.text(1)}, {"value", p.text(2)}, {"info", parse_or_string(p.text(3))}});
  }
  out["intent_predictions"] = rows(
      "SELECT id, message, timestamp, intent_classifier, intent, score FROM intent_prediction "
      "WHERE session_id = $1 ORDER BY id",
      [&](const read_row& q) {
        auto it = parameters.find(q.integer(0));
        return json{{"id", q.integer(0)},
                    {"message", q.text(1)},
                    {"timestamp", q.text(2)},
                    {"intent_classifier", q.text(3)},
                    {"intent", q.nullable_text(4)},
                    {"score", q.real(5)},
                    {"parameters", it == parameters.end() ? json::array() : it->second}};
      });
  out["events"] = rows("SELECT id, event, info, timestamp FROM event WHERE session_id = $1 ORDER BY id",
                       [](const read_row& q) {
                         return json{{"id", q.integer(0)}, {"event", q.text(1)}, {"info", q.text(2)},
                                     {"timestamp", q.text(3)}};
                       });
  out["reasoning_steps"] = rows(
      "SELECT id, chat_id, kind, step_kind, step, summary, payload, timestamp, run_id, "
      "step_number, prompt_tokens, completion_tokens, latency_ms FROM reasoning_step "
      "WHERE session_id = $1 ORDER BY id",
      [](const read_row& q) {
        return json{{"id", q.integer(0)},          {"chat_id", number(q, 1)},
                    {"kind", q.text(2)},           {"step_kind", q.text(3)},
                    {"step", q.text(4)},           {"summary", q.text(5)},
                    {"payload", parse_or_string(q.text(6))},
                    {"timestamp", q.text(7)},      {"run_id", q.text(8)},
                    {"step_number", number(q, 9)}, {"prompt_tokens", number(q, 10)},
                    {"completion_tokens", number(q, 11)}, {"latency_ms", number(q, 12, true)}};
      });
  out["agent_messages"] = rows(
      "SELECT id, direction, protocol, peer, message_id, causation_id, correlation_id, "
      "sender_agent, sender_session, depth, content, status, timestamp FROM agent_message "
      "WHERE session_id = $1 ORDER BY id",
      [](const read_row& q) {
        return json{{"id", q.integer(0)},          {"direction", q.text(1)},
                    {"protocol", q.text(2)},       {"peer", q.text(3)},
                    {"message_id", q.text(4)},     {"causation_id", q.text(5)},
                    {"correlation_id", q.text(6)}, {"sender_agent", q.text(7)},
                    {"sender_session", q.text(8)}, {"depth", q.integer(9)},
                    {"content", q.text(10)},       {"status", q.text(11)},
                    {"timestamp", q.text(12)}};
      });
  out["timers"] = rows("SELECT key, due, event FROM timer WHERE session_id = $1 ORDER BY id",
                       [](const read_row& q) {
                         return json{{"key", q.text(0)}, {"due", q.text(1)}, {"event", parse_or_string(q.text(2))}};
                       });
  return out;
}

std::vector<stored_session> list_rows(reader& r, const std::string& agent, const std::string& username,
                                      std::size_t limit, std::size_t offset) {
  std::vector<stored_session> out;
  for (const auto& q : r.query("SELECT session_id, username, session_name, platform_name, current_state, "
                               "closed_reason, timestamp, last_activity FROM session "
                               "WHERE agent_name = $1 AND ($2 = '' OR username = $2) "
                               "ORDER BY last_activity DESC, id DESC LIMIT $3 OFFSET $4",
                               {agent, username, static_cast<std::int64_t>(limit),
                                static_cast<std::int64_t>(offset)})) {
    stored_session s;
    s.session_id = q.text(0);
    s.username = q.text(1);
    s.session_name = q.text(2);
    s.platform = q.text(3);
    s.state = q.text(4);
    s.closed_reason = q.text(5);
    s.created = parse_timestamp(q.text(6)).value_or(wall_clock::time_point{});
    s.last_activity = parse_timestamp(q.text(7)).value_or(wall_clock::time_point{});
    out.push_back(std::move(s));
  }
  return out;
}

namespace {
constexpr const char* row_tables[] = {"chat",   "transitions",     "intent_predictions",
                                      "events", "reasoning_steps", "agent_messages"};

template <class Fn>
void each(const json& data, const char* key, Fn&& fn) {
  if (auto it = data.find(key); it != data.end() && it->is_array())
    for (const auto& r : *it) fn(r);
}
}  // namespace

import_plan plan_import(const json& data, const std::string& new_id) {
  if (!data.is_object() || data.value("format", std::string()) != export_format ||
      !data.contains("session") || !data["session"].is_object())
    throw db_error(std::string("not a Parley session export (expected an object with \"format\": \"") +
                   export_format + "\" and a \"session\"); export one with export_session");
  if (data.value("version", 0) > export_version)
    throw db_error("the session export has version " + std::to_string(data.value("version", 0)) +
                   ", newer than this build of Parley reads (" + std::to_string(export_version) +
                   "); import it with a newer Parley");
  const json& s = data["session"];
  import_plan p;
  p.data = &data;
  p.session_id = new_id.empty() ? str(s, "session_id") : new_id;
  if (p.session_id.empty()) throw db_error("the session export has no session_id; give the import an id");
  const std::string now = format_timestamp(wall_clock::now());
  auto or_now = [&](const char* key) {
    auto v = str(s, key);
    return v.empty() ? now : v;
  };
  p.session_name = str(s, "session_name");
  p.username = str(s, "username");
  p.platform_name = str(s, "platform_name");
  p.timestamp = or_now("timestamp");
  p.last_activity = or_now("last_activity");
  const json vars = s.value("variables", json::object());
  p.variables = vars.is_object() ? vars.dump() : std::string("{}");
  if (auto state = str(s, "current_state"); !state.empty()) p.current_state = state;
  for (const char* key : row_tables) each(data, key, [&](const json&) { ++p.ids_needed; });
  return p;
}

std::vector<import_statement> import_rows(const import_plan& plan, const std::string& agent,
                                          const std::vector<std::int64_t>& ids) {
  const json& data = *plan.data;
  const std::string now = format_timestamp(wall_clock::now());
  auto or_now = [&](const json& j, const char* key) {
    auto v = str(j, key);
    return v.empty() ? now : v;
  };
  // New ids keep the exported rows' order across tables: the k-th smallest exported id gets
  // the k-th id given. Rows without an id (hand-written documents) come after them.
  std::vector<std::int64_t> old_ids;
  for (const char* key : row_tables)
    each(data, key, [&](const json& r) {
      if (auto it = r.find("id"); it != r.end() && it->is_number_integer()) old_ids.push_back(it->get<std::int64_t>());
    });
  std::sort(old_ids.begin(), old_ids.end());
  old_ids.erase(std::unique(old_ids.begin(), old_ids.end()), old_ids.end());
  std::size_t extra = old_ids.size();
  auto new_row_id = [&](const json& r) {
    if (auto it = r.find("id"); it != r.end() && it->is_number_integer()) {
      const auto at = std::lower_bound(old_ids.begin(), old_ids.end(), it->get<std::int64_t>());
      return ids.at(static_cast<std::size_t>(at - old_ids.begin()));
    }
    return ids.at(extra++);
  };
  auto num = [](const json& v) -> std::optional<std::string> {
    if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
    if (v.is_number()) return v.dump();
    return std::nullopt;
  };
  // Every row finds the new session by its id; $1 and $2 are the agent and the session.
  const std::string session = "(SELECT id FROM session WHERE agent_name = $1 AND session_id = $2)";
  std::vector<import_statement> out;
  auto add = [&](std::string sql, std::vector<std::optional<std::string>> params) {
    params.insert(params.begin(), {agent, plan.session_id});
    out.push_back({std::move(sql), std::move(params)});
  };
  std::unordered_map<std::int64_t, std::int64_t> chat_ids;  // exported id -> new id
  each(data, "chat", [&](const json& r) {
    const auto nid = new_row_id(r);
    if (auto it = r.find("id"); it != r.end() && it->is_number_integer()) chat_ids[it->get<std::int64_t>()] = nid;
    // A reply keeps its number: the imported (or forked) session numbers on from it.
    add("INSERT INTO chat (id, session_id, type, content, is_user, timestamp, seq) VALUES (CAST($3 AS BIGINT), " +
            session + ", $4, $5, CAST($6 AS INTEGER), $7, CAST($8 AS BIGINT))",
        {std::to_string(nid), str(r, "type"), str(r, "content"), r.value("is_user", false) ? "1" : "0",
         or_now(r, "timestamp"), num(r.value("seq", json()))});
  });
  each(data, "transitions", [&](const json& r) {
    add("INSERT INTO transition (id, session_id, source_state, dest_state, event, condition, timestamp) "
        "VALUES (CAST($3 AS BIGINT), " + session + ", $4, $5, $6, $7, $8)",
        {std::to_string(new_row_id(r)), str(r, "source_state"), str(r, "dest_state"), str(r, "event"),
         str(r, "condition"), or_now(r, "timestamp")});
  });
  each(data, "intent_predictions", [&](const json& r) {
    const auto pid = std::to_string(new_row_id(r));
    add("INSERT INTO intent_prediction (id, session_id, message, timestamp, intent_classifier, intent, score) "
        "VALUES (CAST($3 AS BIGINT), " + session + ", $4, $5, $6, $7, CAST($8 AS DOUBLE PRECISION))",
        {pid, str(r, "message"), or_now(r, "timestamp"), str(r, "intent_classifier"),
         r.value("intent", json()).is_null() ? std::nullopt : std::optional<std::string>(str(r, "intent")),
         num(r.value("score", json(0.0))).value_or("0")});
    each(r, "parameters", [&](const json& p) {
      add("INSERT INTO parameter (intent_prediction_id, name, value, info) "
          "SELECT CAST($3 AS BIGINT), $4, $5, $6 FROM session WHERE agent_name = $1 AND session_id = $2",
          {pid, str(p, "name"), str(p, "value"), p.value("info", json()).dump()});
    });
  });
  each(data, "events", [&](const json& r) {
    add("INSERT INTO event (id, session_id, agent_name, event, info, timestamp) "
        "VALUES (CAST($3 AS BIGINT), " + session + ", $1, $4, $5, $6)",
        {std::to_string(new_row_id(r)), str(r, "event"), str(r, "info"), or_now(r, "timestamp")});
  });
  each(data, "reasoning_steps", [&](const json& r) {
    const json c = r.value("chat_id", json());
    auto link = c.is_number_integer() ? chat_ids.find(c.get<std::int64_t>()) : chat_ids.end();
    add("INSERT INTO reasoning_step (id, session_id, chat_id, kind, step_kind, step, summary, payload, "
        "timestamp, run_id, step_number, prompt_tokens, completion_tokens, latency_ms) VALUES "
        "(CAST($3 AS BIGINT), " + session + ", CAST($4 AS BIGINT), $5, $6, $7, $8, $9, $10, $11, "
        "CAST($12 AS BIGINT), CAST($13 AS BIGINT), CAST($14 AS BIGINT), CAST($15 AS DOUBLE PRECISION))",
        {std::to_string(new_row_id(r)),
         link == chat_ids.end() ? std::nullopt : std::optional<std::string>(std::to_string(link->second)),
         str(r, "kind"), str(r, "step_kind"), str(r, "step"), str(r, "summary"),
         r.value("payload", json::object()).dump(), or_now(r, "timestamp"), str(r, "run_id"),
         num(r.value("step_number", json())), num(r.value("prompt_tokens", json())),
         num(r.value("completion_tokens", json())), num(r.value("latency_ms", json()))});
  });
  each(data, "agent_messages", [&](const json& r) {
    const json d = r.value("depth", json(0));
    add("INSERT INTO agent_message (id, session_id, direction, protocol, peer, message_id, causation_id, "
        "correlation_id, sender_agent, sender_session, depth, content, status, timestamp) VALUES "
        "(CAST($3 AS BIGINT), " + session + ", $4, $5, $6, $7, $8, $9, $10, $11, CAST($12 AS INTEGER), $13, $14, $15)",
        {std::to_string(new_row_id(r)), str(r, "direction"), str(r, "protocol"), str(r, "peer"),
         str(r, "message_id"), str(r, "causation_id"), str(r, "correlation_id"), str(r, "sender_agent"),
         str(r, "sender_session"), std::to_string(d.is_number_integer() ? d.get<std::int64_t>() : 0),
         str(r, "content"), str(r, "status"), or_now(r, "timestamp")});
  });
  each(data, "timers", [&](const json& r) {
    add("INSERT INTO timer (session_id, key, due, event) VALUES (" + session + ", $3, $4, $5)",
        {str(r, "key"), or_now(r, "due"), r.value("event", json::object()).dump()});
  });
  return out;
}

}  // namespace parley::db::detail
