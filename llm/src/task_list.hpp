#pragma once
// The task list of one reasoning run and its three tools (BAF's task_tools): add_tasks,
// complete_task, skip_task. The loop handles these calls itself: the list is part of the run
// (saved with it while an approval is pending), so the tools are not closures over it.
#include <string>
#include <vector>

#include <parley/net.hpp>

namespace parley::llm::detail {

struct task {
  int id = 0;
  std::string description;
  std::string status = "pending";  // pending | in_progress | completed | skipped
  std::string result;
};

class task_list {
 public:
  static bool is_task_tool(const std::string& name);
  // The three tools' OpenAI schemas ({"type":"function","function":{...}}).
  static json tool_schemas();
  // Guidance for the system prompt, with the list as it stands.
  std::string to_prompt() const;

  // Runs a task tool. `event` gets the step event to record (kind, summary, details), or
  // stays null when the call failed; returns the tool result the model reads.
  std::string call(const std::string& name, const json& args, json& event);

  bool all_resolved() const;
  json pending() const;   // [{id, description, status}] of unresolved tasks
  json snapshot() const;  // [{id, description, status, result}]
  json to_json() const { return snapshot(); }
  static task_list from_json(const json& j);
  bool empty() const { return tasks_.empty(); }

 private:
  task* find(int id);
  std::vector<task> tasks_;
};

}  // namespace parley::llm::detail
