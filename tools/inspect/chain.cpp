#include "chain.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <memory>
#include <set>

#include <parley/db/postgres_db_handler.hpp>
#include <parley/db/reader.hpp>

#include "queries.hpp"

namespace parley::inspect {

namespace {
using json = nlohmann::json;

struct message_row {
  std::string file, agent, session, direction, protocol, peer, id, causation, correlation,
      sender_agent, sender_session, content, status, timestamp;
  std::int64_t depth = 0, row_id = 0;
};

constexpr const char* select_rows =
    "SELECT a.id, a.direction, a.protocol, a.peer, a.message_id, a.causation_id, "
    "a.correlation_id, a.sender_agent, a.sender_session, a.depth, a.content, a.status, "
    "a.timestamp, s.agent_name, s.session_id FROM agent_message a "
    "JOIN session s ON s.id = a.session_id ";

struct file {
  std::string path, name;
  std::unique_ptr<db::reader> db;

  // Rows whose `column` (message_id or causation_id, both indexed) is `value`.
  std::vector<message_row> where(const char* column, const std::string& value) const {
    std::vector<message_row> out;
    for (const auto& q : db->query(std::string(select_rows) + "WHERE a." + column + " = $1 ORDER BY a.id",
                                   {value})) {
      message_row m;
      m.file = name;
      m.row_id = q.integer(0);
      m.direction = q.text(1);
      m.protocol = q.text(2);
      m.peer = q.text(3);
      m.id = q.text(4);
      m.causation = q.text(5);
      m.correlation = q.text(6);
      m.sender_agent = q.text(7);
      m.sender_session = q.text(8);
      m.depth = q.integer(9);
      m.content = q.text(10);
      m.status = q.text(11);
      m.timestamp = q.text(12);
      m.agent = q.text(13);
      m.session = q.text(14);
      out.push_back(std::move(m));
    }
    return out;
  }
};

std::string short_id(const std::string& id) { return id.size() > 8 ? id.substr(0, 8) : id; }
}  // namespace

std::vector<std::string> chain_headers() {
  return {"time", "file", "agent", "session", "dir", "id", "caused by", "depth", "status", "peer",
          "content"};
}

std::vector<row> chain(const std::vector<std::string>& paths, const std::string& message_id) {
  std::vector<file> files;
  // Files and PostgreSQL databases may be mixed: each is named by its file name, or by its
  // URI without the password.
  for (const auto& p : paths) {
    auto r = db::open_reader(p);
    auto name = db::is_postgres_url(p) ? r->where() : std::filesystem::path(p).filename().string();
    files.push_back({r->where(), std::move(name), std::move(r)});
  }
  auto find = [&](const char* column, const std::string& value) {
    std::vector<message_row> all;
    for (const auto& f : files)
      for (auto& m : f.where(column, value)) all.push_back(std::move(m));
    return all;
  };

  std::set<std::string> ids;
  // Causes: up the causation ids to the first message (a cycle, which lineage never makes,
  // ends at an id seen before).
  for (std::string cur = message_id; !cur.empty() && ids.insert(cur).second;) {
    std::string up;
    for (const auto& m : find("message_id", cur))
      if (!m.causation.empty()) up = m.causation;
    if (cur == message_id && up.empty() && find("message_id", cur).empty()) {
      std::string names;
      for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.path;
      throw inspect_error("no agent message has id '" + message_id + "' in " + names +
                          "; give the database of every agent on the way (parley-inspect A.db B.db "
                          "chain ID; files and postgresql:// URIs may be mixed), and an id from "
                          "the agent_message table");
    }
    cur = up;
  }
  // Effects: everything caused by the chain, breadth first.
  std::deque<std::string> todo(ids.begin(), ids.end());
  while (!todo.empty()) {
    const auto id = todo.front();
    todo.pop_front();
    for (const auto& m : find("causation_id", id))
      if (ids.insert(m.id).second) todo.push_back(m.id);
  }

  std::vector<message_row> all;
  for (const auto& id : ids)
    for (auto& m : find("message_id", id)) all.push_back(std::move(m));
  std::stable_sort(all.begin(), all.end(), [](const message_row& a, const message_row& b) {
    if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
    if (a.depth != b.depth) return a.depth < b.depth;
    return a.direction == "out" && b.direction != "out";  // sent before received
  });

  std::vector<row> out;
  for (const auto& m : all) {
    row r;
    const bool bad = m.status == "refused" || m.status == "duplicate";
    r.cells = {{m.timestamp, colour::dim},
               {m.file, colour::dim},
               {m.agent, colour::bold},
               {short_id(m.session)},
               {m.direction, m.direction == "out" ? colour::bot : colour::user},
               {short_id(m.id), m.id == message_id ? colour::accent : colour::none},
               {m.causation.empty() ? "-" : short_id(m.causation)},
               {std::to_string(m.depth)},
               {m.status, bad ? colour::warn : colour::none},
               {m.peer.empty() ? "-" : m.peer},
               {one_line(m.content)}};
    r.object = {{"timestamp", m.timestamp},       {"file", m.file},
                {"agent", m.agent},               {"session", m.session},
                {"direction", m.direction},       {"protocol", m.protocol},
                {"peer", m.peer},                 {"message_id", m.id},
                {"causation_id", m.causation},    {"correlation_id", m.correlation},
                {"sender_agent", m.sender_agent}, {"sender_session", m.sender_session},
                {"depth", m.depth},               {"status", m.status},
                {"content", m.content}};
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace parley::inspect
