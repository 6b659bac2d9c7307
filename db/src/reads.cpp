#include "reads.hpp"

#include <algorithm>

#include <SQLiteCpp/Statement.h>

#include <parley/db/timestamp.hpp>
#include <parley/log.hpp>

#include "row_text.hpp"

namespace parley::db::detail {

namespace {
std::string col(const SQLite::Column& c) { return c.isNull() ? std::string() : c.getString(); }

// Resets a statement however its read ends: a statement left active holds a read transaction,
// which keeps the WAL from being checkpointed.
struct reset_at_exit {
  SQLite::Statement& q;
  ~reset_at_exit() { q.tryReset(); }
};

void bind_until(SQLite::Statement& q, int index, std::optional<wall_clock::time_point> until) {
  if (until)
    q.bind(index, format_timestamp(*until));
  else
    q.bind(index);
}

std::vector<chat_message> chat_rows(SQLite::Statement& q) {
  std::vector<chat_message> out;
  while (q.executeStep()) {
    chat_message m;
    m.id = q.getColumn(0).getInt64();
    m.type = col(q.getColumn(1));
    m.content = col(q.getColumn(2));
    m.is_user = q.getColumn(3).getInt() != 0;
    m.timestamp = parse_timestamp(col(q.getColumn(4))).value_or(wall_clock::time_point{});
    if (!q.getColumn(5).isNull()) m.seq = q.getColumn(5).getInt64();
    out.push_back(std::move(m));
  }
  return out;
}
}  // namespace

std::vector<chat_message> read_chat(reader_conn& c, const std::string& agent,
                                    const std::string& session_id, std::optional<std::size_t> n,
                                    std::optional<wall_clock::time_point> until) {
  auto& q = c.statements.get(
      "SELECT c.id, c.type, c.content, c.is_user, c.timestamp, c.seq FROM chat c "
      "JOIN session s ON s.id = c.session_id "
      "WHERE s.agent_name = ?1 AND s.session_id = ?2 AND (?3 IS NULL OR c.timestamp <= ?3) "
      "ORDER BY c.id DESC LIMIT ?4");
  reset_at_exit reset{q};
  q.bindNoCopy(1, agent);
  q.bindNoCopy(2, session_id);
  bind_until(q, 3, until);
  q.bind(4, n ? static_cast<std::int64_t>(*n) : std::int64_t{-1});
  auto out = chat_rows(q);
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {
// One page of chat rows after `after` (an id or a seq, as `sql` orders them): at most `limit`
// (0: all), at or before `until` when given. `sql` binds ?1 agent, ?2 session, ?3 after,
// ?4 until, ?5 limit.
std::vector<chat_message> chat_page(reader_conn& c, const char* sql, const std::string& agent,
                                    const std::string& session_id, std::int64_t after,
                                    std::size_t limit,
                                    std::optional<wall_clock::time_point> until) {
  auto& q = c.statements.get(sql);
  reset_at_exit reset{q};
  q.bindNoCopy(1, agent);
  q.bindNoCopy(2, session_id);
  q.bind(3, after);
  bind_until(q, 4, until);
  q.bind(5, limit ? static_cast<std::int64_t>(limit) : std::int64_t{-1});
  return chat_rows(q);
}
}  // namespace

std::vector<chat_message> read_chat_page(reader_conn& c, const std::string& agent,
                                         const std::string& session_id, std::int64_t after_id,
                                         std::size_t limit,
                                         std::optional<wall_clock::time_point> until) {
  // chat_by_session (session_id, id): a seek to after_id, then `limit` rows in order.
  return chat_page(c,
                   "SELECT c.id, c.type, c.content, c.is_user, c.timestamp, c.seq FROM chat c "
                   "JOIN session s ON s.id = c.session_id "
                   "WHERE s.agent_name = ?1 AND s.session_id = ?2 AND c.id > ?3 "
                   "AND (?4 IS NULL OR c.timestamp <= ?4) ORDER BY c.id LIMIT ?5",
                   agent, session_id, after_id, limit, until);
}

std::vector<chat_message> read_replies_since(reader_conn& c, const std::string& agent,
                                             const std::string& session_id,
                                             std::int64_t after_seq, std::size_t limit) {
  // chat_by_session_seq (session_id, seq): a seek to after_seq, then `limit` rows in order.
  return chat_page(c,
                   "SELECT c.id, c.type, c.content, c.is_user, c.timestamp, c.seq FROM chat c "
                   "JOIN session s ON s.id = c.session_id "
                   "WHERE s.agent_name = ?1 AND s.session_id = ?2 AND c.seq IS NOT NULL "
                   "AND c.seq > ?3 AND (?4 IS NULL OR c.timestamp <= ?4) ORDER BY c.seq LIMIT ?5",
                   agent, session_id, after_seq, limit, std::nullopt);
}

std::vector<reasoning_event> read_reasoning(reader_conn& c, const std::string& agent,
                                            const std::string& session_id,
                                            std::optional<wall_clock::time_point> until) {
  auto& q = c.statements.get(
      "SELECT r.id, r.kind, r.step_kind, r.step, r.summary, r.payload, r.timestamp, r.chat_id, "
      "r.run_id, r.step_number, r.prompt_tokens, r.completion_tokens, r.latency_ms "
      "FROM reasoning_step r JOIN session s ON s.id = r.session_id "
      "WHERE s.agent_name = ?1 AND s.session_id = ?2 AND (?3 IS NULL OR r.timestamp <= ?3) "
      "ORDER BY r.id");
  reset_at_exit reset{q};
  q.bindNoCopy(1, agent);
  q.bindNoCopy(2, session_id);
  bind_until(q, 3, until);
  std::vector<reasoning_event> out;
  while (q.executeStep()) {
    reasoning_event e;
    e.id = q.getColumn(0).getInt64();
    e.kind = col(q.getColumn(1));
    e.step_kind = col(q.getColumn(2));
    e.step = col(q.getColumn(3));
    e.summary = col(q.getColumn(4));
    e.payload = payload_from_text(col(q.getColumn(5)));
    e.timestamp = parse_timestamp(col(q.getColumn(6))).value_or(wall_clock::time_point{});
    if (!q.getColumn(7).isNull()) e.chat_id = q.getColumn(7).getInt64();
    e.run_id = col(q.getColumn(8));
    if (!q.getColumn(9).isNull()) e.step_number = q.getColumn(9).getInt64();
    if (!q.getColumn(10).isNull()) e.prompt_tokens = q.getColumn(10).getInt64();
    if (!q.getColumn(11).isNull()) e.completion_tokens = q.getColumn(11).getInt64();
    if (!q.getColumn(12).isNull()) e.latency_ms = q.getColumn(12).getDouble();
    out.push_back(std::move(e));
  }
  return out;
}

// Handled agent-message ids read back with a session (it keeps agent.agent_message_ids of them,
// the newest): a bound on the read, above any sensible setting of that key.
constexpr std::int64_t handled_ids_kept = 4096;

std::optional<session_snapshot> read_session(reader_conn& c, const std::string& agent,
                                             const std::string& session_id) {
  // One read transaction: the state, dictionary and timers of one moment.
  c.db->exec("BEGIN");
  struct end_read {
    SQLite::Database& db;
    ~end_read() {
      try {
        db.exec("COMMIT");
      } catch (...) {
      }
    }
  } end{*c.db};
  auto& q = c.statements.get(
      "SELECT id, session_name, username, platform_name, variables, current_state, "
      "closed_reason FROM session WHERE agent_name = ? AND session_id = ?");
  std::int64_t row = 0;
  session_snapshot snap;
  {
    reset_at_exit reset{q};
    q.bindNoCopy(1, agent);
    q.bindNoCopy(2, session_id);
    if (!q.executeStep()) return std::nullopt;
    row = q.getColumn(0).getInt64();
    snap.session_id = session_id;
    snap.session_name = col(q.getColumn(1));
    snap.username = col(q.getColumn(2));
    snap.platform = col(q.getColumn(3));
    snap.variables = json::parse(col(q.getColumn(4)), nullptr, false);
    if (!snap.variables.is_object()) snap.variables = json::object();
    snap.state = col(q.getColumn(5));
    snap.closed_reason = col(q.getColumn(6));
  }
  auto& t = c.statements.get("SELECT key, due, event FROM timer WHERE session_id = ? ORDER BY id");
  reset_at_exit reset{t};
  t.bind(1, row);
  while (t.executeStep())
    if (auto p = timer_from_row(session_id, col(t.getColumn(0)), col(t.getColumn(1)), col(t.getColumn(2))))
      snap.timers.push_back(std::move(*p));
  // The agent messages it handled last, oldest first: a resend after a restart is dropped.
  auto& a = c.statements.get(
      "SELECT message_id FROM (SELECT id, message_id FROM agent_message WHERE session_id = ? "
      "AND direction = 'in' AND status = 'handled' ORDER BY id DESC LIMIT ?) ORDER BY id");
  reset_at_exit reset_ids{a};
  a.bind(1, row);
  a.bind(2, handled_ids_kept);
  while (a.executeStep()) snap.handled_agent_ids.push_back(col(a.getColumn(0)));
  // The last reply's number: one seek on chat_by_session_seq.
  auto& n = c.statements.get("SELECT max(seq) FROM chat WHERE session_id = ? AND seq IS NOT NULL");
  reset_at_exit reset_seq{n};
  n.bind(1, row);
  if (n.executeStep() && !n.getColumn(0).isNull()) snap.last_reply_seq = n.getColumn(0).getInt64();
  return snap;
}

}  // namespace parley::db::detail
