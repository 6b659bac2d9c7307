#include "reasoning_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

using namespace std::chrono_literals;
using parley::json;

namespace test {

json tool_calls_answer(const std::vector<call_spec>& calls, int prompt_tokens,
                       int completion_tokens) {
  json tc = json::array();
  for (const auto& c : calls)
    tc.push_back({{"id", c.id},
                  {"type", "function"},
                  {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return {{"id", "chatcmpl-t"},
          {"object", "chat.completion"},
          {"model", "scripted-model"},
          {"choices", json::array({{{"index", 0},
                                    {"finish_reason", "tool_calls"},
                                    {"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tc}}}}})},
          {"usage", {{"prompt_tokens", prompt_tokens},
                     {"completion_tokens", completion_tokens},
                     {"total_tokens", prompt_tokens + completion_tokens}}}};
}

reasoner::reasoner(parley::llm::reasoning_options o,
                   std::function<void(parley::agent&, parley::state&)> extra, std::string db_path,
                   bool persist)
    : path(db_path.empty() ? dir.file("reasoning.db") : std::move(db_path)) {
  agent.config().set("agent.threads", 2, "test");
  agent.config().set("log.level", "error", "test");
  parley::llm::client_options co;
  co.base_url = server.base_url();
  co.model = "scripted-model";
  co.timeout = 10s;
  co.max_retries = 0;
  model = std::make_unique<parley::llm::client>(agent.io_context().get_executor(), co);
  o.initial = true;
  auto& st = parley::llm::new_reasoning_state(agent, "think", *model, std::move(o));
  if (extra) extra(agent, st);
  db = std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = path});
  agent.use_db(db);
  platform = std::make_shared<parley::callback_platform>(
      [this](parley::session& s, const parley::reply& r) {
        {
          std::lock_guard l(m_);
          got_[s.id()].push_back(r);
        }
        cv_.notify_all();
      },
      "test");
  agent.use_platform(platform);
  agent.persist_sessions(persist);
  agent.start();
}

reasoner::~reasoner() {
  agent.stop();
  agent.wait();
}

void reasoner::say(const std::string& id, const std::string& text) {
  agent.get_or_create_session(id, platform.get(), "alice", "test");
  auto r = agent.receive_event(id, parley::event::text(text, true));
  if (!r) throw std::runtime_error("say: " + r.error);
}

std::vector<std::string> reasoner::texts(const std::string& id) {
  std::lock_guard l(m_);
  std::vector<std::string> out;
  for (const auto& r : got_[id])
    if (r.kind == parley::reply_kind::text) out.push_back(r.text);
  return out;
}

bool reasoner::wait_texts(const std::string& id, std::size_t n, std::chrono::milliseconds limit) {
  std::unique_lock l(m_);
  return cv_.wait_for(l, limit, [&] {
    std::size_t k = 0;
    for (const auto& r : got_[id]) k += r.kind == parley::reply_kind::text;
    return k >= n;
  });
}

std::vector<parley::reply> reasoner::all(const std::string& id) {
  std::lock_guard l(m_);
  return got_[id];
}

std::vector<step_row> reasoner::rows() {
  db->flush();
  SQLite::Database file(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(file,
                      "SELECT kind, coalesce(step_kind, ''), coalesce(summary, ''), run_id, payload, "
                      "coalesce(step_number, -1), coalesce(prompt_tokens, -1), "
                      "coalesce(completion_tokens, -1), coalesce(latency_ms, -1), "
                      "coalesce(chat_id, -1) FROM reasoning_step ORDER BY id");
  std::vector<step_row> out;
  while (q.executeStep()) {
    step_row r;
    r.kind = q.getColumn(0).getString();
    r.step_kind = q.getColumn(1).getString();
    r.summary = q.getColumn(2).getString();
    r.run_id = q.getColumn(3).getString();
    r.payload = json::parse(q.getColumn(4).getString(), nullptr, false);
    r.step_number = q.getColumn(5).getInt64();
    r.prompt_tokens = q.getColumn(6).getInt64();
    r.completion_tokens = q.getColumn(7).getInt64();
    r.latency_ms = q.getColumn(8).getDouble();
    r.chat_id = q.getColumn(9).getInt64();
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> reasoner::kinds() {
  std::vector<std::string> out;
  for (const auto& r : rows())
    if (r.kind == "reasoning_step") out.push_back(r.step_kind);
  return out;
}

std::vector<json> reasoner::requests() {
  std::vector<json> out;
  for (const auto& r : server.requests()) out.push_back(json::parse(r.body, nullptr, false));
  return out;
}

}  // namespace test
