// The writer thread on its own (it is private to parley_db: this test reads its header): any
// exception from a row, of any type, loses that row alone; the thread and every other row go
// on. Through the handler: a dictionary that is not valid UTF-8 is recorded, not thrown.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>

#include <SQLiteCpp/Database.h>

#include "schema.hpp"
#include "support.hpp"
#include "writer.hpp"

using namespace std::chrono_literals;
namespace detail = parley::db::detail;

namespace {

// An op that records an event named `name`.
detail::write_op event(std::string name) {
  return [name = std::move(name)](detail::write_context& c) {
    auto& q = c.stmt("INSERT INTO event (agent_name, event, timestamp, id) VALUES ('a', ?, 'x', ?)");
    q.bind(1, name);
    q.bind(2, c.next_id());
    q.exec();
  };
}

// A row op: the event named by the row's bytes.
void event_row(detail::write_context& c, detail::row_reader& r) {
  const std::string name(r.str());
  event(name)(c);
}

std::vector<std::string> events(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT event FROM event ORDER BY id");
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

}  // namespace

TEST_CASE("the writer thread survives any exception from a row, only that row is lost") {
  test::temp_dir dir;
  const auto path = dir.file("w.db");
  parley::db::sqlite_options o;
  o.path = path;
  o.commit_interval = 1s;  // the ops below land in one batch (sync() commits it at once)
  detail::writer w(detail::open_for_writing(path, 5s, false), "a", o);

  std::vector<std::exception_ptr> errors(7);
  std::atomic<int> calls{0};
  auto done = [&](std::size_t i) {
    return [&, i](std::exception_ptr e) {
      errors[i] = e;
      ++calls;
    };
  };
  w.push(event("one"), done(0));
  w.push([](detail::write_context&) { throw std::runtime_error("a std exception"); }, done(1));
  w.push(event("two"), done(2));
  w.push([](detail::write_context&) { throw 42; }, done(3));  // not a std::exception
  w.push(
      [](detail::write_context& c) {
        event("ghost")(c);  // written, then the op fails: undone with it
        throw std::logic_error("after a write");
      },
      done(4));
  w.push(event("three"), done(5));
  // A row whose encoding throws fails on the caller's thread and leaves nothing queued.
  CHECK_THROWS_AS(w.push_row({}, &event_row,
                             [](detail::row_writer& r) {
                               r.str("half");
                               throw std::runtime_error("encoding");
                             }),
                  std::runtime_error);
  w.push_row({}, &event_row, [](detail::row_writer& r) { r.str("four"); }, done(6));
  w.sync();

  CHECK(calls == 7);
  CHECK(events(path) == std::vector<std::string>{"one", "two", "three", "four"});
  for (std::size_t i : {0u, 2u, 5u, 6u}) CHECK_MESSAGE(!errors[i], "op " << i);
  for (std::size_t i : {1u, 3u, 4u}) CHECK_MESSAGE(errors[i], "op " << i);
  const auto st = w.stats();
  CHECK(st.rows_dropped == 3);
  CHECK(st.rows_written == 4);

  // The thread is still there.
  w.push(event("five"));
  w.sync();
  CHECK(events(path).back() == "five");
  w.stop();
}

TEST_CASE("a dictionary that is not valid UTF-8 is recorded with U+FFFD, and the session goes on") {
  test::temp_dir dir;
  const auto path = dir.file("u.db");
  auto define = [](parley::agent& a) {
    a.new_state("start", true).set_body([](parley::session& s) {
      s.set("raw", std::string("a\xff" "b"));
      s.reply("set");
    });
  };
  test::harness h(path, define);
  h.session("u1");
  REQUIRE(h.got.wait("u1", 1));
  h.db->flush();
  CHECK(h.db->stats().rows_dropped == 0);
  CHECK(test::query_text(path, "SELECT variables FROM session WHERE session_id = 'u1'") ==
        "{\"raw\":\"a\xEF\xBF\xBD" "b\"}");
}
