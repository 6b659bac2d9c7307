#pragma once
/// The reasoning state: a state whose body runs an LLM tool-calling loop for each user
/// message (BAF's reasoning_state, with its event kinds and task tools), records every step in
/// the reasoning_step table, and answers with the model's final text.
///
///   llm::client model(agent.io_context().get_executor(), llm::client_options::from(cfg));
///   llm::reasoning_options o;
///   o.tools = {llm::make_tool("add", "Adds two integers.", {...}, add)};
///   auto& think = llm::new_reasoning_state(agent, "think", model, o);
///
/// It is a free function of parley::llm taking the agent (the issue's
/// `agent.new_reasoning_state(name, llm, options)`): the runtime does not depend on llm.
///
/// Per message: `reasoning_started`, then up to max_steps model calls. Tool calls are checked
/// (unknown tool, invalid JSON, arguments against the schema, the same call repeated) and run
/// (in parallel with parallel_tools), each result recorded as `tool_result` (task tools as
/// `task_added` / `task_completed` / `task_skipped`). A final text while tasks are pending is
/// pushed back (`llm_text`, `pushback`, as a user-role message, never a mid-conversation
/// system message); otherwise it is the reply (`final_answer`). The loop also ends on
/// `max_steps`, `token_budget`, `empty_answer`, `llm_error`; `reasoning_finished` closes the
/// run. A reset or close of the session ends the run at once (`reasoning_cancelled`, no reply).
///
/// Human approval: before a call to a tool with needs_approval the run is saved in the session
/// (key "parley.reasoning.<state>"), the user is asked (reply_options Yes/No,
/// `approval_requested`) and the body ends. The state's self-transition on the next text
/// message re-enters it; the body reads the answer (`approval_answered`): Yes runs the call,
/// anything else gives the model the tool error "the user declined". With persisted sessions
/// a pending approval survives a restart.
///
/// Every row carries run_id, step (0-based model call), summary, the {kind, step, summary,
/// details} envelope as payload, and, for model calls, prompt/completion tokens and latency.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <parley/llm/client.hpp>
#include <parley/llm/tool.hpp>

namespace parley {
class agent;
class state;
}  // namespace parley

namespace parley::llm {

inline constexpr const char* default_reasoning_prompt =
    "You are a helpful assistant. Use the tools when they help; answer the user directly when "
    "you can. When you give your final answer, answer in plain text without calling a tool.";

struct reasoning_options {
  std::string system_prompt = default_reasoning_prompt;
  std::vector<tool> tools;
  int max_steps = 8;               ///< model calls per message
  bool task_planning = true;       ///< offer add_tasks / complete_task / skip_task
  bool stream_steps = true;        ///< send agent_reply_reasoning_step / task list frames
  bool parallel_tools = false;     ///< run one step's calls concurrently
  std::int64_t token_budget = 0;   ///< prompt + completion tokens per message; 0 = none
  std::size_t history_messages = 0;  ///< earlier chat messages given as context
  /// Repeats of one call (same tool, same arguments) in a run before it is pushed back.
  int max_identical_calls = 1;
  std::string fallback_message =
      "I couldn't reach a final answer within the step budget. Please rephrase or narrow your "
      "question.";
  bool initial = false;    ///< the agent's initial state
  bool self_loop = true;   ///< wire when_event(text).go_to(itself): each message runs the loop
  json model_extra = json::object();  ///< merged into each request (temperature, ...)
};

/// Makes the state `name` on `agent` with the reasoning body. `model` and the tools must live
/// as long as the agent. Call before agent.start(). @throws definition_error like new_state.
state& new_reasoning_state(agent& agent, std::string name, client& model,
                           reasoning_options options = {});

}  // namespace parley::llm
