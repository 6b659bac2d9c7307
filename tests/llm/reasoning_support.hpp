#pragma once
// A reasoning agent for tests: one reasoning state (initial) over a scripted OpenAI-compatible
// server, a real SQLite file in a temp folder, and a platform that keeps every reply with its
// kind. Rows are read back from the file.
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/llm/reasoning.hpp>
#include <parley/llm/typed_tool.hpp>

#include "../db/support.hpp"
#include "scripted_server.hpp"

namespace test {

// A chat completion asking for tool calls: {id, name, arguments text}.
struct call_spec {
  std::string id, name, arguments;
};
parley::json tool_calls_answer(const std::vector<call_spec>& calls, int prompt_tokens = 7,
                               int completion_tokens = 3);

// One reasoning_step row, as stored.
struct step_row {
  std::string kind, step_kind, summary, run_id;
  parley::json payload;
  long long step_number = -1, prompt_tokens = -1, completion_tokens = -1;
  double latency_ms = -1;
  long long chat_id = -1;
};

struct reasoner {
  // `db_path` empty: a file in a fresh temp folder. `persist`: agent.persist_sessions.
  explicit reasoner(parley::llm::reasoning_options o,
                    std::function<void(parley::agent&, parley::state&)> extra = {},
                    std::string db_path = {}, bool persist = false);
  ~reasoner();
  // Sends a text message to session `id`.
  void say(const std::string& id, const std::string& text);
  // Waits until `id` has `n` replies of kind text (limit 10 s).
  bool wait_texts(const std::string& id, std::size_t n, std::chrono::milliseconds limit = 10s);
  std::vector<std::string> texts(const std::string& id);
  // Replies of any kind (reasoning steps and task lists included), in order.
  std::vector<parley::reply> all(const std::string& id);
  // The step kinds of the reasoning_step rows, in order (after flushing the writer).
  std::vector<std::string> kinds();
  std::vector<step_row> rows();
  // The JSON bodies the server received.
  std::vector<parley::json> requests();

  scripted_server server;
  temp_dir dir;
  std::string path;
  parley::agent agent{"reasoner"};
  std::unique_ptr<parley::llm::client> model;
  std::shared_ptr<parley::db::sqlite_db_handler> db;
  std::shared_ptr<parley::callback_platform> platform;

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<parley::reply>> got_;
};

}  // namespace test
