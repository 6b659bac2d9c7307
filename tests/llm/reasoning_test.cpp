// The reasoning state against a scripted OpenAI-compatible server: every branch of the loop,
// approval, cancellation on reset and close, and the rows read back from the SQLite file.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "reasoning_support.hpp"

using namespace std::chrono_literals;
using parley::json;
namespace net = boost::asio;
namespace llm = parley::llm;
using test::call_spec;
using test::exchange;
using test::tool_calls_answer;

namespace {

llm::tool adder(std::atomic<int>* calls = nullptr) {
  return llm::make_tool("add", "Adds two integers.",
                        {llm::param::integer("a", "the first"), llm::param::integer("b", "the second")},
                        [calls](const llm::tool_args& a) {
                          if (calls) ++*calls;
                          return a.get<int>("a") + a.get<int>("b");
                        });
}

llm::reasoning_options plain(std::vector<llm::tool> tools = {}) {
  llm::reasoning_options o;
  o.task_planning = false;
  o.tools = std::move(tools);
  return o;
}

// The tool messages of a request, in order.
std::vector<std::string> tool_contents(const json& request) {
  std::vector<std::string> out;
  for (const auto& m : request["messages"])
    if (m["role"] == "tool") out.push_back(m["content"].get<std::string>());
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST_CASE("a tool call, its result and the final answer are recorded, linked and streamed") {
  std::atomic<int> calls{0};
  test::reasoner r(plain({adder(&calls)}));
  r.server.push(exchange::json_body(tool_calls_answer({{"c1", "add", R"({"a":2,"b":3})"}}, 11, 4)));
  r.server.push(exchange::json_body(test::completion("2 + 3 = 5")));
  r.say("s", "what is 2+3?");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s") == std::vector<std::string>{"2 + 3 = 5"});
  CHECK(calls == 1);

  const auto reqs = r.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["messages"][0]["role"] == "system");
  CHECK(reqs[0]["messages"][1] == json{{"role", "user"}, {"content", "what is 2+3?"}});
  CHECK(reqs[0]["tools"][0]["function"]["name"] == "add");
  CHECK(reqs[0]["tools"].size() == 1);  // no task tools without task planning
  const auto& echoed = reqs[1]["messages"][2];
  CHECK(echoed["role"] == "assistant");
  CHECK(echoed["tool_calls"][0]["id"] == "c1");
  CHECK(tool_contents(reqs[1]) == std::vector<std::string>{"5"});

  const auto rows = r.rows();
  std::vector<std::string> kinds;
  for (const auto& row : rows) kinds.push_back(row.step_kind);
  CHECK(kinds == std::vector<std::string>{"reasoning_started", "llm_tool_calls", "tool_result",
                                          "final_answer", "reasoning_finished"});
  const std::string run = rows[0].run_id;
  CHECK(run.size() == 16);
  for (const auto& row : rows) {
    CHECK(row.run_id == run);
    CHECK(row.chat_id > 0);  // linked to the reply
    CHECK(row.payload["kind"] == row.step_kind);
  }
  CHECK(rows[1].step_number == 0);
  CHECK(rows[1].prompt_tokens == 11);
  CHECK(rows[1].completion_tokens == 4);
  CHECK(rows[1].latency_ms >= 0);
  CHECK(rows[1].payload["details"]["tool_calls"][0]["arguments"] == json{{"a", 2}, {"b", 3}});
  CHECK(rows[2].payload["details"]["content"] == "5");
  CHECK(rows[2].payload["details"]["is_error"] == false);
  CHECK(rows[2].summary == "add returned (1 chars)");
  CHECK(rows[3].step_number == 1);
  CHECK(rows[3].prompt_tokens == 7);
  CHECK(rows[4].payload["details"]["outcome"] == "answered");
  CHECK(rows[4].payload["details"]["total_tokens"] == 25);

  // Streamed: the steps went to the platform as reasoning_step replies before the answer.
  const auto all = r.all("s");
  std::size_t steps = 0;
  for (const auto& x : all) steps += x.kind == parley::reply_kind::reasoning_step;
  CHECK(steps == 5);
  CHECK(all.back().kind == parley::reply_kind::text);
  // Streamed steps are chat rows too (a returning WebSocket client replays them), which do not
  // close the turn: the rows link to the answer.
  CHECK(test::query_count(r.path, "SELECT count(*) FROM chat WHERE type = 'reasoning_step'") == 5);
}

TEST_CASE("without stream_steps nothing but the answer reaches the client") {
  auto o = plain({adder()});
  o.stream_steps = false;
  test::reasoner r(o);
  r.server.push(exchange::json_body(test::completion("hi")));
  r.say("s", "hello");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.all("s").size() == 1);
  CHECK(r.kinds() == std::vector<std::string>{"reasoning_started", "final_answer", "reasoning_finished"});
  CHECK(test::query_count(r.path, "SELECT count(*) FROM chat WHERE type = 'reasoning_step'") == 0);
}

TEST_CASE("parallel_tools runs one step's calls concurrently") {
  // `wait` ends only when `open` runs while it waits: one after the other it would time out.
  std::shared_ptr<net::steady_timer> gate;
  auto wait = llm::make_tool(
      "wait", "Waits for the gate.", {},
      [&gate](const llm::tool_args&) -> net::awaitable<std::string> {
        gate = std::make_shared<net::steady_timer>(co_await net::this_coro::executor, 20s);
        auto keep = gate;
        auto [ec] = co_await keep->async_wait(net::as_tuple(net::use_awaitable));
        co_return ec ? "opened" : "never opened";
      },
      {.timeout = 5s});
  auto open = llm::make_tool("open", "Opens the gate.", {}, [&gate](const llm::tool_args&) {
    if (!gate) return std::string("no gate");
    gate->cancel();
    return std::string("done");
  });
  auto o = plain({wait, open});
  o.parallel_tools = true;
  test::reasoner r(o);
  r.server.push(exchange::json_body(tool_calls_answer({{"w", "wait", "{}"}, {"o", "open", "{}"}})));
  r.server.push(exchange::json_body(test::completion("both ran")));
  r.say("s", "go");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(tool_contents(r.requests()[1]) == std::vector<std::string>{"opened", "done"});
}

TEST_CASE("invalid arguments go back to the model as errors naming the problem, the tool does not run") {
  std::atomic<int> calls{0};
  test::reasoner r(plain({adder(&calls)}));
  r.server.push(exchange::json_body(tool_calls_answer({{"c1", "add", R"({"a":"two","b":3})"},
                                                       {"c2", "add", R"({"a":1)"},
                                                       {"c3", "sub", R"({})"},
                                                       {"c4", "add", R"({"a":1})"}})));
  r.server.push(exchange::json_body(test::completion("sorry")));
  r.say("s", "add");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(calls == 0);
  const auto results = tool_contents(r.requests()[1]);
  REQUIRE(results.size() == 4);
  CHECK(results[0] == "ERROR: invalid arguments for 'add': argument 'a' must be an integer, got \"two\".");
  CHECK(results[1].find("ERROR: the arguments of 'add' are not valid JSON") == 0);
  CHECK(results[2] == "ERROR: there is no tool named 'sub'. The tools are: add.");
  CHECK(results[3] == "ERROR: invalid arguments for 'add': missing required argument 'b' (an integer).");
  // The echoed assistant message carries valid JSON (Ollama refuses anything else).
  const auto reqs = r.requests();
  CHECK(reqs[1]["messages"][2]["tool_calls"][1]["function"]["arguments"] == "{}");
  const auto rows = r.rows();
  int errors = 0;
  for (const auto& row : rows)
    if (row.step_kind == "tool_result") errors += row.payload["details"]["is_error"] == true;
  CHECK(errors == 4);
}

TEST_CASE("the same call with the same arguments is pushed back instead of run again") {
  std::atomic<int> calls{0};
  test::reasoner r(plain({adder(&calls)}));
  r.server.push(exchange::json_body(tool_calls_answer({{"c1", "add", R"({"a":1,"b":2})"}})));
  r.server.push(exchange::json_body(tool_calls_answer({{"c2", "add", R"({"b":2, "a":1})"}})));
  r.server.push(exchange::json_body(test::completion("3")));
  r.say("s", "add");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(calls == 1);
  const auto results = tool_contents(r.requests()[2]);
  REQUIRE(results.size() == 2);
  CHECK(results[1].find("ERROR: you already called 'add' with these same arguments") == 0);
  const auto kinds = r.kinds();
  CHECK(has(kinds, "pushback"));
  for (const auto& row : r.rows())
    if (row.step_kind == "pushback") CHECK(row.payload["details"]["reason"] == "repeated_call");
}

TEST_CASE("an empty answer ends with its own event, not max_steps") {
  test::reasoner r(plain());
  r.server.push(exchange::json_body(test::completion("  ")));
  r.say("s", "hm");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s")[0].find("empty answer") != std::string::npos);
  CHECK(r.kinds() == std::vector<std::string>{"reasoning_started", "empty_answer", "reasoning_finished"});
}

TEST_CASE("the step budget ends the loop with the fallback message") {
  auto o = plain({adder()});
  o.max_steps = 2;
  test::reasoner r(o);
  r.server.push(exchange::json_body(tool_calls_answer({{"c1", "add", R"({"a":1,"b":1})"}})));
  r.server.push(exchange::json_body(tool_calls_answer({{"c2", "add", R"({"a":2,"b":2})"}})));
  r.say("s", "loop");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s")[0] == o.fallback_message);
  CHECK(r.server.request_count() == 2);
  const auto kinds = r.kinds();
  REQUIRE(kinds.size() >= 2);
  CHECK(kinds[kinds.size() - 2] == "max_steps");
  CHECK(kinds.back() == "reasoning_finished");
}

TEST_CASE("the token budget stops the loop with a clear reply") {
  auto o = plain({adder()});
  o.token_budget = 15;  // each answer costs 10
  test::reasoner r(o);
  r.server.push(exchange::json_body(tool_calls_answer({{"c1", "add", R"({"a":1,"b":1})"}})));
  r.server.push(exchange::json_body(tool_calls_answer({{"c2", "add", R"({"a":2,"b":2})"}})));
  r.server.push(exchange::json_body(test::completion("never asked")));
  r.say("s", "spend");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s")[0].find("used 20 tokens, more than its budget of 15") != std::string::npos);
  CHECK(r.server.request_count() == 2);
  const auto kinds = r.kinds();
  CHECK(has(kinds, "token_budget"));
  CHECK_FALSE(has(kinds, "max_steps"));
}

TEST_CASE("task tools plan the work, a final answer with tasks pending is pushed back as a user message") {
  llm::reasoning_options o;  // task planning on
  o.tools = {adder()};
  test::reasoner r(o);
  r.server.push(exchange::json_body(
      tool_calls_answer({{"t1", "add_tasks", R"({"descriptions":["add 1 and 2","check it"]})"}})));
  r.server.push(exchange::json_body(tool_calls_answer(
      {{"a1", "add", R"({"a":1,"b":2})"}, {"t2", "complete_task", R"({"task_id":1,"result":"3"})"}})));
  r.server.push(exchange::json_body(test::completion("It is 3.")));  // #2 still pending
  r.server.push(exchange::json_body(tool_calls_answer(
      {{"t3", "skip_task", R"({"task_id":2,"reason":"obvious"})"}, {"t4", "complete_task", R"({"task_id":9,"result":"x"})"}})));
  r.server.push(exchange::json_body(test::completion("It is 3.")));
  r.say("s", "1+2, carefully");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s") == std::vector<std::string>{"It is 3."});

  const auto reqs = r.requests();
  REQUIRE(reqs.size() == 5);
  std::set<std::string> offered;
  for (const auto& t : reqs[0]["tools"]) offered.insert(t["function"]["name"]);
  CHECK(offered == std::set<std::string>{"add", "add_tasks", "complete_task", "skip_task"});
  CHECK(tool_contents(reqs[1])[0] == "Added tasks:\n#1: add 1 and 2\n#2: check it");
  CHECK(reqs[1]["messages"][0]["content"].get<std::string>().find("[ ] #1 add 1 and 2") != std::string::npos);
  // After the push-back: the model saw its text and a user-role check, and no system message
  // anywhere but first.
  const auto& msgs = reqs[3]["messages"];
  for (std::size_t i = 1; i < msgs.size(); ++i) CHECK(msgs[i]["role"] != "system");
  const auto& last = msgs.back();
  CHECK(last["role"] == "user");
  CHECK(last["content"].get<std::string>().find("#2 (check it)") != std::string::npos);
  CHECK(tool_contents(reqs[4]).back() == "ERROR: no task with id #9.");

  const auto kinds = r.kinds();
  for (const char* k : {"task_added", "task_completed", "task_skipped", "llm_text", "pushback", "final_answer"})
    CHECK_MESSAGE(has(kinds, k), k);
  int snapshots = 0;
  for (const auto& row : r.rows())
    if (row.kind == "task_list_update") {
      ++snapshots;
      CHECK(row.payload["tasks"].is_array());
    }
  CHECK(snapshots == 3);  // add, complete, skip
  std::size_t streamed = 0;
  for (const auto& x : r.all("s")) streamed += x.kind == parley::reply_kind::task_list_update;
  CHECK(streamed == 3);
}

TEST_CASE("a tool that needs approval asks the user, Yes runs it, No gives the model an error") {
  std::atomic<int> deletes{0};
  auto del = llm::make_tool("delete_file", "Deletes a file.", {llm::param::string("path", "the file")},
                            [&deletes](const llm::tool_args&) {
                              ++deletes;
                              return std::string("deleted");
                            },
                            {.needs_approval = true});
  test::reasoner r(plain({del}));
  // Yes.
  r.server.push(exchange::json_body(tool_calls_answer({{"d1", "delete_file", R"({"path":"a.txt"})"}})));
  r.server.push(exchange::json_body(test::completion("a.txt is gone")));
  r.say("s", "delete a.txt");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s")[0] == "May I run the tool 'delete_file' with {\"path\":\"a.txt\"}?");
  // The options follow the question.
  CHECK(test::eventually([&] { return r.all("s").back().kind == parley::reply_kind::options; }));
  CHECK(deletes == 0);
  CHECK(r.server.request_count() == 1);
  r.say("s", "maybe");  // neither: asked again
  REQUIRE(r.wait_texts("s", 2));
  CHECK(r.texts("s")[1] == "Please answer Yes or No.");
  r.say("s", "Yes");
  REQUIRE(r.wait_texts("s", 3));
  CHECK(r.texts("s")[2] == "a.txt is gone");
  CHECK(deletes == 1);
  CHECK(tool_contents(r.requests()[1]) == std::vector<std::string>{"deleted"});

  // No.
  r.server.push(exchange::json_body(tool_calls_answer({{"d2", "delete_file", R"({"path":"b.txt"})"}})));
  r.server.push(exchange::json_body(test::completion("kept b.txt")));
  r.say("s", "delete b.txt");
  REQUIRE(r.wait_texts("s", 4));
  r.say("s", "No");
  REQUIRE(r.wait_texts("s", 5));
  CHECK(r.texts("s")[4] == "kept b.txt");
  CHECK(deletes == 1);
  CHECK(tool_contents(r.requests()[3]) ==
        std::vector<std::string>{"ERROR: the user declined to run 'delete_file'."});

  const auto rows = r.rows();
  std::vector<std::string> kinds;
  std::set<std::string> runs;
  for (const auto& row : rows)
    if (row.kind == "reasoning_step") {
      kinds.push_back(row.step_kind);
      runs.insert(row.run_id);
    }
  CHECK(runs.size() == 2);  // one run per request, across the approval
  CHECK(std::count(kinds.begin(), kinds.end(), "approval_requested") == 2);
  CHECK(std::count(kinds.begin(), kinds.end(), "approval_answered") == 2);
  CHECK(std::count(kinds.begin(), kinds.end(), "reasoning_started") == 2);
  CHECK(std::count(kinds.begin(), kinds.end(), "reasoning_finished") == 2);
}

TEST_CASE("a throwing tool and a tool past its timeout become tool errors") {
  auto boom = llm::make_tool("boom", "Throws.", {}, [](const llm::tool_args&) -> std::string {
    throw std::runtime_error("disk on fire");
  });
  auto slow = llm::make_tool(
      "slow", "Never ends in time.", {},
      [](const llm::tool_args&) -> net::awaitable<std::string> {
        net::steady_timer t(co_await net::this_coro::executor, 30s);
        co_await t.async_wait(net::use_awaitable);
        co_return "late";
      },
      {.timeout = 50ms});
  test::reasoner r(plain({boom, slow}));
  r.server.push(exchange::json_body(tool_calls_answer({{"b", "boom", "{}"}, {"s", "slow", "{}"}})));
  r.server.push(exchange::json_body(test::completion("both failed")));
  r.say("s", "try");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(tool_contents(r.requests()[1]) ==
        std::vector<std::string>{"ERROR: tool 'boom' failed: disk on fire",
                                 "ERROR: tool 'slow' did not finish within 50 ms"});
}

TEST_CASE("a model error ends the run with llm_error and a reply") {
  test::reasoner r(plain());
  r.server.push(exchange::text(R"({"error":{"message":"bad model"}})", 400));
  r.say("s", "x");
  REQUIRE(r.wait_texts("s", 1));
  CHECK(r.texts("s")[0].find("ERROR: reasoning failed") == 0);
  CHECK(r.kinds() == std::vector<std::string>{"reasoning_started", "llm_error", "reasoning_finished"});
}

TEST_CASE("history_messages gives the model the earlier conversation") {
  auto o = plain();
  o.history_messages = 4;
  test::reasoner r(o);
  r.server.push(exchange::json_body(test::completion("Hello Ann")));
  r.server.push(exchange::json_body(test::completion("You are Ann")));
  r.say("s", "I am Ann");
  REQUIRE(r.wait_texts("s", 1));
  r.say("s", "who am I?");
  REQUIRE(r.wait_texts("s", 2));
  const auto reqs = r.requests();
  const auto& m = reqs[1]["messages"];
  REQUIRE(m.size() == 4);
  CHECK(m[1] == json{{"role", "user"}, {"content", "I am Ann"}});
  CHECK(m[2] == json{{"role", "assistant"}, {"content", "Hello Ann"}});
  CHECK(m[3] == json{{"role", "user"}, {"content", "who am I?"}});
}

TEST_CASE("a reset while the model hangs ends the run at once, the next message is handled") {
  test::reasoner r(plain());
  r.server.push(exchange::hang());
  r.server.push(exchange::json_body(test::completion("fresh answer")));
  r.say("s", "slow question");
  REQUIRE(test::eventually([&] { return r.server.request_count() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  r.agent.reset_session("s");
  r.say("s", "next question");
  REQUIRE(r.wait_texts("s", 1, 5s));  // the client's timeout is 10 s: this came from the reset
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(r.texts("s") == std::vector<std::string>{"fresh answer"});
  // The reset deleted the old run's rows; the new run is whole and nothing else is there.
  CHECK(r.kinds() == std::vector<std::string>{"reasoning_started", "final_answer", "reasoning_finished"});
}

TEST_CASE("a close while the model hangs records reasoning_cancelled and nothing else") {
  test::reasoner r(plain());
  r.server.push(exchange::hang());
  r.say("s", "slow question");
  REQUIRE(test::eventually([&] { return r.server.request_count() == 1; }));
  r.agent.close_session("s", "user left");
  REQUIRE(test::eventually([&] { return r.kinds().size() == 2; }, 5s));
  CHECK(r.kinds() == std::vector<std::string>{"reasoning_started", "reasoning_cancelled"});
  CHECK(r.texts("s").empty());
  // No error was recorded for the body: its end was asked for.
  CHECK(test::query_count(r.path, "SELECT count(*) FROM event WHERE event = 'error'") == 0);
}

TEST_CASE("the run's columns are read back, exported and imported") {
  test::reasoner r(plain({adder()}));
  r.server.push(exchange::json_body(tool_calls_answer({{"c1", "add", R"({"a":1,"b":1})"}}, 21, 5)));
  r.server.push(exchange::json_body(test::completion("2")));
  r.say("s", "1+1");
  REQUIRE(r.wait_texts("s", 1));
  r.db->flush();
  auto s = r.agent.find_session("s");
  REQUIRE(s);
  std::vector<parley::reasoning_event> events;
  test::on_strand(*s, [&] { events = s->get_reasoning_events(); });
  REQUIRE(events.size() == 5);
  CHECK(events[1].step_kind == "llm_tool_calls");
  CHECK(events[1].run_id == events[0].run_id);
  CHECK(events[1].step_number == 0);
  CHECK(events[1].prompt_tokens == 21);
  CHECK(events[1].completion_tokens == 5);
  CHECK(events[1].latency_ms.has_value());
  CHECK_FALSE(events[0].prompt_tokens.has_value());  // no model call in reasoning_started

  const json doc = r.db->export_session("reasoner", "s");
  const auto& steps = doc["reasoning_steps"];
  REQUIRE(steps.size() == 5);
  CHECK(steps[1]["run_id"] == events[0].run_id);
  CHECK(steps[1]["prompt_tokens"] == 21);
  CHECK(steps[1]["completion_tokens"] == 5);
  CHECK(steps[1]["step_number"] == 0);
  CHECK(steps[0]["prompt_tokens"].is_null());
  r.db->import_session("reasoner", doc, "copy");
  CHECK(test::query_count(r.path, "SELECT count(*) FROM reasoning_step r JOIN session s ON "
                                  "s.id = r.session_id WHERE s.session_id = 'copy' AND "
                                  "r.prompt_tokens = 21 AND r.completion_tokens = 5 AND "
                                  "r.step_number = 0 AND r.run_id = '" +
                                      events[0].run_id + "'") == 1);
}

TEST_CASE("with persisted sessions a pending approval survives a restart") {
  test::temp_dir dir;
  const auto path = dir.file("persist.db");
  std::atomic<int> deletes{0};
  auto options = [&] {
    auto del = llm::make_tool("delete_file", "Deletes a file.", {llm::param::string("path", "the file")},
                              [&deletes](const llm::tool_args&) {
                                ++deletes;
                                return std::string("deleted");
                              },
                              {.needs_approval = true});
    return plain({del});
  };
  std::string run_id;
  {
    test::reasoner first(options(), {}, path, true);
    first.server.push(exchange::json_body(tool_calls_answer({{"d1", "delete_file", R"({"path":"a.txt"})"}})));
    first.say("s", "delete a.txt");
    REQUIRE(first.wait_texts("s", 1));
    run_id = first.rows().front().run_id;
  }
  test::reasoner second(options(), {}, path, true);
  second.server.push(exchange::json_body(test::completion("a.txt is gone")));
  second.say("s", "yes");
  REQUIRE(second.wait_texts("s", 1));
  CHECK(second.texts("s")[0] == "a.txt is gone");
  CHECK(deletes == 1);
  // The model got the conversation of the first life, with the tool's result.
  const auto reqs = second.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0]["messages"][1]["content"] == "delete a.txt");
  CHECK(tool_contents(reqs[0]) == std::vector<std::string>{"deleted"});
  for (const auto& row : second.rows())
    if (row.kind == "reasoning_step") CHECK(row.run_id == run_id);
}
