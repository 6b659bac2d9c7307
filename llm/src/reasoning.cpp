// The reasoning state's body: BAF's plan/act/observe loop over a tool-calling model, with its
// defects fixed (see reasoning.hpp). One run per user message; the run lives in this
// coroutine's frame, and in the session's dictionary only while an approval is pending.
#include <parley/llm/reasoning.hpp>

#include <memory>

#include <boost/asio/this_coro.hpp>

#include <parley/agent.hpp>
#include <parley/session.hpp>
#include <parley/state.hpp>

#include "reasoning_run.hpp"

namespace parley::llm {

namespace {

using detail::definition;
using detail::run;
using detail::new_run_id;
using detail::parse_answer;
using detail::trimmed;

// The earlier conversation as chat messages (the current message excluded): the last `n` text
// messages. Streamed steps are chat rows too, so the window widens until it holds n of them.
net::awaitable<json> history(session& s, std::size_t n, const std::string& current) {
  const auto is_text = [](const chat_message& m) {
    // "str" is BAF's name for plain text; options, files, JSON and reasoning rows are left out.
    return m.type == to_string(reply_kind::text) || m.type == to_string(reply_kind::markdown);
  };
  std::vector<chat_message> texts;
  for (std::size_t window = (n + 1) * 8;; window *= 4) {
    auto rows = co_await s.chat_history(window);
    texts.clear();
    for (auto& m : rows)
      if (is_text(m)) texts.push_back(std::move(m));
    if (!texts.empty() && texts.back().is_user && texts.back().content == current) texts.pop_back();
    if (texts.size() >= n || rows.size() < window || window >= 65'536) break;
  }
  json out = json::array();
  const std::size_t from = texts.size() > n ? texts.size() - n : 0;
  for (std::size_t i = from; i < texts.size(); ++i)
    out.push_back({{"role", texts[i].is_user ? "user" : "assistant"}, {"content", texts[i].content}});
  co_return out;
}

net::awaitable<void> reason(std::shared_ptr<const definition> def, session& s) {
  run r(*def, s);
  std::exception_ptr failure;
  try {
    const json saved = s.get(def->key);
    if (saved.is_object() && saved.contains("asking")) {
      r.load(saved);
      const auto answer = parse_answer(s.event().text());
      if (!answer) {
        s.reply("Please answer Yes or No.");
        s.reply_options({"Yes", "No"});
        co_return;
      }
      const std::string id = saved["asking"].get<std::string>();
      r.decisions[id] = *answer;
      std::string name;
      for (const auto& c : r.calls)
        if (c.id == id) name = c.name;
      r.record("approval_answered", std::string(*answer ? "the user approved " : "the user declined ") + name,
               {{"tool_call_id", id}, {"name", name}, {"approved", *answer}});
      if (r.ask_approval()) co_return;
      co_await r.execute();
      ++r.step;
    } else {
      // Entered without a message (the session's start, a reset, a custom event): the state
      // waits for one.
      const std::string message = s.event().text();
      if (trimmed(message).empty()) co_return;
      r.run_id = new_run_id();
      if (def->o.history_messages > 0)
        r.messages = co_await history(s, def->o.history_messages, message);
      r.messages.push_back({{"role", "user"}, {"content", message}});
      r.record("reasoning_started", "reasoning started",
               {{"user_message", message},
                {"task_planning", def->o.task_planning},
                {"max_steps", def->o.max_steps}});
    }
    co_await r.loop();
  } catch (...) {
    failure = std::current_exception();
  }
  if (!failure) co_return;
  auto cs = co_await net::this_coro::cancellation_state;
  if (cs.cancelled() != net::cancellation_type::none) {
    // Reset or close: one row says so; no reply, nothing else of this run is recorded.
    if (!r.run_id.empty())
      r.s.save_reasoning_event("reasoning_step", {{"kind", "reasoning_cancelled"},
                                                  {"step", r.step},
                                                  {"summary", "reasoning cancelled"},
                                                  {"details", json::object()},
                                                  {"run_id", r.run_id},
                                                  {"step_number", r.step}});
    co_return;
  }
  std::rethrow_exception(failure);
}

}  // namespace

state& new_reasoning_state(agent& owner, std::string name, client& model, reasoning_options options) {
  auto& st = owner.new_state(name, options.initial);
  auto def = std::make_shared<const definition>(model, std::move(options), name);
  st.set_body([def](session& s) -> net::awaitable<void> { return reason(def, s); });
  if (def->o.self_loop) st.when_event(event_kind::text).go_to(st);
  return st;
}

}  // namespace parley::llm
