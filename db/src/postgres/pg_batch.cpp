#include "pg_batch.hpp"

#include <array>
#include <charconv>
#include <string_view>

#include <parley/db/postgres_db_handler.hpp>

namespace parley::db::pg {

namespace {

struct column {
  const char* name;
  const char* cast;  // "" for text
};

struct table_spec {
  const char* name;
  bool session;  // has a session_id column, found from (agent, session id)
  std::vector<column> columns;
};

const std::array<table_spec, table_count>& specs() {
  static const std::array<table_spec, table_count> s{{
      {"chat", true, {{"type", ""}, {"content", ""}, {"is_user", "int"}, {"timestamp", ""}, {"seq", "bigint"}}},
      {"intent_prediction",
       true,
       {{"message", ""}, {"timestamp", ""}, {"intent_classifier", ""}, {"intent", ""},
        {"score", "double precision"}}},
      {"parameter", false, {{"intent_prediction_id", "bigint"}, {"name", ""}, {"value", ""}, {"info", ""}}},
      {"transition",
       true,
       {{"source_state", ""}, {"dest_state", ""}, {"event", ""}, {"condition", ""}, {"timestamp", ""}}},
      {"event", true, {{"agent_name", ""}, {"event", ""}, {"info", ""}, {"timestamp", ""}}},
      {"reasoning_step",
       true,
       {{"kind", ""}, {"step_kind", ""}, {"step", ""}, {"summary", ""}, {"payload", ""},
        {"timestamp", ""}, {"run_id", ""}, {"step_number", "bigint"}, {"prompt_tokens", "bigint"},
        {"completion_tokens", "bigint"}, {"latency_ms", "double precision"}}},
      {"agent_message",
       true,
       {{"direction", ""}, {"protocol", ""}, {"peer", ""}, {"message_id", ""}, {"causation_id", ""},
        {"correlation_id", ""}, {"sender_agent", ""}, {"sender_session", ""}, {"depth", "int"},
        {"content", ""}, {"status", ""}, {"timestamp", ""}}},
  }};
  return s;
}

// INSERT INTO t (id, session_id, a, b) SELECT u.c0::bigint, s.id, u.c1, u.c2::int
// FROM unnest($2::text[], $3::text[], ...) AS u(c0, sid, c1, c2)
// LEFT JOIN session s ON s.agent_name = $1 AND s.session_id = u.sid
// A join, not a subquery per row: the planner probes the session index per row when the
// table is big, and hashes it when it is small. No ON CONFLICT: checking each row's id first
// was a tenth of the server's time; a batch that may have committed is checked as a whole
// when it is sent again (postgres_db_handler.cpp, recover).
std::string insert_sql(const table_spec& t) {
  std::string cols = "id", select = "u.c0::bigint", arrays, names = "c0";
  int param = t.session ? 2 : 1;  // $1 is the agent's name when rows name a session
  auto add_array = [&](const std::string& name) {
    if (!arrays.empty()) arrays += ", ";
    arrays += "$" + std::to_string(param++) + "::text[]";
    if (name != "c0") names += ", " + name;
  };
  add_array("c0");
  if (t.session) {
    cols += ", session_id";
    select += ", s.id";
    add_array("sid");
  }
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const auto name = "c" + std::to_string(i + 1);
    cols += std::string(", ") + t.columns[i].name;
    select += ", u." + name;
    if (*t.columns[i].cast) select += std::string("::") + t.columns[i].cast;
    add_array(name);
  }
  return "INSERT INTO " + std::string(t.name) + " (" + cols + ") SELECT " + select + " FROM unnest(" + arrays +
         ") AS u(" + names + ")" + (t.session ? " LEFT JOIN session s ON s.agent_name = $1 AND s.session_id = u.sid" : "");
}

const std::string& cached_insert_sql(table t) {
  static const auto all = [] {
    std::array<std::string, table_count> out;
    for (std::size_t i = 0; i < table_count; ++i) out[i] = insert_sql(specs()[i]);
    return out;
  }();
  return all[static_cast<std::size_t>(t)];
}

// The batch's sessions, in one statement before their rows: a session first seen here
// (restored, or recorded before its start) gets its row; the others move on (last activity,
// and state when given). One upsert, not an insert-if-missing and an update (a tenth of the
// server's time per message). A dictionary, when given, follows in a statement of its own
// (rarer; "not given" cannot ride through the upsert's excluded row of a NOT NULL column).
constexpr const char* upsert_sessions_sql =
    "INSERT INTO session AS s (agent_name, session_id, timestamp, last_activity, shard, current_state) "
    "SELECT $1, u.sid, u.ts, u.ts, u.shard::int, u.state "
    "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(sid, ts, shard, state) "
    "ON CONFLICT (agent_name, session_id) DO UPDATE SET "
    "last_activity = GREATEST(s.last_activity, excluded.last_activity), "
    "current_state = coalesce(excluded.current_state, s.current_state)";

constexpr const char* set_variables_sql =
    "UPDATE session s SET variables = u.vars FROM unnest($2::text[], $3::text[]) AS u(sid, vars) "
    "WHERE s.agent_name = $1 AND s.session_id = u.sid";

constexpr const char* set_timers_sql =
    "INSERT INTO timer (session_id, key, due, event) "
    "SELECT (SELECT s.id FROM session s WHERE s.agent_name = $1 AND s.session_id = u.sid), u.key, u.due, u.event "
    "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(sid, key, due, event) "
    "ON CONFLICT (session_id, key) DO UPDATE SET due = excluded.due, event = excluded.event";

constexpr const char* delete_timers_sql =
    "DELETE FROM timer t USING unnest($2::text[], $3::text[]) AS u(sid, key) "
    "WHERE t.session_id = (SELECT s.id FROM session s WHERE s.agent_name = $1 AND s.session_id = u.sid) "
    "AND t.key = u.key";

}  // namespace

const char* table_name(table t) { return specs()[static_cast<std::size_t>(t)].name; }

namespace {

// One PostgreSQL array literal of text, built element by element without copies: `{"a","b\"c",NULL}`.
class array_literal {
 public:
  void add(std::string_view v) {
    open();
    out_ += '"';
    // Runs without a quote or a backslash go in whole.
    std::size_t run = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] != '"' && v[i] != '\\') continue;
      out_.append(v.data() + run, i - run);
      out_ += '\\';
      run = i;
    }
    out_.append(v.data() + run, v.size() - run);
    out_ += '"';
  }
  void add(const std::optional<std::string>& v) {
    if (v) return add(std::string_view(*v));
    open();
    out_ += "NULL";
  }
  void add(std::int64_t v) {
    open();
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  std::string take() {
    if (out_.empty()) out_ += '{';
    out_ += '}';
    return std::move(out_);
  }

 private:
  void open() { out_ += out_.empty() ? '{' : ','; }
  std::string out_;
};

// A table's rows as its arrays (id, session when the table has one, then its columns), each an
// array literal built straight from the rows.
void append_arrays(std::vector<std::optional<std::string>>& params, const table_spec& spec,
                   const std::vector<const row*>& rows) {
  {
    array_literal ids;
    for (const auto* r : rows) ids.add(r->id);
    params.push_back(ids.take());
  }
  if (spec.session) {
    array_literal sids;
    for (const auto* r : rows) {
      if (r->session.empty()) sids.add(std::optional<std::string>());
      else sids.add(std::string_view(r->session));
    }
    params.push_back(sids.take());
  }
  static const std::optional<std::string> none;
  for (std::size_t c = 0; c < spec.columns.size(); ++c) {
    array_literal col;
    for (const auto* r : rows) col.add(c < r->values.size() ? r->values[c] : none);
    params.push_back(col.take());
  }
}

}  // namespace

std::string text_array(const std::vector<std::optional<std::string>>& items) {
  array_literal a;
  for (const auto& v : items) a.add(v);
  return a.take();
}

void batch_builder::add(const row& r) {
  if (!r.session.empty()) touch(r.session, {}, std::nullopt, std::nullopt);
  rows_[static_cast<std::size_t>(r.t)].push_back(&r);
}

void batch_builder::touch(const std::string& session, const std::string& timestamp,
                          const std::optional<std::string>& state,
                          const std::optional<std::string>& variables) {
  auto& t = touched_[session];
  if (t.timestamp < timestamp) t.timestamp = timestamp;
  if (state) t.state = state;
  if (variables) t.variables = variables;
}

void batch_builder::timer(const std::string& session, timer_op op) {
  touch(session, {}, std::nullopt, std::nullopt);  // its session row exists before the timer's
  auto k = std::make_pair(session, op.key);
  timers_[std::move(k)] = std::move(op);
}

void batch_builder::raw(query q) {
  flush();
  out_.push_back(std::move(q));
}

std::vector<query> batch_builder::take() {
  flush();
  return std::move(out_);
}

void batch_builder::flush() {
  if (!touched_.empty()) {
    array_literal sids, ts, shards, states, var_sids, vars;
    bool any_variables = false;
    for (auto& [sid, t] : touched_) {
      sids.add(std::string_view(sid));
      ts.add(std::string_view(t.timestamp));
      shards.add(static_cast<std::int64_t>(shard_of(agent_, sid)));
      states.add(t.state);
      if (t.variables) {
        any_variables = true;
        var_sids.add(std::string_view(sid));
        vars.add(t.variables);
      }
    }
    out_.push_back({upsert_sessions_sql, {agent_, sids.take(), ts.take(), shards.take(), states.take()}});
    if (any_variables) out_.push_back({set_variables_sql, {agent_, var_sids.take(), vars.take()}});
    touched_.clear();
  }
  // Each table's rows: one INSERT of arrays, the session found by a join.
  for (std::size_t i = 0; i < table_count; ++i) {
    auto& rows = rows_[i];
    if (rows.empty()) continue;
    const auto& spec = specs()[i];
    query q{cached_insert_sql(static_cast<table>(i)), {}};
    if (spec.session) q.params.emplace_back(agent_);
    append_arrays(q.params, spec, rows);
    out_.push_back(std::move(q));
    rows.clear();
  }
  if (!timers_.empty()) {
    array_literal set_sids, set_keys, dues, events, del_sids, del_keys;
    bool any_set = false, any_deleted = false;
    for (auto& [k, op] : timers_) {
      if (op.due) {
        any_set = true;
        set_sids.add(std::string_view(k.first));
        set_keys.add(std::string_view(op.key));
        dues.add(op.due);
        events.add(op.event);
      } else {
        any_deleted = true;
        del_sids.add(std::string_view(k.first));
        del_keys.add(std::string_view(op.key));
      }
    }
    if (any_deleted) out_.push_back({delete_timers_sql, {agent_, del_sids.take(), del_keys.take()}});
    if (any_set)
      out_.push_back({set_timers_sql, {agent_, set_sids.take(), set_keys.take(), dues.take(), events.take()}});
    timers_.clear();
  }
}

}  // namespace parley::db::pg
