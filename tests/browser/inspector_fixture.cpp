// Writes the database the inspector's browser test reads: a small help-desk agent run through
// the real runtime and the real parley::db::sqlite_db_handler, so every row is what an agent
// records. Usage: inspector_fixture PATH.db   (prints one JSON line: the users and ids made)
//
// What it holds: sessions of several users; chat; intent predictions with a parameter;
// transitions with their reasons (intent, condition, automatic); an error event (a body that
// throws); a reasoning run (LLM calls with tokens and latency, a tool call with arguments and
// its result, task list changes, a push-back) linked to the reply it led to; an agent message
// pair between two sessions of the same file; a chat message holding markup that must stay
// text.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include <parley/agent.hpp>
#include <parley/agent_link.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/log.hpp>

namespace {

using namespace std::chrono_literals;
using parley::json;
using parley::session;

// The markup the browser test checks stays text (it would set window.__pwned if it ran).
constexpr const char* evil = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";

// The reasoning run the "plan" state records: the same kinds and payloads as the reasoning
// state (llm/src/reasoning_run.cpp) writes, with the run's columns.
void record_run(session& s) {
  const std::string run = "run-" + parley::random_id().substr(0, 8);
  // A step that made no model call, and one that did (its usage and latency in the run's columns).
  auto step = [&](const std::string& kind, int n, const std::string& summary, json details) {
    s.save_reasoning_event("reasoning_step", {{"kind", kind}, {"step", n}, {"summary", summary},
                                              {"details", std::move(details)}, {"run_id", run},
                                              {"step_number", n}});
  };
  const auto tasks = [&](json list, int n) {
    s.save_reasoning_event("task_list_update",
                           {{"tasks", std::move(list)}, {"run_id", run}, {"step", n}, {"step_number", n}});
  };
  auto llm = [&](const std::string& kind, int n, const std::string& summary, json details, int p,
                 int c, double ms) {
    s.save_reasoning_event("reasoning_step",
                           {{"kind", kind}, {"step", n}, {"summary", summary}, {"details", std::move(details)},
                            {"run_id", run}, {"step_number", n}, {"prompt_tokens", p},
                            {"completion_tokens", c}, {"latency_ms", ms}});
  };
  const std::string question = s.event().text();
  step("reasoning_started", 0, "reasoning started",
       {{"user_message", question}, {"task_planning", true}, {"max_steps", 8}});
  llm("llm_tool_calls", 0, "calling 1 tool(s): add_tasks",
      {{"tool_calls", json::array({{{"id", "call_1"}, {"name", "add_tasks"},
                                    {"arguments", {{"descriptions", {"find a train", "book a hotel"}}}}}})}},
      412, 38, 812.5);
  step("task_added", 0, "planned 2 task(s): #1 find a train, #2 book a hotel",
       {{"tasks", json::array({{{"id", 1}, {"description", "find a train"}},
                               {{"id", 2}, {"description", "book a hotel"}}})}});
  tasks(json::array({{{"id", 1}, {"description", "find a train"}, {"status", "pending"}, {"result", nullptr}},
                     {{"id", 2}, {"description", "book a hotel"}, {"status", "pending"}, {"result", nullptr}}}),
        0);
  llm("llm_tool_calls", 1, "calling 1 tool(s): search_trains",
      {{"tool_calls", json::array({{{"id", "call_2"}, {"name", "search_trains"},
                                    {"arguments", {{"from", "Lyon"}, {"to", "Paris"}, {"date", "2026-12-01"}}}}})}},
      530, 41, 640.0);
  step("tool_result", 1, "search_trains returned (31 chars)",
       {{"name", "search_trains"},
        {"arguments", {{"from", "Lyon"}, {"to", "Paris"}, {"date", "2026-12-01"}}},
        {"content", "TGV 6604 at 07:04, 2 h, 49 EUR"},
        {"is_error", false},
        {"latency_ms", 12.0}});
  llm("llm_text", 2, "(intermediate) LLM proposed a final answer",
      {{"text", "Take the TGV 6604."}, {"is_final", false}}, 601, 12, 320.0);
  step("pushback", 2, "rejected: 2 task(s) still pending",
       {{"reason", "tasks_pending"},
        {"pending", json::array({{{"id", 1}, {"description", "find a train"}, {"status", "pending"}},
                                 {{"id", 2}, {"description", "book a hotel"}, {"status", "pending"}}})}});
  step("task_completed", 3, "completed task #1 — TGV 6604",
       {{"task_id", 1}, {"description", "find a train"}, {"result", "TGV 6604"}});
  step("task_skipped", 3, "skipped task #2 — no hotel tool",
       {{"task_id", 2}, {"description", "book a hotel"}, {"reason", "no hotel tool"}});
  tasks(json::array({{{"id", 1}, {"description", "find a train"}, {"status", "completed"}, {"result", "TGV 6604"}},
                     {{"id", 2}, {"description", "book a hotel"}, {"status", "skipped"}, {"result", "no hotel tool"}}}),
        3);
  llm("final_answer", 4, "final answer (40 chars)",
      {{"text", "Take the TGV 6604 at 07:04 (49 EUR)."}, {"is_final", true}}, 702, 20, 410.0);
  step("reasoning_finished", 4, "reasoning finished",
       {{"outcome", "answered"}, {"steps", 4}, {"total_tokens", 2356}});
  s.reply("Take the TGV 6604 at 07:04 (49 EUR).");
}

void define(parley::agent& agent) {
  auto& hello = agent.new_intent("hello", {"hello", "hi", "hey", "good morning"});
  auto& order = agent.new_intent("order", {"order 2 pizzas", "i want 2 pizzas", "2 pizzas please"});
  order.parameter("count", "2", "number");
  auto& plan = agent.new_intent("plan", {"plan my trip", "plan a trip to paris", "help me plan a trip"});
  auto& crash = agent.new_intent("crash", {"break please", "crash now", "make it break"});

  auto& initial = agent.new_state("initial", /*initial=*/true);
  auto& ready = agent.new_state("ready");
  auto& ordered = agent.new_state("ordered");
  auto& planning = agent.new_state("planning");
  auto& broken = agent.new_state("broken");

  initial.set_body([](session& s) { s.reply("Welcome to the help desk. Say hello."); });
  initial.when_intent_matched(hello).go_to(ready);
  ready.set_body([](session& s) { s.reply("How can I help? I can take orders and plan trips."); });
  ready.when_intent_matched(order)
      .with_condition([](session&) { return true; }, "the kitchen is open")
      .go_to(ordered);
  ready.when_intent_matched(plan).go_to(planning);
  ready.when_intent_matched(crash).go_to(broken);
  ordered.set_body([](session& s) { s.reply("Your order is on its way."); });
  ordered.go_to(ready);
  // No automatic way back: the run's answer closes the turn, so the run links to it (chat_id).
  planning.set_body(record_run);
  planning.when_intent_matched(hello).go_to(ready);
  broken.set_body([](session&) { throw std::runtime_error("the oven caught fire"); });
  broken.go_to(ready);
  agent.set_global_fallback_body([](session& s) { s.reply("Sorry, I did not get that."); });
}

// Replies per session, to wait for the agent to finish a conversation.
struct replies {
  std::mutex m;
  std::condition_variable cv;
  std::map<std::string, std::size_t> count;
  void got(const std::string& id) {
    { std::lock_guard l(m); ++count[id]; }
    cv.notify_all();
  }
  void wait(const std::string& id, std::size_t n) {
    std::unique_lock l(m);
    if (!cv.wait_for(l, 20s, [&] { return count[id] >= n; }))
      throw std::runtime_error("the agent gave session " + parley::session_tag(id) + " " +
                               std::to_string(count[id]) + " replies, expected " + std::to_string(n));
  }
};

}  // namespace

int main(int argc, char** argv) {
  // --big N: one more session (user "frank") of N turns, about 4 rows each, for a long timeline.
  std::size_t big = 0;
  if (argc == 4 && std::string_view(argv[2]) == "--big") big = std::stoul(argv[3]);
  if (argc != 2 && !(argc == 4 && big > 0)) {
    std::cerr << "usage: inspector_fixture PATH.db [--big TURNS] (the file is replaced)\n";
    return 2;
  }
  const std::string path = argv[1];
  std::filesystem::remove(path);
  try {
    replies got;
    parley::agent agent("helpdesk");
    agent.config().set("agent.threads", 2, "fixture");
    agent.config().set("log.level", "error", "fixture");
    define(agent);
    auto db = std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = path});
    agent.use_db(db);
    auto platform = std::make_shared<parley::callback_platform>(
        [&](session& s, const parley::reply&) { got.got(s.id()); }, "websocket");
    agent.use_platform(platform);
    agent.start();

    std::map<std::string, std::string> users = {
        {"alice", parley::random_id()}, {"bob", parley::random_id()},
        {"carol", parley::random_id()}, {"dave", parley::random_id()}, {"erin", parley::random_id()}};
    if (big) users["frank"] = parley::random_id();
    auto say = [&](const std::string& user, const std::string& text) {
      auto r = agent.receive_event(users.at(user), parley::event::text(text, true));
      if (!r) throw std::runtime_error("say: " + r.error);
    };
    std::map<std::string, std::shared_ptr<session>> sessions;
    for (const auto& [user, id] : users)
      sessions[user] = agent.get_or_create_session(id, platform.get(), user, "");

    // alice: hello, an order with a parameter (through a condition), the markup.
    say("alice", "hello");
    say("alice", "i want 3 pizzas");
    say("alice", evil);
    // bob: hello, a body that throws (an error event), then the reasoning run.
    say("bob", "hello");
    say("bob", "crash now");
    say("bob", "plan a trip to paris");
    // carol and dave: hello each, then an agent message from carol's to dave's and back.
    say("carol", "hello");
    say("dave", "hello");
    say("erin", "hi");
    // frank: hello, then turns the agent does not understand (message, prediction, reply).
    if (big) {
      say("frank", "hello");
      for (std::size_t i = 1; i < big; ++i) {
        say("frank", "message number " + std::to_string(i));
        // Within the session's queue (agent.queue_capacity): let the agent catch up.
        if (i % 500 == 0) got.wait(users.at("frank"), i);
      }
    }
    // Wait on replies each conversation certainly produces (greeting, hello's answer, ...).
    got.wait(users.at("alice"), 4);
    got.wait(users.at("bob"), 3);
    got.wait(users.at("carol"), 2);
    got.wait(users.at("dave"), 2);
    got.wait(users.at("erin"), 2);
    if (big) got.wait(users.at("frank"), big + 1);

    const std::string ask_id = parley::random_id(), answer_id = parley::random_id();
    const std::string conversation = parley::random_id();
    parley::agent_message_record out;
    out.direction = "out";
    out.protocol = "websocket";
    out.peer = "ws://127.0.0.1:8766/";
    out.lineage = {ask_id, "", conversation, "helpdesk", parley::session_tag(users.at("carol")), 1};
    out.content = "Which trains go from Lyon to Paris tomorrow?";
    out.status = "sent";
    db->save_agent_message(*sessions["carol"], out);
    auto in = out;
    in.direction = "in";
    in.peer = "helpdesk";
    in.status = "handled";
    db->save_agent_message(*sessions["dave"], in);
    parley::agent_message_record back;
    back.direction = "out";
    back.protocol = "websocket";
    back.peer = "helpdesk";
    back.lineage = {answer_id, ask_id, conversation, "helpdesk", parley::session_tag(users.at("dave")), 2};
    back.content = "TGV 6604 at 07:04.";
    back.status = "sent";
    db->save_agent_message(*sessions["dave"], back);
    auto back_in = back;
    back_in.direction = "in";
    back_in.peer = "ws://127.0.0.1:8766/";
    back_in.status = "handled";
    db->save_agent_message(*sessions["carol"], back_in);

    sessions.clear();
    agent.stop();
    agent.wait();
    db->close();
    json summary = {{"db", path}, {"agent", "helpdesk"}, {"users", json::array()}};
    for (const auto& [user, id] : users)
      summary["users"].push_back({{"user", user}, {"tag", parley::session_tag(id)}});
    std::cout << summary.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "inspector_fixture: " << e.what() << "\n";
    return 1;
  }
}
