// An agent's state diagram from its stored definition, marked with what the sessions in the
// file did (parley/db/inspect.hpp). Moved here from parley-inspect so the web inspector draws
// the same picture.
#include <parley/db/inspect.hpp>

#include <utility>
#include <vector>

#include "inspect_detail.hpp"

namespace parley::db {

namespace {

// The stored definition of `agent` ("" = the only agent in the database).
json load_definition(reader& db, const std::string& path, const std::string& agent) {
  if (!db.has_table("agent_definition"))
    throw inspect_error(path + " holds no agent definition (databases written before schema 3 "
                               "do not); start the agent once with --db " + path + " to store it");
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& q : db.query("SELECT agent_name, definition FROM agent_definition "
                                "WHERE $1 = '' OR agent_name = $1 ORDER BY agent_name",
                                {agent}))
    found.emplace_back(q.text(0), q.text(1));
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

std::string draw_diagram(reader& db, const diagram_request& r) {
  const std::string& path = db.where();
  const bool one = r.session_row.has_value();
  const std::int64_t row = one ? *r.session_row : 0;
  std::string agent = r.agent, marks_current;
  // One snapshot: the visits, the path and the current state agree.
  snapshot snap(db);
  if (one) {
    auto who = db.query("SELECT agent_name, current_state FROM session WHERE id = $1", {row});
    if (who.empty()) throw no_such_session("no session with row " + std::to_string(row) + " in " + path);
    agent = who.front().text(0);
    marks_current = who.front().text(1);
  }
  const json def = load_definition(db, path, agent);
  const std::string name = def.value("agent", "");
  diagram_marks marks;
  // Visits: every session starts in the initial state, then each transition enters its dest.
  std::string initial;
  for (const auto& st : def.at("states"))
    if (st.value("initial", false)) initial = st.value("name", "");
  auto starts = db.query("SELECT count(*) FROM session WHERE agent_name = $1 AND ($2 = 0 OR id = $2)",
                         {name, row});
  if (!starts.empty() && !initial.empty() && starts.front().integer(0) > 0)
    marks.visits[initial] += starts.front().integer(0);
  for (const auto& m : db.query("SELECT t.source_state, t.dest_state, count(*) FROM transition t "
                                "JOIN session s ON s.id = t.session_id WHERE s.agent_name = $1 "
                                "AND ($2 = 0 OR s.id = $2) GROUP BY t.source_state, t.dest_state",
                                {name, row})) {
    marks.visits[m.text(1)] += m.integer(2);
    if (one) marks.taken.emplace(m.text(0), m.text(1));
  }
  if (one) marks.current = marks_current;
  try {
    return render_diagram(def, r.format, marks);
  } catch (const std::invalid_argument& e) {
    throw inspect_error("the definition of agent '" + name + "' in " + path + " is damaged (" +
                        e.what() + "); start the agent again to rewrite it");
  }
}

}  // namespace parley::db
