// The client from a real coroutine body of an agent's session: the reply arrives, and another
// session of the same agent keeps answering while the first waits on the model.
#include <doctest/doctest.h>

#include <parley/llm/client.hpp>

#include "../runtime/harness.hpp"
#include "scripted_server.hpp"

using namespace std::chrono_literals;
using parley::event;
using parley::json;
using parley::session;
namespace llm = parley::llm;

TEST_CASE("a coroutine body awaits the model while another session of the agent keeps answering") {
  test::scripted_server server;
  server.push(test::exchange::held(test::completion("The answer is 42.")));
  test::harness h("llm", 2);
  llm::client_options o;
  o.base_url = server.base_url();
  o.model = "scripted-model";
  o.timeout = 10s;
  llm::client model(h.agent.io_context().get_executor(), o);

  auto& start = h.agent.new_state("start", true);
  auto& thinking = h.agent.new_state("thinking");
  auto& echo = h.agent.new_state("echo");
  start.when_event("ask").go_to(thinking);
  start.when_event("echo").go_to(echo);
  echo.when_event("echo").go_to(echo);
  echo.set_body([](session& s) { s.reply("echo"); });
  thinking.set_body([&model](session& s) -> parley::net::awaitable<void> {
    llm::chat_request req;
    req.messages = json::array({{{"role", "user"}, {"content", "What is the answer?"}}});
    auto strand_before = s.strand().running_in_this_thread();
    auto r = co_await model.chat(std::move(req));
    // Back on the session's strand: replying from here is allowed.
    if (strand_before && s.strand().running_in_this_thread())
      s.reply(r.text);
    else
      s.reply("resumed off the strand");
  });
  h.agent.start();

  auto asker = h.session("asker");
  asker->post(event::custom("ask"));
  REQUIRE(h.replies.wait([&] { return server.request_count() == 1; }));
  auto other = h.session("other");
  for (int i = 0; i < 3; ++i) {
    other->post(event::custom("echo"));
    REQUIRE(h.replies.wait_count("other", static_cast<std::size_t>(i + 1)));
  }
  CHECK(h.replies.of("asker").empty());  // still waiting on the model
  server.release();
  REQUIRE(h.replies.wait_count("asker", 1));
  CHECK(h.replies.of("asker")[0] == "The answer is 42.");
}
