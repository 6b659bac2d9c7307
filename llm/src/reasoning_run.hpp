#pragma once
// One reasoning run (the loop of one user message) and what a reasoning state knows, shared by
// the state's body (reasoning.cpp) and the run's steps (reasoning_run.cpp). Strand-only: a run
// lives in its body's coroutine frame, on the session's strand.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <parley/llm/reasoning.hpp>
#include <parley/session.hpp>

#include "task_list.hpp"

namespace parley::llm::detail {

// What a reasoning state knows, built once when the state is made.
struct definition {
  definition(client& m, reasoning_options opts, std::string state_name)
      : model(m), o(std::move(opts)), key("parley.reasoning." + state_name) {
    tools_json = json::array();
    for (const auto& t : o.tools) {
      by_name[t.name] = &t;
      tools_json.push_back({{"type", "function"},
                            {"function",
                             {{"name", t.name},
                              {"description", t.description},
                              {"parameters", t.parameters}}}});
    }
    if (o.task_planning)
      for (auto& t : task_list::tool_schemas()) tools_json.push_back(std::move(t));
    task_schemas = json::object();
    for (const auto& t : task_list::tool_schemas())
      task_schemas[t["function"]["name"].get<std::string>()] = t["function"]["parameters"];
  }
  client& model;
  reasoning_options o;
  std::string key;  // the session dictionary entry of a run waiting for an approval
  std::map<std::string, const tool*> by_name;
  json tools_json;
  json task_schemas;
};

// One run: the conversation with the model for one user message.
struct run {
  run(const definition& d, session& s) : def(d), o(d.o), s(s) {}
  const definition& def;
  const reasoning_options& o;
  session& s;
  std::string run_id;
  int step = 0;
  json messages = json::array();  // everything after the system prompt
  task_list tasks;
  std::int64_t tokens = 0;
  json seen = json::object();  // call key -> times called in this run
  std::vector<tool_call> calls;  // the step's calls, while they are being decided and run
  json decisions = json::object();  // call id -> approved (bool)

  json save() const;
  void load(const json& j);

  // Records one step event (and streams it when stream_steps is on).
  void record(const std::string& kind, std::string summary, json details,
              const chat_result* model_call = nullptr);
  void record_tasks();
  // The last row of a run, written before its reply so the reply links it.
  void finish(const std::string& outcome);

  std::string call_key(const tool_call& c) const { return c.name + "\n" + c.parsed.dump(); }

  // Why `c` must not run ("" when it may): its arguments, its tool, a repeat.
  std::string refusal(const tool_call& c, bool& repeated) const;

  // Asks about the first call that needs an approval not yet given; true when it asked.
  bool ask_approval();

  // Runs the step's calls (decided already) and appends their results.
  net::awaitable<void> execute();

  chat_request request() const;

  void reply_over_budget();

  // The loop, from `step` on. Returns when the run is over or waits for an approval.
  net::awaitable<void> loop();
};

// A fresh run id: 16 hex digits.
std::string new_run_id();
std::string trimmed(const std::string& s);
// Yes / No / neither, from the user's answer to an approval question.
std::optional<bool> parse_answer(const std::string& text);

}  // namespace parley::llm::detail
