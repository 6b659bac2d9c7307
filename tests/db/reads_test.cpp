// Reads off the caller's thread: the async reads run on the reader threads, see every row
// queued before the call without waiting out the commit interval, call back exactly once
// (also when the callback throws), and close() finishes them.
#include <doctest/doctest.h>

#include <pthread.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>

#include <SQLiteCpp/Database.h>

#include "support.hpp"

using namespace std::chrono_literals;
using parley::chat_message;

namespace {

void define_quiet(parley::agent& a) { a.new_state("idle", true); }

std::string this_thread_name() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

// What one async read called back with, and where.
template <class T>
struct outcome {
  T value{};
  std::exception_ptr error;
  std::thread::id thread;
  std::string thread_name;
};

// Starts an async read through `start(callback)` and waits for its outcome (limit 5 s).
template <class T, class Start>
outcome<T> await(Start start) {
  auto p = std::make_shared<std::promise<outcome<T>>>();
  auto f = p->get_future();
  start([p](T value, std::exception_ptr error) {
    p->set_value({std::move(value), error, std::this_thread::get_id(), this_thread_name()});
  });
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  return f.get();
}

parley::reply text(const std::string& t) {
  parley::reply r;
  r.text = t;
  return r;
}

std::vector<std::string> contents(const std::vector<chat_message>& page) {
  std::vector<std::string> out;
  for (const auto& m : page) out.push_back(m.content);
  return out;
}

}  // namespace

TEST_CASE("async reads see every row queued before the call, on a reader thread, at once") {
  test::temp_dir dir;
  parley::db::sqlite_options o;
  // The writer would gather for a minute: a read must make it commit now, not wait for that.
  o.commit_interval = 60s;
  test::harness h(dir.file("r.db"), define_quiet, o);
  auto s = h.session("r1");
  for (int i = 0; i < 5; ++i) h.db->save_message(*s, text("m" + std::to_string(i)), i % 2 == 0);

  // The chat log in pages of two, each read right after the rows were queued.
  std::vector<std::string> all;
  std::int64_t after = 0;
  const auto caller = std::this_thread::get_id();
  for (int pages = 0;; ++pages) {
    REQUIRE(pages < 5);
    auto got = await<std::vector<chat_message>>([&](auto cb) {
      h.db->async_chat_page(*s, after, 2, std::nullopt, std::move(cb));
    });
    REQUIRE(!got.error);
    CHECK(got.thread != caller);
    CHECK(got.thread_name == "parley-read");
    if (got.value.empty()) break;
    CHECK(got.value.size() <= 2);
    for (const auto& m : got.value) CHECK(m.id > after);
    after = got.value.back().id;
    for (auto& c : contents(got.value)) all.push_back(c);
  }
  CHECK(all == std::vector<std::string>{"m0", "m1", "m2", "m3", "m4"});

  // A row queued just before the call is in the history.
  h.db->save_message(*s, text("last"), true);
  auto hist = await<std::vector<chat_message>>(
      [&](auto cb) { h.db->async_chat_history(*s, 2, std::nullopt, std::move(cb)); });
  REQUIRE(!hist.error);
  CHECK(contents(hist.value) == std::vector<std::string>{"m4", "last"});
  // The blocking read runs the same query on the caller's thread.
  CHECK(contents(h.db->chat_history(*s, 2, std::nullopt)) == contents(hist.value));

  parley::json payload = {{"kind", "plan"}, {"step", "1"}, {"summary", "s"}};
  h.db->save_reasoning_event(*s, "reasoning_step", payload);
  auto steps = await<std::vector<parley::reasoning_event>>(
      [&](auto cb) { h.db->async_reasoning_events(*s, std::nullopt, std::move(cb)); });
  REQUIRE(!steps.error);
  REQUIRE(steps.value.size() == 1);
  CHECK(steps.value[0].step_kind == "plan");
}

TEST_CASE("a read waits only for its own session's rows: a stuck writer holds back no other session") {
  test::temp_dir dir;
  const auto path = dir.file("s.db");
  parley::db::sqlite_options o;
  o.busy_timeout = 10ms;
  o.retry_backoff = 5ms;
  test::harness h(path, define_quiet, o);
  auto a = h.session("a");
  auto b = h.session("b");
  // Both have started (their strands recorded session_started) before the lock below.
  test::on_strand(*a, [] {});
  test::on_strand(*b, [] {});
  h.db->save_message(*b, text("b's"), true);
  h.db->flush();

  // Another connection holds the write lock: the writer cannot commit a's new row.
  SQLite::Database locker(path, SQLite::OPEN_READWRITE);
  locker.exec("BEGIN IMMEDIATE");
  h.db->save_message(*a, text("a's"), true);
  REQUIRE(test::eventually([&] { return h.db->stats().lock_waits >= 1; }));

  // b has nothing pending: read at once, though the writer is stuck.
  auto got_b = await<std::vector<chat_message>>(
      [&](auto cb) { h.db->async_chat_history(*b, std::nullopt, std::nullopt, std::move(cb)); });
  CHECK(contents(got_b.value) == std::vector<std::string>{"b's"});
  auto snap_b = await<std::optional<parley::session_snapshot>>(
      [&](auto cb) { h.db->async_load_session("testbot", "b", std::move(cb)); });
  CHECK(snap_b.value.has_value());

  // a's read waits (on a reader thread) until its row is committed, and then sees it.
  auto p = std::make_shared<std::promise<std::vector<chat_message>>>();
  auto f = p->get_future();
  h.db->async_chat_history(*a, std::nullopt, std::nullopt,
                           [p](std::vector<chat_message> m, std::exception_ptr) {
                             p->set_value(std::move(m));
                           });
  // Still held back while the lock is held (the writer retries every few milliseconds).
  REQUIRE(test::eventually([&] { return h.db->stats().write_failures >= 4; }));
  CHECK(f.wait_for(0s) == std::future_status::timeout);
  locker.exec("ROLLBACK");
  REQUIRE(f.wait_for(5s) == std::future_status::ready);
  CHECK(contents(f.get()) == std::vector<std::string>{"a's"});
  CHECK(h.db->stats().rows_dropped == 0);
}

TEST_CASE("async_load_session reads a persisted session's state and dictionary as last written") {
  test::temp_dir dir;
  auto define = [](parley::agent& a) {
    auto& start = a.new_state("start", true);
    auto& waiting = a.new_state("waiting");
    start.set_body([](parley::session& s) { s.set("name", "bob"); });
    start.go_to(waiting);
    waiting.after(std::chrono::hours(1)).go_to(start);
  };
  parley::db::sqlite_options o;
  o.commit_interval = 60s;
  test::harness h(dir.file("p.db"), define, o, /*persist=*/true);
  auto s = h.session("p1");
  test::on_strand(*s, [] {});  // its first body ran and queued its rows
  auto got = await<std::optional<parley::session_snapshot>>([&](auto cb) {
    h.db->async_load_session("testbot", "p1", std::move(cb));
  });
  REQUIRE(!got.error);
  REQUIRE(got.value.has_value());
  CHECK(got.value->state == "waiting");
  CHECK(got.value->variables["name"] == "bob");
  CHECK(got.value->timers.size() == 1);
  auto none = await<std::optional<parley::session_snapshot>>([&](auto cb) {
    h.db->async_load_session("testbot", "nobody", std::move(cb));
  });
  CHECK(!none.error);
  CHECK(!none.value.has_value());
}

TEST_CASE("a read callback that throws is logged, the reader thread goes on, each called once") {
  test::temp_dir dir;
  parley::db::sqlite_options o;
  o.readers = 1;  // one thread: if a throw ended it, nothing after it would run
  test::harness h(dir.file("t.db"), define_quiet, o);
  auto s = h.session("t1");
  std::atomic<int> first{0}, second{0};
  h.db->async_chat_history(*s, std::nullopt, std::nullopt,
                           [&](std::vector<chat_message>, std::exception_ptr) {
                             ++first;
                             throw std::runtime_error("a callback's bug");
                           });
  h.db->async_chat_history(*s, std::nullopt, std::nullopt,
                           [&](std::vector<chat_message>, std::exception_ptr) {
                             ++second;
                             throw 42;  // not even a std::exception
                           });
  auto after = await<std::vector<chat_message>>(
      [&](auto cb) { h.db->async_chat_history(*s, std::nullopt, std::nullopt, std::move(cb)); });
  CHECK(!after.error);
  CHECK(after.thread_name == "parley-read");
  h.db->close();
  CHECK(first == 1);
  CHECK(second == 1);
}

TEST_CASE("close() runs every read it accepted, a read after it gets db_error once") {
  test::temp_dir dir;
  test::harness h(dir.file("c.db"), define_quiet);
  auto s = h.session("c1");
  for (int i = 0; i < 20; ++i) h.db->save_message(*s, text("m"), true);
  constexpr int reads = 100;
  std::atomic<int> called{0}, failed{0};
  std::atomic<std::size_t> rows{0};
  for (int i = 0; i < reads; ++i)
    h.db->async_chat_page(*s, 0, 0, std::nullopt,
                          [&](std::vector<chat_message> page, std::exception_ptr e) {
                            if (e) ++failed;
                            rows += page.size();
                            ++called;
                          });
  h.db->close();  // returns once every accepted read has called back
  CHECK(called == reads);
  CHECK(failed == 0);
  CHECK(rows == std::size_t{reads} * 20);

  const auto caller = std::this_thread::get_id();
  int calls = 0;
  std::thread::id where;
  std::string message;
  h.db->async_chat_page(*s, 0, 10, std::nullopt,
                        [&](std::vector<chat_message> page, std::exception_ptr e) {
                          ++calls;
                          where = std::this_thread::get_id();
                          CHECK(page.empty());
                          try {
                            if (e) std::rethrow_exception(e);
                          } catch (const parley::db_error& err) {
                            message = err.what();
                          }
                        });
  CHECK(calls == 1);
  CHECK(where == caller);  // refused at once, inside the call
  CHECK(message.find("is closed") != std::string::npos);
}

TEST_CASE("an async read on a handler that is not open gets db_error naming the fix") {
  parley::db::sqlite_db_handler h({.path = "never-opened.db"});
  std::string message;
  h.async_load_session("a", "s", [&](std::optional<parley::session_snapshot> v, std::exception_ptr e) {
    CHECK(!v);
    try {
      if (e) std::rethrow_exception(e);
    } catch (const parley::db_error& err) {
      message = err.what();
    }
  });
  CHECK(message.find("call open()") != std::string::npos);
}
