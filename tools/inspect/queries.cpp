#include "queries.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>

namespace parley::inspect {

namespace {
using json = nlohmann::json;

// LIMIT for "all": both dialects take the largest integer (SQLite's -1 is an error to PostgreSQL).
constexpr std::int64_t no_limit = INT64_MAX;

json parsed(const std::string& s) {
  auto j = json::parse(s, nullptr, false);
  return j.is_discarded() ? json(s) : j;
}

cell time_cell(const std::string& ts) { return {ts, colour::dim}; }

struct fetched {
  row r;
  std::string ts;
  std::int64_t id;
};

struct source {
  const char* table;
  const char* columns;  // after "id, timestamp"
  std::function<fetched(const db::read_row&, bool timeline)> make;
};

fetched chat_row(const db::read_row& q, bool timeline) {
  const bool user = q.integer(4) != 0;
  const auto ts = q.text(1);
  const auto type = q.text(2);
  const auto content = q.text(3);
  fetched f{{}, ts, q.integer(0)};
  f.r.object = {{"id", f.id}, {"timestamp", ts}, {"is_user", user}, {"type", type},
                {"content", content}};
  const cell who{user ? "user" : "bot", user ? colour::user : colour::bot};
  if (timeline) {
    f.r.object["source"] = "chat";
    f.r.cells = {time_cell(ts), who, {(type == "str" ? "" : "[" + type + "] ") + one_line(content)}};
  } else {
    f.r.cells = {time_cell(ts), who, {type, colour::dim}, {one_line(content, 2000)}};
  }
  return f;
}

fetched transition_row(const db::read_row& q, bool timeline) {
  const auto ts = q.text(1);
  const auto from = q.text(2), to = q.text(3), ev = q.text(4),
             cond = q.text(5);
  fetched f{{}, ts, q.integer(0)};
  f.r.object = {{"id", f.id}, {"timestamp", ts}, {"source_state", from}, {"dest_state", to},
                {"event", ev}, {"condition", cond}};
  if (timeline) {
    f.r.object["source"] = "transition";
    f.r.cells = {time_cell(ts), {"transition", colour::accent}, {from + " -> " + to + "  (" + cond + ")"}};
  } else {
    f.r.cells = {time_cell(ts), {from}, {to, colour::accent}, {ev.empty() ? "-" : ev}, {cond}};
  }
  return f;
}

fetched prediction_row(const db::read_row& q, bool) {
  const auto ts = q.text(1);
  const auto msg = q.text(2);
  const bool matched = !q.is_null(3);
  const auto intent = q.text(3);
  const double score = q.real(4);
  fetched f{{}, ts, q.integer(0)};
  char sc[32];
  std::snprintf(sc, sizeof sc, "%.2f", score);
  f.r.object = {{"source", "intent_prediction"}, {"id", f.id}, {"timestamp", ts},
                {"message", msg}, {"intent", matched ? json(intent) : json()}, {"score", score},
                {"intent_classifier", q.text(5)}};
  f.r.cells = {time_cell(ts), {"intent", colour::dim},
               {"'" + one_line(msg, 60) + "' -> " + (matched ? intent : "(no intent)") + " " + sc}};
  return f;
}

fetched reasoning_row(const db::read_row& q, bool timeline) {
  const auto ts = q.text(1);
  const auto kind = q.text(2), step_kind = q.text(3),
             step = q.text(4), summary = q.text(5);
  const bool linked = !q.is_null(6);
  const auto chat = linked ? q.integer(6) : 0;
  fetched f{{}, ts, q.integer(0)};
  f.r.object = {{"id", f.id}, {"timestamp", ts}, {"kind", kind}, {"step_kind", step_kind},
                {"step", step}, {"summary", summary}, {"payload", parsed(q.text(7))},
                {"chat_id", linked ? json(chat) : json()}};
  if (timeline) {
    f.r.object["source"] = "reasoning_step";
    f.r.cells = {time_cell(ts), {"reasoning", colour::warn},
                 {one_line(kind + (step_kind.empty() ? "" : " " + step_kind) +
                           (step.empty() ? "" : " #" + step) + (summary.empty() ? "" : ": " + summary))}};
  } else {
    f.r.cells = {time_cell(ts), {kind}, {step_kind.empty() ? "-" : step_kind}, {step.empty() ? "-" : step},
                 {linked ? std::to_string(chat) : "-", colour::dim}, {one_line(summary)}};
  }
  return f;
}

fetched event_row(const db::read_row& q, bool) {
  const auto ts = q.text(1);
  const auto ev = q.text(2), info = q.text(3);
  fetched f{{}, ts, q.integer(0)};
  f.r.object = {{"id", f.id}, {"timestamp", ts}, {"event", ev}, {"info", info}};
  f.r.cells = {time_cell(ts), {ev, ev == "error" ? colour::warn : colour::none}, {one_line(info, 2000)}};
  return f;
}

const source chat_src{"chat", "type, content, is_user", chat_row};
const source transition_src{"transition", "source_state, dest_state, event, condition", transition_row};
const source prediction_src{"intent_prediction", "message, intent, score, intent_classifier", prediction_row};
const source reasoning_src{"reasoning_step", "kind, step_kind, step, summary, chat_id, payload", reasoning_row};
const source event_src{"event", "event, info", event_row};

std::vector<const source*> sources(command c) {
  switch (c) {
    case command::chat: return {&chat_src};
    case command::transitions: return {&transition_src};
    case command::reasoning: return {&reasoning_src};
    case command::events: return {&event_src};
    case command::timeline: return {&chat_src, &prediction_src, &transition_src, &reasoning_src};
    case command::sessions: return {};
  }
  return {};
}

std::vector<row> fetch_sessions(db::reader& db, const query_options& o,
                                std::map<std::string, std::int64_t>& seen) {
  const bool first = !seen.count("session");
  const auto rows = db.query(
      "SELECT id, agent_name, session_id, username, current_state, last_activity, "
      "timestamp, platform_name, closed_reason FROM session "
      "WHERE id > $1 AND ($2 = '' OR username = $2) AND ($3 = '' OR agent_name = $3) "
      "ORDER BY last_activity DESC, id DESC LIMIT $4",
      {first ? std::int64_t{0} : seen["session"], o.user, o.agent,
       first ? static_cast<std::int64_t>(o.limit) : no_limit});
  std::vector<row> out;
  std::int64_t max_id = seen["session"];
  for (const auto& q : rows) {
    const auto id = q.integer(0);
    max_id = std::max(max_id, id);
    row r;
    const auto closed = q.text(8);
    r.object = {{"agent_name", q.text(1)}, {"session_id", q.text(2)},
                {"username", q.text(3)},   {"state", q.text(4)},
                {"last_activity", q.text(5)}, {"created", q.text(6)},
                {"platform", q.text(7)},
                {"closed_reason", closed.empty() ? json() : json(closed)}};
    r.cells = {{q.text(2), colour::bold}, {q.text(3)},
               {q.text(4), colour::accent}, time_cell(q.text(5)),
               {q.text(1)}, {closed.empty() ? "open" : "closed: " + closed, closed.empty() ? colour::none : colour::dim}};
    out.push_back(std::move(r));
  }
  seen["session"] = max_id;
  if (!first) std::reverse(out.begin(), out.end());  // follow: oldest new first
  return out;
}
}  // namespace

session_ref find_session(db::reader& db, const std::string& id, const std::string& agent) {
  const auto& path = db.where();
  std::vector<session_ref> found;
  for (const auto& q : db.query("SELECT id, agent_name FROM session WHERE session_id = $1 "
                                "AND ($2 = '' OR agent_name = $2)",
                                {id, agent}))
    found.push_back({q.integer(0), q.text(1), id});
  if (found.empty())
    throw inspect_error("no session '" + id + "'" + (agent.empty() ? "" : " of agent '" + agent + "'") +
                        " in " + path + "; list them with: parley-inspect " + path + " sessions");
  if (found.size() > 1) {
    std::string agents;
    for (const auto& f : found) agents += (agents.empty() ? "" : ", ") + f.agent;
    throw inspect_error("session '" + id + "' exists for several agents (" + agents +
                        "); pick one with --agent NAME");
  }
  return found.front();
}

std::vector<std::string> headers(command c) {
  switch (c) {
    case command::sessions: return {"SESSION", "USER", "STATE", "LAST ACTIVITY", "AGENT", "STATUS"};
    case command::chat: return {"TIME", "FROM", "TYPE", "CONTENT"};
    case command::transitions: return {"TIME", "FROM", "TO", "EVENT", "BECAUSE"};
    case command::reasoning: return {"TIME", "KIND", "STEP KIND", "STEP", "CHAT", "SUMMARY"};
    case command::events: return {"TIME", "EVENT", "INFO"};
    case command::timeline: return {"TIME", "WHAT", "DETAIL"};
  }
  return {};
}

std::vector<row> fetch(db::reader& db, command c, const session_ref* s,
                       const query_options& o, std::map<std::string, std::int64_t>& seen) {
  if (c == command::sessions) return fetch_sessions(db, o, seen);
  const bool timeline = c == command::timeline;
  std::vector<fetched> all;
  for (const source* src : sources(c)) {
    const bool first = !seen.count(src->table);
    const std::string sql = std::string("SELECT id, timestamp, ") + src->columns + " FROM " +
                            src->table +
                            " WHERE session_id = $1 AND id > $2 AND ($3 IS NULL OR timestamp <= $3) "
                            "ORDER BY id DESC LIMIT $4";
    std::int64_t max_id = seen[src->table];
    for (const auto& q : db.query(sql, {s->row, first ? std::int64_t{0} : seen[src->table],
                                        first && o.until ? db::read_param(*o.until) : db::read_param(nullptr),
                                        first && o.last ? static_cast<std::int64_t>(*o.last) : no_limit})) {
      all.push_back(src->make(q, timeline));
      max_id = std::max(max_id, all.back().id);
    }
    seen[src->table] = max_id;
  }
  // Write order: the writer numbers chat, transition, intent_prediction, event and
  // reasoning_step rows from one sequence, so ids order them across tables (timestamps, at
  // millisecond resolution, tie too often to merge on).
  std::sort(all.begin(), all.end(), [](const fetched& a, const fetched& b) { return a.id < b.id; });
  if (o.last && all.size() > *o.last && !seen.count("#followed"))
    all.erase(all.begin(), all.end() - static_cast<std::ptrdiff_t>(*o.last));
  seen["#followed"] = 1;
  std::vector<row> out;
  out.reserve(all.size());
  for (auto& f : all) out.push_back(std::move(f.r));
  return out;
}

}  // namespace parley::inspect
