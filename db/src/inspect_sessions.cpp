// The inspectors' sessions list and session summaries (parley/db/inspect.hpp).
#include <parley/db/inspect.hpp>

#include <algorithm>
#include <cctype>
#include <vector>

#include <parley/log.hpp>

#include "inspect_detail.hpp"

namespace parley::db {

namespace detail {

// The summary's columns, for `FROM session s`; summary_from() reads them from column 0 on.
// The counts are correlated subqueries, each a range scan of its table's (session_id, id) index
// for one session: a page of 50 sessions costs 150 range scans, whatever the database's size.
const char* const summary_columns =
    "s.id, s.agent_name, s.session_id, s.username, s.session_name, s.platform_name, "
    "s.timestamp, s.last_activity, s.current_state, s.closed_reason, "
    "(SELECT count(*) FROM chat c WHERE c.session_id = s.id AND c.is_user <> 0), "
    "(SELECT count(*) FROM event e WHERE e.session_id = s.id "
    " AND (e.event = 'error' OR e.event LIKE '%\\_error' ESCAPE '\\')), "
    "(SELECT coalesce(sum(coalesce(r.prompt_tokens, 0) + coalesce(r.completion_tokens, 0)), 0) "
    " FROM reasoning_step r WHERE r.session_id = s.id)";

json summary_from(const read_row& r) {
  return {{"row", r.integer(0)},
          {"agent", r.text(1)},
          // The tag stands for the id, which is a bearer secret and never leaves this function.
          {"tag", session_tag(r.text(2))},
          {"user", r.text(3)},
          {"name", r.text(4)},
          {"platform", r.text(5)},
          {"started", r.text(6)},
          {"last_activity", r.text(7)},
          {"state", r.text(8)},
          {"closed", r.nullable_text(9)},
          {"turns", r.integer(10)},
          {"errors", r.integer(11)},
          {"tokens", r.integer(12)}};
}

}  // namespace detail

namespace {

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
std::vector<std::int64_t> rows_with_tag(reader& db, const std::string& tag) {
  std::vector<std::int64_t> rows;
  for (const auto& r : db.query("SELECT id, session_id FROM session"))
    if (session_tag(r.text(1)) == tag) rows.push_back(r.integer(0));
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

json list_sessions(reader& db, const session_query& o) {
  if (o.limit < 1 || o.limit > 1000)
    throw inspect_error("limit must be between 1 and 1000, got " + std::to_string(o.limit));
  if (o.offset < 0) throw inspect_error("offset must be 0 or more, got " + std::to_string(o.offset));
  const std::string since = o.since.empty() ? std::string() : time_bound("since", o.since);
  const std::string until = o.until.empty() ? std::string() : time_bound("until", o.until);

  // One snapshot: the total and the page agree.
  snapshot snap(db);
  // q: the exact id, a tag, or part of the user name (any case: SQLite's LIKE ignores the
  // case of ASCII letters, PostgreSQL's ILIKE does the same).
  std::string tag_rows = "0";
  if (const auto tag = as_tag(o.q); !tag.empty())
    for (auto r : rows_with_tag(db, tag)) tag_rows += "," + std::to_string(r);
  const char* like = db.dialect() == dialect::postgresql ? "ILIKE" : "LIKE";
  // until: the start's first characters, as many as the bound has, so that a prefix covers its
  // whole span (2026-11-29 takes in all of that day).
  const std::string where =
      std::string(" WHERE ($1 = '' OR s.session_id = $1 OR s.username ") + like +
      " '%' || $2 || '%' ESCAPE '\\' OR s.id IN (" + tag_rows + ")) "
      "AND ($3 = '' OR s.username = $3) AND ($4 = '' OR s.current_state = $4) "
      "AND ($5 = '' OR s.agent_name = $5) AND ($6 = '' OR s.last_activity >= $6) "
      "AND ($7 = '' OR substr(s.timestamp, 1, length($7)) <= $7)";
  std::vector<read_param> params = {o.q, like_escaped(o.q), o.user, o.state, o.agent, since, until};
  json out = {{"total", 0}, {"offset", o.offset}, {"limit", o.limit},
              {"agents", json::array()}, {"sessions", json::array()}};
  if (auto total = db.query("SELECT count(*) FROM session s" + where, params); !total.empty())
    out["total"] = total.front().integer(0);
  params.emplace_back(o.limit);
  params.emplace_back(o.offset);
  for (const auto& r : db.query(std::string("SELECT ") + detail::summary_columns + " FROM session s" +
                                    where + " ORDER BY s.last_activity DESC, s.id DESC LIMIT $8 OFFSET $9",
                                params))
    out["sessions"].push_back(detail::summary_from(r));
  for (const auto& r : db.query("SELECT DISTINCT agent_name FROM session ORDER BY agent_name"))
    out["agents"].push_back(r.text(0));
  return out;
}

std::optional<json> session_summary(reader& db, std::int64_t row) {
  auto rows = db.query(std::string("SELECT ") + detail::summary_columns + " FROM session s WHERE s.id = $1",
                       {row});
  if (rows.empty()) return std::nullopt;
  return detail::summary_from(rows.front());
}

}  // namespace parley::db
