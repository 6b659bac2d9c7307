// The Parley agent the A2A tests talk to (run with the standard flags, e.g. --port 0; the log
// says "open http://HOST:PORT/"). It answers:
//   "ask ..."   -> "Which city?" and waits in state `city` (INPUT_REQUIRED); the answer gets
//                  "Weather in X: sunny" and {"city": X}, and the task completes
//   "slow"      -> a coroutine body that replies "slow done" after 1.5 s
//   "rich"      -> a markdown, a JSON and a file reply
//   JSON        -> the JSON back
//   a file      -> its name and type
//   "relay URL TEXT" -> session.ask_agent(URL, TEXT), and "asked"
//   "events?"   -> what came back from other agents so far (answers, agent_error, a2a_status),
//                  as recorded: [{name, kind, text, payload, sender, human, depth, causation_id}]
//   anything else -> "echo: TEXT" (with "(agent)" when another agent sent it)
#include <chrono>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/parley.hpp>

int main(int argc, char** argv) {
  using parley::session;
  parley::agent agent("a2a_test_agent");
  agent.new_intent("weather", {"ask weather", "ask about the weather"}, "tells the weather of a city");
  auto& idle = agent.new_state("idle", /*initial=*/true);
  auto& city = agent.new_state("city");
  auto& answer = agent.new_state("answer");
  auto& echo = agent.new_state("echo");
  auto& slow = agent.new_state("slow");
  auto& record = agent.new_state("record");
  auto& relay = agent.new_state("relay");
  auto& report = agent.new_state("report");
  report.set_body([](session& s) { s.reply_json(s.get("agent_events", parley::json::array())); });
  report.go_to(idle);

  const auto starts = [](const char* prefix) {
    return [prefix](session& s) { return s.event().text().rfind(prefix, 0) == 0; };
  };
  city.set_body([](session& s) { s.reply("Which city?"); });
  city.when_event(parley::event_kind::text).go_to(answer);
  answer.set_body([](session& s) {
    s.reply("Weather in " + s.event().text() + ": sunny");
    s.reply_json({{"city", s.event().text()}});
  });
  answer.go_to(idle);
  echo.set_body([](session& s) {
    const auto& e = s.event();
    if (e.kind() == parley::event_kind::json) {
      s.reply_json(e.payload());
    } else if (const auto* f = e.file()) {
      s.reply("file " + f->name + " (" + f->type + ")");
    } else if (e.text() == "rich") {
      s.reply_markdown("**bold**");
      s.reply_json({{"k", 1}});
      s.reply_file({"a.txt", "text/plain", "aGk="});
    } else {
      s.reply("echo: " + e.text() + (e.human() ? "" : " (agent)"));
    }
  });
  echo.go_to(idle);
  slow.set_body([](session& s) -> parley::net::awaitable<void> {
    parley::net::steady_timer t(co_await parley::net::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(1500));
    co_await t.async_wait(parley::net::use_awaitable);
    s.reply("slow done");
  });
  slow.go_to(idle);

  // What comes back from agents this session asked (not messages of agents that call us).
  record.set_body([](session& s) {
    const auto& e = s.event();
    parley::json j = {{"name", std::string(e.name())}, {"kind", std::string(parley::to_string(e.kind()))},
                      {"text", e.text()}, {"payload", e.payload()}, {"sender", e.sender()},
                      {"human", e.human()}};
    if (const auto* l = e.lineage()) {
      j["depth"] = l->depth;
      j["causation_id"] = l->causation_id;
    }
    auto all = s.get("agent_events", parley::json::array());
    all.push_back(std::move(j));
    s.set("agent_events", std::move(all));
  });
  record.go_to(idle);
  const auto answer_to_us = [](session& s) { return !s.event().inbound_agent_message(); };
  idle.when_agent_message().with_condition(answer_to_us, "an answer to us").go_to(record);
  idle.when_agent_error().go_to(record);
  idle.when_event("a2a_status").go_to(record);
  relay.set_body([](session& s) {
    const std::string& t = s.event().text();
    const auto sp = t.find(' ', 6);
    s.ask_agent(t.substr(6, sp - 6), sp == std::string::npos ? std::string() : t.substr(sp + 1));
    s.reply("asked");
  });
  relay.go_to(idle);
  idle.when_event(parley::event_kind::text).with_condition(starts("relay "), "relay").go_to(relay);
  idle.when_event(parley::event_kind::text)
      .with_condition([](session& s) { return s.event().text() == "events?"; }, "events?")
      .go_to(report);
  idle.when_event(parley::event_kind::text).with_condition(starts("ask"), "ask").go_to(city);
  idle.when_event(parley::event_kind::text).with_condition(starts("slow"), "slow").go_to(slow);
  idle.when_event().go_to(echo);

  parley::declare_config(agent.config());
  agent.config().set("platforms.a2a.input_required_states", parley::json::array({"city"}));
  return parley::run(agent, argc, argv);
}
