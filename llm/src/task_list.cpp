// Task planning for a reasoning run: BAF's task model, tools and messages.
#include "task_list.hpp"

#include <algorithm>

namespace parley::llm::detail {

namespace {

json function_schema(const char* name, const char* description, json properties,
                     json required) {
  return {{"type", "function"},
          {"function",
           {{"name", name},
            {"description", description},
            {"parameters",
             {{"type", "object"},
              {"properties", std::move(properties)},
              {"required", std::move(required)},
              {"additionalProperties", false}}}}}};
}

const char* marker(const std::string& status) {
  if (status == "completed") return "[x]";
  if (status == "skipped") return "[/]";
  if (status == "in_progress") return "[~]";
  return "[ ]";
}

}  // namespace

bool task_list::is_task_tool(const std::string& name) {
  return name == "add_tasks" || name == "complete_task" || name == "skip_task";
}

json task_list::tool_schemas() {
  const json id = {{"type", "integer"}, {"description", "the task's number (#N)"}};
  return json::array(
      {function_schema("add_tasks",
                       "Plans the work: adds one task per description to the task list.",
                       {{"descriptions",
                         {{"type", "array"},
                          {"items", {{"type", "string"}}},
                          {"description", "what each task is, one short sentence each"}}}},
                       {"descriptions"}),
       function_schema("complete_task", "Marks a task completed, with its result.",
                       {{"task_id", id},
                        {"result", {{"type", "string"}, {"description", "what was found or done"}}}},
                       {"task_id", "result"}),
       function_schema("skip_task", "Marks a task skipped, with the reason.",
                       {{"task_id", id},
                        {"reason", {{"type", "string"}, {"description", "why it is skipped"}}}},
                       {"task_id", "reason"})});
}

std::string task_list::to_prompt() const {
  std::string s =
      "\n\nTask planning: for a request that needs several steps, first call add_tasks with "
      "the steps, then work through them, calling complete_task (or skip_task with a reason) "
      "for each. Give your final answer only when every task is resolved.";
  if (tasks_.empty()) return s + "\nTask list: (empty)";
  s += "\nTask list:";
  for (const auto& t : tasks_) {
    s += "\n" + std::string(marker(t.status)) + " #" + std::to_string(t.id) + " " + t.description;
    if (!t.result.empty()) s += " -> " + t.result;
  }
  return s;
}

task* task_list::find(int id) {
  auto it = std::find_if(tasks_.begin(), tasks_.end(), [id](const task& t) { return t.id == id; });
  return it == tasks_.end() ? nullptr : &*it;
}

std::string task_list::call(const std::string& name, const json& args, json& event) {
  event = nullptr;
  if (name == "add_tasks") {
    const json& d = args.at("descriptions");
    if (d.empty()) return "ERROR: descriptions list is empty; pass at least one task.";
    json added = json::array();
    std::string out = "Added tasks:";
    std::string summary;
    for (const auto& x : d) {
      task t;
      t.id = static_cast<int>(tasks_.size()) + 1;
      t.description = x.get<std::string>();
      out += "\n#" + std::to_string(t.id) + ": " + t.description;
      summary += (summary.empty() ? "" : ", ") + ("#" + std::to_string(t.id) + " " + t.description);
      added.push_back({{"id", t.id}, {"description", t.description}});
      tasks_.push_back(std::move(t));
    }
    event = {{"kind", "task_added"},
             {"summary", "planned " + std::to_string(added.size()) + " task(s): " + summary},
             {"details", {{"tasks", std::move(added)}}}};
    return out;
  }
  const int id = args.at("task_id").get<int>();
  task* t = find(id);
  if (!t) return "ERROR: no task with id #" + std::to_string(id) + ".";
  const bool complete = name == "complete_task";
  const std::string text = args.at(complete ? "result" : "reason").get<std::string>();
  t->status = complete ? "completed" : "skipped";
  t->result = text;
  const std::string head = "task #" + std::to_string(id);
  event = {{"kind", complete ? "task_completed" : "task_skipped"},
           {"summary", std::string(complete ? "completed " : "skipped ") + head + " — " + text},
           {"details",
            {{"task_id", id}, {"description", t->description}, {complete ? "result" : "reason", text}}}};
  return "Task #" + std::to_string(id) + (complete ? " marked completed — " : " marked skipped — ") + text;
}

bool task_list::all_resolved() const {
  return std::all_of(tasks_.begin(), tasks_.end(), [](const task& t) {
    return t.status == "completed" || t.status == "skipped";
  });
}

json task_list::pending() const {
  json out = json::array();
  for (const auto& t : tasks_)
    if (t.status != "completed" && t.status != "skipped")
      out.push_back({{"id", t.id}, {"description", t.description}, {"status", t.status}});
  return out;
}

json task_list::snapshot() const {
  json out = json::array();
  for (const auto& t : tasks_)
    out.push_back({{"id", t.id}, {"description", t.description}, {"status", t.status}, {"result", t.result}});
  return out;
}

task_list task_list::from_json(const json& j) {
  task_list l;
  if (!j.is_array()) return l;
  for (const auto& x : j)
    l.tasks_.push_back({x.value("id", 0), x.value("description", ""), x.value("status", "pending"),
                        x.value("result", "")});
  return l;
}

}  // namespace parley::llm::detail
