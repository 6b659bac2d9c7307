// Reads that do not block: a coroutine body awaits its chat history (read off the I/O
// threads) and continues on its session's strand, seeing what it recorded just before. On
// either backend (backend.hpp).
#include <doctest/doctest.h>

#include "backend.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

BACKEND_CASE("co_await chat_history reads the session's own writes and resumes on its strand") {
  test::backend db;
  if (db.skipped()) return;
  test::harness h(db.handler(), [](parley::agent& a) {
    auto& start = a.new_state("start", true);
    auto& count = a.new_state("count");
    start.set_body([](session& s) { s.reply("hi"); });
    start.when_event(parley::event_kind::text).go_to(count);
    count.set_body([](session& s) -> parley::net::awaitable<void> {
      const auto last = co_await s.chat_history(3);
      // Back on the strand: the session's own state is ours to touch.
      const bool on_strand = s.strand().running_in_this_thread();
      std::string texts;
      for (const auto& m : last) texts += (m.is_user ? "U:" : "B:") + m.content + " ";
      s.reply(std::string(on_strand ? "strand " : "elsewhere ") + texts);
    });
    count.when_event(parley::event_kind::text).go_to(count);
  });
  h.session("r");
  h.say("r", "one");
  REQUIRE(h.got.wait("r", 2));
  CHECK(h.got.of("r")[1] == "strand B:hi U:one ");
  h.say("r", "two");
  REQUIRE(h.got.wait("r", 3));
  CHECK(h.got.of("r")[2] == "strand U:one B:strand B:hi U:one  U:two ");
}
