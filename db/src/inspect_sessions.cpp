// The inspectors' sessions list and session summaries (parley/db/inspect.hpp).
#include <parley/db/inspect.hpp>

#include <algorithm>
#include <cctype>
#include <vector>

#include <SQLiteCpp/Statement.h>

#include <parley/log.hpp>

#include "inspect_detail.hpp"

namespace parley::db {

namespace detail {

std::string col(const SQLite::Column& c) { return c.isNull() ? std::string() : c.getString(); }

json nullable_int(const SQLite::Column& c) { return c.isNull() ? json() : json(c.getInt64()); }

// The summary's columns, for `FROM session s`; summary_from() reads them from column 0 on.
// The counts are correlated subqueries, each a range scan of its table's (session_id, id) index
// for one session: a page of 50 sessions costs 150 range scans, whatever the file's size.
const char* const summary_columns =
    "s.id, s.agent_name, s.session_id, s.username, s.session_name, s.platform_name, "
    "s.timestamp, s.last_activity, s.current_state, s.closed_reason, "
    "(SELECT count(*) FROM chat c WHERE c.session_id = s.id AND c.is_user <> 0), "
    "(SELECT count(*) FROM event e WHERE e.session_id = s.id "
    " AND (e.event = 'error' OR e.event LIKE '%\\_error' ESCAPE '\\')), "
    "(SELECT coalesce(sum(coalesce(r.prompt_tokens, 0) + coalesce(r.completion_tokens, 0)), 0) "
    " FROM reasoning_step r WHERE r.session_id = s.id)";

json summary_from(SQLite::Statement& q) {
  const auto closed = q.getColumn(9);
  return {{"row", q.getColumn(0).getInt64()},
          {"agent", col(q.getColumn(1))},
          // The tag stands for the id, which is a bearer secret and never leaves this function.
          {"tag", session_tag(col(q.getColumn(2)))},
          {"user", col(q.getColumn(3))},
          {"name", col(q.getColumn(4))},
          {"platform", col(q.getColumn(5))},
          {"started", col(q.getColumn(6))},
          {"last_activity", col(q.getColumn(7))},
          {"state", col(q.getColumn(8))},
          {"closed", closed.isNull() ? json() : json(closed.getString())},
          {"turns", q.getColumn(10).getInt64()},
          {"errors", q.getColumn(11).getInt64()},
          {"tokens", q.getColumn(12).getInt64()}};
}

}  // namespace detail

namespace {

using detail::col;

// "#1a2b3c4d" or "1a2b3c4d": the tag's 8 hex digits, lower case; "" when `q` is no tag.
std::string as_tag(const std::string& q) {
  std::string hex = q.size() == 9 && q[0] == '#' ? q.substr(1) : q;
  if (hex.size() != 8) return {};
  for (auto& c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return {};
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return "#" + hex;
}

// Rows of the sessions whose tag is `tag`. A tag is a hash of the id, so it cannot be looked up
// in SQL: the ids are hashed here, one pass over the session table (its rows are few next to
// the chat's).
std::vector<std::int64_t> rows_with_tag(SQLite::Database& db, const std::string& tag) {
  std::vector<std::int64_t> rows;
  SQLite::Statement q(db, "SELECT id, session_id FROM session");
  while (q.executeStep())
    if (session_tag(col(q.getColumn(1))) == tag) rows.push_back(q.getColumn(0).getInt64());
  return rows;
}

std::string like_escaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string time_bound(const std::string& name, const std::string& text) {
  // A prefix of the stored form, 2026-11-29T09:00:00.123Z; a space may stand for the 'T'.
  static const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  std::string t = text;
  bool ok = t.size() >= 4 && t.size() <= shape.size();
  for (std::size_t i = 0; ok && i < t.size(); ++i) {
    if (i == 10 && t[i] == ' ') t[i] = 'T';
    ok = shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(t[i])) != 0 : t[i] == shape[i];
  }
  if (!ok)
    throw inspect_error(name + " must be a time like 2026-11-29T09:00:00.000Z or a prefix of one "
                               "(2026-11-29, 2026-11-29 09:00), got '" + text + "'");
  return t;
}

json list_sessions(SQLite::Database& db, const session_query& o) {
  if (o.limit < 1 || o.limit > 1000)
    throw inspect_error("limit must be between 1 and 1000, got " + std::to_string(o.limit));
  if (o.offset < 0) throw inspect_error("offset must be 0 or more, got " + std::to_string(o.offset));
  const std::string since = o.since.empty() ? std::string() : time_bound("since", o.since);
  const std::string until = o.until.empty() ? std::string() : time_bound("until", o.until);

  // q: the exact id, a tag, or part of the user name.
  std::string tag_rows = "0";
  if (const auto tag = as_tag(o.q); !tag.empty())
    for (auto r : rows_with_tag(db, tag)) tag_rows += "," + std::to_string(r);
  // until: '~' sorts after every character of a timestamp, so a prefix covers its whole span.
  const std::string where =
      " WHERE (?1 = '' OR s.session_id = ?1 OR s.username LIKE '%' || ?2 || '%' ESCAPE '\\' "
      "OR s.id IN (" + tag_rows + ")) "
      "AND (?3 = '' OR s.username = ?3) AND (?4 = '' OR s.current_state = ?4) "
      "AND (?5 = '' OR s.agent_name = ?5) AND (?6 = '' OR s.last_activity >= ?6) "
      "AND (?7 = '' OR s.timestamp <= ?7 || '~')";
  auto bind = [&](SQLite::Statement& q) {
    q.bind(1, o.q);
    q.bind(2, like_escaped(o.q));
    q.bind(3, o.user);
    q.bind(4, o.state);
    q.bind(5, o.agent);
    q.bind(6, since);
    q.bind(7, until);
  };
  json out = {{"total", 0}, {"offset", o.offset}, {"limit", o.limit},
              {"agents", json::array()}, {"sessions", json::array()}};
  // One read transaction: the total and the page agree.
  detail::read_transaction snapshot(db);
  {
    SQLite::Statement total(db, "SELECT count(*) FROM session s" + where);
    bind(total);
    if (total.executeStep()) out["total"] = total.getColumn(0).getInt64();
  }
  {
    SQLite::Statement page(db, std::string("SELECT ") + detail::summary_columns +
                                   " FROM session s" + where +
                                   " ORDER BY s.last_activity DESC, s.id DESC LIMIT ?8 OFFSET ?9");
    bind(page);
    page.bind(8, o.limit);
    page.bind(9, o.offset);
    while (page.executeStep()) out["sessions"].push_back(detail::summary_from(page));
  }
  {
    SQLite::Statement agents(db, "SELECT DISTINCT agent_name FROM session ORDER BY agent_name");
    while (agents.executeStep()) out["agents"].push_back(col(agents.getColumn(0)));
  }
  return out;
}

std::optional<json> session_summary(SQLite::Database& db, std::int64_t row) {
  SQLite::Statement q(db, std::string("SELECT ") + detail::summary_columns +
                              " FROM session s WHERE s.id = ?1");
  q.bind(1, row);
  if (!q.executeStep()) return std::nullopt;
  return detail::summary_from(q);
}

}  // namespace parley::db
