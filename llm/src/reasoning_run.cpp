// The steps of one reasoning run: the model call, the checks and runs of tool calls, the
// push-backs, the approval question, and the rows each step records.
#include "reasoning_run.hpp"

#include <cctype>
#include <random>

#include <parley/llm/typed_tool.hpp>

#include "gen_ai_spans.hpp"
#include "tool_runner.hpp"

namespace parley::llm::detail {

namespace {

constexpr std::size_t max_result_chars = 4000;  // in tool_result rows (BAF's limit)

std::string truncated(const std::string& s) {
  if (s.size() <= max_result_chars) return s;
  return s.substr(0, max_result_chars) + "\n... [truncated, " + std::to_string(s.size()) +
         " chars total]";
}

json call_to_json(const tool_call& c) {
  return {{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}, {"parse_error", c.parse_error}};
}

tool_call call_from_json(const json& j) {
  tool_call c;
  c.id = j.value("id", "");
  c.name = j.value("name", "");
  c.arguments = j.value("arguments", "{}");
  c.parse_error = j.value("parse_error", "");
  if (c.parse_error.empty()) c.parsed = json::parse(c.arguments, nullptr, false);
  if (c.parsed.is_discarded()) c.parsed = nullptr;
  return c;
}

}  // namespace

std::string new_run_id() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id(16, '0');
  auto v = gen();
  for (auto& c : id) {
    c = hex[v & 15];
    v >>= 4;
  }
  return id;
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::optional<bool> parse_answer(const std::string& text) {
  std::string a = trimmed(text);
  for (auto& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!a.empty() && (a.back() == '.' || a.back() == '!')) a.pop_back();
  for (const char* y : {"yes", "y", "ok", "okay", "approve", "allow", "sure"})
    if (a == y) return true;
  for (const char* n : {"no", "n", "deny", "decline", "reject", "cancel"})
    if (a == n) return false;
  return std::nullopt;
}

json run::save() const {
  json calls_json = json::array();
  for (const auto& c : calls) calls_json.push_back(call_to_json(c));
  return {{"run_id", run_id}, {"step", step},   {"messages", messages}, {"tasks", tasks.to_json()},
          {"tokens", tokens}, {"seen", seen},   {"calls", calls_json},  {"decisions", decisions}};
}

void run::load(const json& j) {
  run_id = j.value("run_id", "");
  step = j.value("step", 0);
  messages = j.value("messages", json::array());
  tasks = task_list::from_json(j.value("tasks", json::array()));
  tokens = j.value("tokens", std::int64_t{0});
  seen = j.value("seen", json::object());
  decisions = j.value("decisions", json::object());
  calls.clear();
  for (const auto& c : j.value("calls", json::array())) calls.push_back(call_from_json(c));
}

// Records one step event (and streams it when stream_steps is on).
void run::record(const std::string& kind, std::string summary, json details,
            const chat_result* model_call) {
  json env = {{"kind", kind}, {"step", step}, {"summary", std::move(summary)}, {"details", std::move(details)}};
  json row = env;
  row["run_id"] = run_id;
  row["step_number"] = step;
  if (model_call) {
    if (model_call->usage) {
      row["prompt_tokens"] = model_call->usage->prompt_tokens;
      row["completion_tokens"] = model_call->usage->completion_tokens;
    }
    row["latency_ms"] = static_cast<double>(model_call->latency.count());
  }
  s.save_reasoning_event("reasoning_step", std::move(row));
  // As a reply: besides the frame, a chat row, from which a WebSocket client that comes back
  // replays the trace as it streamed. The reasoning_step row is the structured record.
  if (o.stream_steps) s.reply_reasoning_step(std::move(env));
}

void run::record_tasks() {
  json snap = tasks.snapshot();
  s.save_reasoning_event("task_list_update",
                         {{"tasks", snap}, {"run_id", run_id}, {"step", step}, {"step_number", step}});
  if (o.stream_steps) s.reply_task_list(std::move(snap));
}

// The last row of a run, written before its reply so the reply links it.
void run::finish(const std::string& outcome) {
  record("reasoning_finished", "reasoning finished",
         {{"final_task_list", tasks.snapshot()}, {"outcome", outcome}, {"steps", step},
          {"total_tokens", tokens}});
  s.erase(def.key);
}

// Why `c` must not run ("" when it may): its arguments, its tool, a repeat.
std::string run::refusal(const tool_call& c, bool& repeated) const {
  repeated = false;
  if (!c.arguments_valid())
    return "ERROR: the arguments of '" + c.name + "' are not valid JSON (" + c.parse_error +
           "): " + c.arguments + ". Call it again with a JSON object of its parameters.";
  const bool task_tool = o.task_planning && task_list::is_task_tool(c.name);
  const json* schema = nullptr;
  if (task_tool) {
    schema = &def.task_schemas.at(c.name);
  } else if (auto it = def.by_name.find(c.name); it != def.by_name.end()) {
    schema = &it->second->parameters;
  } else {
    std::string names;
    for (const auto& t : def.tools_json)
      names += (names.empty() ? "" : ", ") + t["function"]["name"].get<std::string>();
    return "ERROR: there is no tool named '" + c.name + "'. The tools are: " +
           (names.empty() ? std::string("none") : names) + ".";
  }
  if (auto err = validate_arguments(*schema, c.parsed); !err.empty())
    return "ERROR: invalid arguments for '" + c.name + "': " + err + ".";
  if (!task_tool && seen.value(call_key(c), 0) >= o.max_identical_calls) {
    repeated = true;
    return "ERROR: you already called '" + c.name +
           "' with these same arguments in this request; calling it again gives the same "
           "result. Use that result, change the arguments, or give your answer.";
  }
  return {};
}

// Asks about the first call that needs an approval not yet given; true when it asked.
bool run::ask_approval() {
  for (const auto& c : calls) {
    auto it = def.by_name.find(c.name);
    if (it == def.by_name.end() || !it->second->needs_approval || decisions.contains(c.id))
      continue;
    bool repeated = false;
    if (!refusal(c, repeated).empty()) continue;  // it will not run anyway
    json j = save();
    j["asking"] = c.id;
    s.set(def.key, std::move(j));
    record("approval_requested", "asking the user to approve " + c.name,
           {{"tool_call_id", c.id}, {"name", c.name}, {"arguments", c.parsed}});
    s.reply("May I run the tool '" + c.name + "' with " + c.parsed.dump() + "?");
    s.reply_options({"Yes", "No"});
    return true;
  }
  return false;
}

// Runs the step's calls (decided already) and appends their results.
net::awaitable<void> run::execute() {
  struct slot {
    std::string content;
    bool is_error = false;
    int job = -1;  // index in jobs, -1 when answered without running
    json task_event;
    bool repeated = false;
    std::string error_type;  // for the call's trace span
  };
  const auto step_started = wall_clock::now();
  std::vector<slot> slots(calls.size());
  std::vector<detail::tool_job> jobs;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    auto& sl = slots[i];
    sl.content = refusal(c, sl.repeated);
    if (!sl.content.empty()) sl.error_type = sl.repeated ? "repeated_call" : "invalid_call";
    if (sl.content.empty() && decisions.contains(c.id) && !decisions[c.id].get<bool>()) {
      sl.content = "ERROR: the user declined to run '" + c.name + "'.";
      sl.error_type = "declined";
    }
    if (c.arguments_valid()) seen[call_key(c)] = seen.value(call_key(c), 0) + 1;
    if (!sl.content.empty()) {
      sl.is_error = true;
    } else if (o.task_planning && task_list::is_task_tool(c.name)) {
      sl.content = tasks.call(c.name, c.parsed, sl.task_event);
      sl.is_error = sl.content.rfind("ERROR", 0) == 0;
    } else {
      sl.job = static_cast<int>(jobs.size());
      jobs.push_back({def.by_name.at(c.name), c.parsed});
    }
  }
  std::vector<detail::tool_outcome> outcomes;
  if (!jobs.empty()) outcomes = co_await detail::run_tools(std::move(jobs), o.parallel_tools);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const auto& c = calls[i];
    auto& sl = slots[i];
    double latency = 0;
    auto started = step_started;
    if (sl.job >= 0) {
      const auto& out = outcomes[static_cast<std::size_t>(sl.job)];
      sl.content = out.content;
      sl.is_error = out.is_error;
      latency = out.latency_ms;
      started = out.started;
    }
    if (sl.is_error && sl.error_type.empty()) sl.error_type = "tool_error";
    if (s.turn_span())
      trace_tool_call(s, {.call = c, .started = started, .latency_ms = latency,
                          .result = sl.content, .error_type = sl.error_type});
    messages.push_back({{"role", "tool"}, {"tool_call_id", c.id}, {"name", c.name}, {"content", sl.content}});
    if (sl.repeated)
      record("pushback", "rejected: " + c.name + " called again with the same arguments",
             {{"reason", "repeated_call"}, {"name", c.name}, {"arguments", c.parsed},
              {"times", seen.value(call_key(c), 0)}});
    if (!sl.task_event.is_null()) {
      record(sl.task_event["kind"].get<std::string>(), sl.task_event["summary"].get<std::string>(),
             sl.task_event["details"]);
      record_tasks();
    } else if (!(o.task_planning && task_list::is_task_tool(c.name)) || sl.is_error) {
      json details = {{"name", c.name},
                      {"arguments", c.arguments_valid() ? c.parsed : json(c.arguments)},
                      {"content", truncated(sl.content)},
                      {"is_error", sl.content.rfind("ERROR", 0) == 0},
                      {"latency_ms", latency}};
      record("tool_result", c.name + " returned (" + std::to_string(sl.content.size()) + " chars)",
             std::move(details));
    }
  }
  calls.clear();
  decisions = json::object();
}

chat_request run::request() const {
  chat_request req;
  std::string system = o.system_prompt;
  if (o.task_planning) system += tasks.to_prompt();
  req.messages = json::array({{{"role", "system"}, {"content", system}}});
  for (const auto& m : messages) req.messages.push_back(m);
  if (!def.tools_json.empty()) req.tools = def.tools_json;
  req.extra = o.model_extra;
  return req;
}

void run::reply_over_budget() {
  record("token_budget", "token budget exhausted (" + std::to_string(tokens) + " of " +
                             std::to_string(o.token_budget) + " tokens)",
         {{"token_budget", o.token_budget}, {"tokens_used", tokens}, {"pending", tasks.pending()}});
  finish("token_budget");
  s.reply("I stopped working on this request: it used " + std::to_string(tokens) +
          " tokens, more than its budget of " + std::to_string(o.token_budget) +
          ". Please ask a narrower question.");
}

// The loop, from `step` on. Returns when the run is over or waits for an approval.
net::awaitable<void> run::loop() {
  for (; step < o.max_steps; ++step) {
    chat_result res;
    chat_request req = request();
    std::optional<span> chat_span = start_chat_span(s, def.model, req);
    try {
      res = co_await def.model.chat(std::move(req));
      end_chat_span(s, chat_span, res);
    } catch (const error& e) {
      fail_chat_span(s, chat_span, e);
      if (e.kind() == error_kind::cancelled) throw;
      record("llm_error", std::string("the model call failed: ") + std::string(to_string(e.kind())),
             {{"error", e.what()}, {"error_kind", std::string(to_string(e.kind()))}, {"status", e.status()}});
      finish("llm_error");
      s.reply(std::string("ERROR: reasoning failed (") + e.what() + ").");
      co_return;
    }
    if (res.usage) tokens += res.usage->prompt_tokens + res.usage->completion_tokens;
    const bool over_budget = o.token_budget > 0 && tokens > o.token_budget;
    if (!res.tool_calls.empty()) {
      json list = json::array();
      json echoed = json::array();
      std::string names;
      for (const auto& c : res.tool_calls) {
        list.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments_valid() ? c.parsed : json(c.arguments)}});
        // Servers (Ollama) refuse to read back arguments that are not JSON.
        echoed.push_back({{"id", c.id}, {"type", "function"},
                          {"function", {{"name", c.name}, {"arguments", c.arguments_valid() ? c.arguments : "{}"}}}});
        names += (names.empty() ? "" : ", ") + c.name;
      }
      record("llm_tool_calls", "calling " + std::to_string(res.tool_calls.size()) + " tool(s): " + names,
             {{"tool_calls", std::move(list)}}, &res);
      if (over_budget) {
        reply_over_budget();
        co_return;
      }
      json assistant = {{"role", "assistant"}, {"tool_calls", std::move(echoed)}};
      assistant["content"] = res.text.empty() ? json() : json(res.text);
      messages.push_back(std::move(assistant));
      calls = res.tool_calls;
      decisions = json::object();
      if (ask_approval()) co_return;
      co_await execute();
      continue;
    }
    const std::string text = trimmed(res.text);
    if (text.empty()) {
      record("empty_answer", "the model gave an empty answer",
             {{"finish_reason", res.finish_reason}}, &res);
      finish("empty_answer");
      s.reply("The model gave an empty answer. Please try again, or rephrase your question.");
      co_return;
    }
    if (o.task_planning && !tasks.all_resolved()) {
      record("llm_text", "(intermediate) LLM proposed a final answer",
             {{"text", text}, {"is_final", false}}, &res);
      if (over_budget) {
        reply_over_budget();
        co_return;
      }
      const json pending = tasks.pending();
      std::string list;
      for (const auto& t : pending)
        list += (list.empty() ? "" : ", ") + ("#" + std::to_string(t["id"].get<int>()) + " (" +
                                              t["description"].get<std::string>() + ")");
      record("pushback", "rejected: " + std::to_string(pending.size()) + " task(s) still pending",
             {{"reason", "tasks_pending"}, {"pending", pending}});
      messages.push_back({{"role", "assistant"}, {"content", text}});
      // A user-role message: strict chat templates reject a system message mid-conversation.
      messages.push_back(
          {{"role", "user"},
           {"content", "[task list check] You returned a final answer but the task list still "
                       "has unresolved tasks: " + list +
                           ". Either finish them with the available tools and call "
                           "`complete_task`, or call `skip_task` with a brief reason. Do not "
                           "produce a final answer again until every task is resolved."}});
      continue;
    }
    record("final_answer", "final answer (" + std::to_string(text.size()) + " chars)",
           {{"text", text}, {"is_final", true}}, &res);
    finish("answered");
    s.reply(text);
    co_return;
  }
  record("max_steps", "step budget exhausted (" + std::to_string(o.max_steps) + " steps)",
         {{"max_steps", o.max_steps}, {"pending", tasks.pending()}});
  finish("max_steps");
  s.reply(o.fallback_message);
}

}  // namespace parley::llm::detail
