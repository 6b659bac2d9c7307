// An agent's state diagram from its stored definition, marked with what the sessions in the
// file did (parley/db/inspect.hpp). Moved here from parley-inspect so the web inspector draws
// the same picture.
#include <parley/db/inspect.hpp>

#include <utility>
#include <vector>

#include "inspect_detail.hpp"

namespace parley::db {

namespace {

using detail::col;

// The stored definition of `agent` ("" = the only agent in the file).
json load_definition(SQLite::Database& db, const std::string& path, const std::string& agent) {
  if (!db.tableExists("agent_definition"))
    throw inspect_error(path + " holds no agent definition (databases written before schema 3 "
                               "do not); start the agent once with --db " + path + " to store it");
  SQLite::Statement q(db, "SELECT agent_name, definition FROM agent_definition "
                          "WHERE ?1 = '' OR agent_name = ?1 ORDER BY agent_name");
  q.bind(1, agent);
  std::vector<std::pair<std::string, std::string>> found;
  while (q.executeStep()) found.emplace_back(col(q.getColumn(0)), col(q.getColumn(1)));
  if (found.empty())
    throw inspect_error(path + " holds no definition" +
                        (agent.empty() ? std::string() : " of agent '" + agent + "'") +
                        "; start the agent once with --db " + path + " to store it");
  if (found.size() > 1) {
    std::string names;
    for (const auto& f : found) names += (names.empty() ? "" : ", ") + f.first;
    throw inspect_error(path + " holds several agents (" + names + "); pick one with --agent NAME");
  }
  auto def = json::parse(found.front().second, nullptr, false);
  if (def.is_discarded())
    throw inspect_error("the definition of agent '" + found.front().first + "' in " + path +
                        " is not valid JSON; start the agent again to rewrite it");
  return def;
}

}  // namespace

std::string draw_diagram(SQLite::Database& db, const std::string& path, const diagram_request& r) {
  const bool one = r.session_row.has_value();
  const std::int64_t row = one ? *r.session_row : 0;
  std::string agent = r.agent;
  if (one) {
    SQLite::Statement who(db, "SELECT agent_name FROM session WHERE id = ?1");
    who.bind(1, row);
    if (!who.executeStep())
      throw no_such_session("no session with row " + std::to_string(row) + " in " + path);
    agent = col(who.getColumn(0));
  }
  const json def = load_definition(db, path, agent);
  const std::string name = def.value("agent", "");
  diagram_marks marks;
  // Visits: every session starts in the initial state, then each transition enters its dest.
  std::string initial;
  for (const auto& st : def.at("states"))
    if (st.value("initial", false)) initial = st.value("name", "");
  SQLite::Statement starts(db, "SELECT count(*) FROM session WHERE agent_name = ?1 AND (?2 = 0 OR id = ?2)");
  starts.bind(1, name);
  starts.bind(2, row);
  if (starts.executeStep() && !initial.empty() && starts.getColumn(0).getInt64() > 0)
    marks.visits[initial] += starts.getColumn(0).getInt64();
  SQLite::Statement moves(db,
                          "SELECT t.source_state, t.dest_state, count(*) FROM transition t "
                          "JOIN session s ON s.id = t.session_id WHERE s.agent_name = ?1 "
                          "AND (?2 = 0 OR s.id = ?2) GROUP BY t.source_state, t.dest_state");
  moves.bind(1, name);
  moves.bind(2, row);
  while (moves.executeStep()) {
    const auto src = col(moves.getColumn(0)), dest = col(moves.getColumn(1));
    marks.visits[dest] += moves.getColumn(2).getInt64();
    if (one) marks.taken.emplace(src, dest);
  }
  if (one) {
    SQLite::Statement cur(db, "SELECT current_state FROM session WHERE id = ?1");
    cur.bind(1, row);
    if (cur.executeStep()) marks.current = col(cur.getColumn(0));
  }
  try {
    return render_diagram(def, r.format, marks);
  } catch (const std::invalid_argument& e) {
    throw inspect_error("the definition of agent '" + name + "' in " + path + " is damaged (" +
                        e.what() + "); start the agent again to rewrite it");
  }
}

}  // namespace parley::db
