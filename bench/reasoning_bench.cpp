// Reasoning state benchmarks against the scripted OpenAI-compatible server (tests/llm):
//  1. loop overhead per step: messages that take 4 tool steps and a final answer, timed against
//     a plain coroutine body making the same 5 model calls (the model's and HTTP's time);
//  2. 1,000 sessions reasoning at once (one tool step, then the answer) against a server that
//     answers every call after 200 ms, on 2 worker threads, while a plain session chats
//     alongside (its reply latency p50/p99).
// Prints numbers; asserts nothing.
//   bench_reasoning [--messages N] [--sessions N] [--delay-ms N] [--threads N] [--no-db]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/llm/reasoning.hpp>
#include <parley/llm/typed_tool.hpp>

#include "../tests/llm/scripted_server.hpp"

using namespace std::chrono;
using parley::json;
namespace llm = parley::llm;

namespace {

template <class Pred>
bool wait_until(Pred pred, seconds limit = seconds(120)) {
  const auto until = steady_clock::now() + limit;
  while (!pred()) {
    if (steady_clock::now() > until) return false;
    std::this_thread::sleep_for(microseconds(200));  // benchmark polling only
  }
  return true;
}

json tool_call_answer(int n) {
  json tc = json::array({{{"id", "c" + std::to_string(n)},
                          {"type", "function"},
                          {"function", {{"name", "add"}, {"arguments", "{\"a\":" + std::to_string(n) + ",\"b\":1}"}}}}});
  return {{"id", "x"},
          {"object", "chat.completion"},
          {"model", "scripted"},
          {"choices", json::array({{{"index", 0},
                                    {"finish_reason", "tool_calls"},
                                    {"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", tc}}}}})},
          {"usage", {{"prompt_tokens", 50}, {"completion_tokens", 10}, {"total_tokens", 60}}}};
}

// Answers with a tool call until the conversation holds `steps` tool results, then with text.
void script_model(test::scripted_server& server, int steps, milliseconds delay) {
  server.keep_requests(false);
  server.respond_with([steps, delay](const test::received& r) {
    int tools = 0;
    for (std::size_t at = r.body.find("\"role\":\"tool\""); at != std::string::npos;
         at = r.body.find("\"role\":\"tool\"", at + 1))
      ++tools;
    auto e = tools < steps ? test::exchange::json_body(tool_call_answer(tools))
                           : test::exchange::json_body(test::completion("done"));
    e.delay = delay;
    return e;
  });
}

struct counter {
  std::mutex m;
  std::vector<steady_clock::time_point> at;  // per reply
  std::atomic<std::size_t> n{0};
};

struct bench_agent {
  bench_agent(const std::string& url, int threads, bool with_db, const std::string& db_path)
      : agent("reasoning-bench") {
    agent.config().set("agent.threads", threads, "bench");
    agent.config().set("log.level", "error", "bench");
    agent.config().set("agent.queue_capacity", 100000, "bench");
    llm::client_options co;
    co.base_url = url;
    co.model = "scripted";
    co.timeout = seconds(60);
    co.max_retries = 0;
    co.max_idle_connections = 2000;
    model = std::make_unique<llm::client>(agent.io_context().get_executor(), co);
    if (with_db) {
      db = std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = db_path});
      agent.use_db(db);
    }
  }
  void start(const std::function<void(parley::session&, const parley::reply&)>& on_reply) {
    platform = std::make_shared<parley::callback_platform>(on_reply, "bench");
    agent.use_platform(platform);
    agent.start();
  }
  ~bench_agent() {
    agent.stop();
    agent.wait();
  }
  parley::agent agent;
  std::unique_ptr<llm::client> model;
  std::shared_ptr<parley::db::sqlite_db_handler> db;
  std::shared_ptr<parley::callback_platform> platform;
};

llm::tool adder() {
  return llm::make_tool("add", "Adds two integers.",
                        {llm::param::integer("a", "the first"), llm::param::integer("b", "the second")},
                        [](const llm::tool_args& a) { return a.get<int>("a") + a.get<int>("b"); });
}

// 1. Loop overhead: N messages one after another on one session, in the reasoning state and
// in a baseline state making the same model calls.
void overhead(int messages, bool with_db, const std::string& dir) {
  constexpr int steps = 4;  // tool steps; +1 model call for the answer
  test::scripted_server server;
  script_model(server, steps, milliseconds(0));
  bench_agent b(server.base_url(), 2, with_db, dir + "/overhead.db");
  llm::reasoning_options o;
  o.task_planning = false;
  o.stream_steps = true;
  o.tools = {adder()};
  o.max_steps = steps + 2;
  auto& think = llm::new_reasoning_state(b.agent, "think", *b.model, o);
  auto& start = b.agent.new_state("start", true);
  auto& plain = b.agent.new_state("plain");
  start.when_event("reason").go_to(think);
  start.when_event("plain").go_to(plain);
  think.when_event("plain").go_to(plain);
  plain.when_event("plain").go_to(plain);
  plain.when_event(parley::event_kind::text).go_to(think);
  auto* model = b.model.get();
  plain.set_body([model](parley::session& s) -> parley::net::awaitable<void> {
    // The same five calls, with the conversation growing as the loop's does.
    json conversation = json::array({{{"role", "system"}, {"content", llm::default_reasoning_prompt}},
                                 {{"role", "user"}, {"content", "count"}}});
    for (int i = 0; i <= steps; ++i) {
      llm::chat_request req;
      req.messages = conversation;
      auto r = co_await model->chat(std::move(req));
      if (r.tool_calls.empty()) break;
      conversation.push_back({{"role", "assistant"},
                          {"content", nullptr},
                          {"tool_calls", json::array({{{"id", r.tool_calls[0].id},
                                                       {"type", "function"},
                                                       {"function", {{"name", "add"}, {"arguments", r.tool_calls[0].arguments}}}}})}});
      conversation.push_back({{"role", "tool"}, {"tool_call_id", r.tool_calls[0].id}, {"content", "1"}});
    }
    s.reply("done");
  });
  std::atomic<std::size_t> answers{0};
  b.start([&](parley::session&, const parley::reply& r) {
    if (r.kind == parley::reply_kind::text) ++answers;
  });
  auto s = b.agent.get_or_create_session("bench", b.platform.get());
  auto time_messages = [&](bool reasoning) {
    std::vector<double> us;
    for (int i = 0; i < messages; ++i) {
      const auto before = answers.load();
      const auto t0 = steady_clock::now();
      if (reasoning)
        s->post(parley::event::text("count"));
      else
        s->post(parley::event::custom("plain"));
      wait_until([&] { return answers.load() > before; });
      us.push_back(duration<double, std::micro>(steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  };
  // Warm both paths (connections, allocations), then alternate to share the machine's noise.
  auto to_plain = [&] {  // the move into the plain state runs one baseline (not timed)
    const auto n = answers.load();
    s->post(parley::event::custom("plain"));
    wait_until([&] { return answers.load() > n; });
  };
  s->post(parley::event::custom("reason"));
  time_messages(true);
  to_plain();
  double base = 0, loop = 0;
  for (int round = 0; round < 3; ++round) {
    base += time_messages(false);
    loop += time_messages(true);
    to_plain();
  }
  base /= 3;
  loop /= 3;
  std::printf("loop overhead: %d tool steps + answer per message, %d messages x 3 rounds%s\n", steps,
              messages, with_db ? ", SQLite recording" : ", no DB");
  std::printf("  median per message: reasoning %.0f us, same model calls alone %.0f us\n", loop, base);
  std::printf("  overhead per step (model call): %.1f us\n", (loop - base) / (steps + 1));
}

// 2. Many sessions reasoning at once against a slow model, a plain session chatting alongside.
void load(int sessions, int delay_ms, int threads, bool with_db, const std::string& dir) {
  test::scripted_server server;
  script_model(server, 1, milliseconds(delay_ms));
  bench_agent b(server.base_url(), threads, with_db, dir + "/load.db");
  llm::reasoning_options o;
  o.task_planning = false;
  o.tools = {adder()};
  auto& think = llm::new_reasoning_state(b.agent, "think", *b.model, o);
  auto& start = b.agent.new_state("start", true);
  auto& chat = b.agent.new_state("chat");
  start.when_event("think").go_to(think);
  start.when_event("chat").go_to(chat);
  chat.when_event("chat").go_to(chat);
  chat.set_body([](parley::session& s) { s.reply("hi"); });
  std::atomic<std::size_t> answers{0};
  std::atomic<std::size_t> chats{0};
  b.start([&](parley::session& s, const parley::reply& r) {
    if (r.kind != parley::reply_kind::text) return;
    if (s.id() == "chatter")
      ++chats;
    else
      ++answers;
  });
  std::vector<std::shared_ptr<parley::session>> all;
  for (int i = 0; i < sessions; ++i) {
    all.push_back(b.agent.get_or_create_session("r" + std::to_string(i), b.platform.get()));
    all.back()->post(parley::event::custom("think"));
  }
  auto chatter = b.agent.get_or_create_session("chatter", b.platform.get());
  chatter->post(parley::event::custom("chat"));
  wait_until([&] { return chats.load() >= 1; });
  wait_until([&] { return b.agent.session_count() >= static_cast<std::size_t>(sessions + 1); });

  const auto t0 = steady_clock::now();
  for (auto& s : all) s->post(parley::event::text("add one and one"));
  std::vector<double> chat_ms;
  while (answers.load() < static_cast<std::size_t>(sessions)) {
    const auto before = chats.load();
    const auto c0 = steady_clock::now();
    chatter->post(parley::event::custom("chat"));
    if (!wait_until([&] { return chats.load() > before; }, seconds(30))) break;
    chat_ms.push_back(duration<double, std::milli>(steady_clock::now() - c0).count());
    std::this_thread::sleep_for(milliseconds(2));  // a human-ish pace, not a flood
    if (steady_clock::now() - t0 > seconds(120)) break;
  }
  const double total = duration<double, std::milli>(steady_clock::now() - t0).count();
  std::sort(chat_ms.begin(), chat_ms.end());
  auto pct = [&](double p) {
    return chat_ms.empty() ? 0.0 : chat_ms[std::min(chat_ms.size() - 1, static_cast<std::size_t>(p * chat_ms.size()))];
  };
  std::printf("load: %d sessions reasoning at once (1 tool step + answer = 2 model calls of %d ms), "
              "%d threads%s\n",
              sessions, delay_ms, threads, with_db ? ", SQLite recording" : ", no DB");
  std::printf("  all answered: %zu/%d in %.0f ms (the model's time alone: %d ms)\n", answers.load(),
              sessions, total, 2 * delay_ms);
  std::printf("  plain session alongside: %zu replies, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              chat_ms.size(), pct(0.5), pct(0.99), chat_ms.empty() ? 0.0 : chat_ms.back());
}

}  // namespace

int main(int argc, char** argv) {
  int messages = 200, sessions = 1000, delay_ms = 200, threads = 2;
  bool with_db = true;
  for (int i = 1; i < argc; ++i) {
    auto arg = [&](const char* name) { return std::strcmp(argv[i], name) == 0 && i + 1 < argc; };
    if (arg("--messages"))
      messages = std::atoi(argv[++i]);
    else if (arg("--sessions"))
      sessions = std::atoi(argv[++i]);
    else if (arg("--delay-ms"))
      delay_ms = std::atoi(argv[++i]);
    else if (arg("--threads"))
      threads = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--no-db") == 0)
      with_db = false;
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   ("parley-reasoning-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  overhead(messages, with_db, dir.string());
  load(sessions, delay_ms, threads, with_db, dir.string());
  std::filesystem::remove_all(dir);
}
