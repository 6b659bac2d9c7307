// The inspectors' reader on both backends at once: the same conversation recorded to a SQLite
// file and to PostgreSQL reads back as the same sessions list, the same rows and the same
// diagram through parley/db/inspect.hpp; filters mean the same on both; the PostgreSQL
// reader's change marker moves when the agent commits; bad URIs name the fix.
#include <doctest/doctest.h>

#include <set>

#include <parley/agent_link.hpp>
#include <parley/db/inspect.hpp>
#include <parley/db/reader.hpp>
#include <parley/db/timestamp.hpp>
#include <parley/errors.hpp>
#include <parley/log.hpp>

#include "backend.hpp"
#include "greetings_bot.hpp"
#include "pg_support.hpp"
#include "support.hpp"

using nlohmann::json;

namespace {

// The same conversation, through whichever handler.
void converse(std::shared_ptr<parley::db_handler> handler) {
  test::harness h(std::move(handler), greetings::define);
  h.session("secret-alice-1", "Alice");
  h.say("secret-alice-1", "hello");
  REQUIRE(h.got.wait("secret-alice-1", 3));
  h.say("secret-alice-1", "good");
  REQUIRE(h.got.wait("secret-alice-1", 4));
  h.session("secret-bob-2", "bob");
  REQUIRE(h.got.wait("secret-bob-2", 1));
}

// What may differ between two databases holding the same rows: ids and times.
json without_ids(json j) {
  if (j.is_object()) {
    for (const char* k : {"row", "id", "last_id", "timestamp", "started", "last_activity", "other_session"})
      j.erase(k);
    for (auto& [k, v] : j.items()) v = without_ids(v);
  } else if (j.is_array()) {
    for (auto& v : j) v = without_ids(v);
  }
  return j;
}

}  // namespace

TEST_CASE("postgres: the inspectors read the same answers from SQLite and PostgreSQL") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  test::temp_dir dir;
  const auto file = dir.file("same.db");
  test::backend pg;
  converse(std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = file}));
  converse(pg.handler());
  auto lite = parley::db::open_reader(file);
  auto post = parley::db::open_reader(pg.where());
  CHECK(lite->dialect() == parley::db::dialect::sqlite);
  CHECK(post->dialect() == parley::db::dialect::postgresql);

  const auto a = parley::db::list_sessions(*lite, {});
  const auto b = parley::db::list_sessions(*post, {});
  CHECK(a["total"] == 2);
  CHECK(without_ids(a) == without_ids(b));
  CHECK(a["sessions"][0]["turns"] == 0);  // bob: newest activity first
  CHECK(a["sessions"][1]["turns"] == 2);

  // The filters mean the same: part of a user in any case, a time prefix, a tag.
  for (auto* r : {lite.get(), post.get()}) {
    INFO(r->where());
    parley::db::session_query q;
    q.q = "ALI";
    CHECK(parley::db::list_sessions(*r, q)["total"] == 1);
    q = {};
    q.until = parley::db::format_timestamp(parley::wall_clock::now()).substr(0, 10);
    CHECK(parley::db::list_sessions(*r, q)["total"] == 2);
    q.until = "2000-01-01";
    CHECK(parley::db::list_sessions(*r, q)["total"] == 0);
    q = {};
    q.q = parley::session_tag("secret-bob-2");
    const auto found = parley::db::list_sessions(*r, q);
    REQUIRE(found["total"] == 1);
    CHECK(found["sessions"][0]["user"] == "bob");
    q = {};
    q.since = "2999";
    CHECK(parley::db::list_sessions(*r, q)["total"] == 0);
  }

  const auto alice_lite = a["sessions"][1]["row"].get<std::int64_t>();
  const auto alice_pg = b["sessions"][1]["row"].get<std::int64_t>();
  const auto rows_lite = parley::db::session_rows(*lite, alice_lite, 0, 1000);
  const auto rows_pg = parley::db::session_rows(*post, alice_pg, 0, 1000);
  CHECK(rows_lite["rows"].size() >= 10);
  CHECK(without_ids(rows_lite) == without_ids(rows_pg));
  // A page: the same first rows, and "more".
  const auto page = parley::db::session_rows(*post, alice_pg, 0, 3);
  CHECK(page["more"] == true);
  CHECK(page["rows"].size() == 3);
  const auto rest = parley::db::session_rows(*post, alice_pg, page["last_id"].get<std::int64_t>(), 1000);
  CHECK(rest["rows"].size() + 3 == rows_pg["rows"].size());
  CHECK_THROWS_AS(parley::db::session_rows(*post, 999999, 0, 10), parley::db::no_such_session);
  CHECK(parley::db::last_row_id(*post) >= rows_pg["last_id"].get<std::int64_t>());

  for (auto format : {parley::diagram_format::dot, parley::diagram_format::mermaid}) {
    CHECK(parley::db::draw_diagram(*lite, {std::nullopt, "", format}) ==
          parley::db::draw_diagram(*post, {std::nullopt, "", format}));
    CHECK(parley::db::draw_diagram(*lite, {alice_lite, "", format}) ==
          parley::db::draw_diagram(*post, {alice_pg, "", format}));
  }
}

TEST_CASE("postgres: the reader's change marker moves when the agent commits") {
  test::backend pg;
  if (pg.skipped()) return;
  test::harness h(pg.handler(), greetings::define);
  h.session("m1");
  REQUIRE(h.got.wait("m1", 1));
  auto r = parley::db::open_reader(pg.where());
  REQUIRE(test::eventually([&] { return parley::db::list_sessions(*r, {})["total"] == 1; }));
  const auto row = parley::db::list_sessions(*r, {})["sessions"][0]["row"].get<std::int64_t>();
  const auto before = r->change_marker();
  h.say("m1", "hello");
  REQUIRE(h.got.wait("m1", 3));
  CHECK(test::eventually([&] { return r->change_marker() != before; }));
  CHECK(test::eventually([&] { return parley::db::session_rows(*r, row, 0, 100)["rows"].size() >= 4; }));
}

TEST_CASE("postgres: opening a reader names a server that is down, a database that is not Parley's, never the password") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  try {
    parley::db::open_reader("postgresql://me:hunter2@127.0.0.1:1/x?connect_timeout=2");
    FAIL("a server that is down was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("cannot read PostgreSQL") != std::string::npos);
  }
  try {
    parley::db::open_reader(url);  // the server's own "postgres" database
    FAIL("a database without Parley's tables was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("not a Parley database") != std::string::npos);
  }
}

TEST_CASE("postgres: parley-inspect chain follows a message from a SQLite file into a PostgreSQL database") {
  test::backend pg;
  if (pg.skipped()) return;
  test::temp_dir dir;
  const auto file = dir.file("a.db");
  // Agent a (SQLite) sends msg-1; agent b (PostgreSQL) receives it and answers with msg-2.
  auto record = [](std::shared_ptr<parley::db_handler> handler, const std::string& agent,
                   std::vector<parley::agent_message_record> rows) {
    test::harness h(std::move(handler), greetings::define, false, agent);
    auto s = h.session("s-" + agent);
    REQUIRE(h.got.wait("s-" + agent, 1));
    test::on_strand(*s, [&] {
      for (const auto& r : rows) h.agent.db()->save_agent_message(*s, r);
    });
  };
  parley::agent_message_record out;
  out.direction = "out";
  out.protocol = "websocket";
  out.lineage.id = "msg-1";
  out.lineage.sender_agent = "a";
  out.content = "question";
  out.status = "sent";
  auto in = out;
  in.direction = "in";
  in.status = "handled";
  parley::agent_message_record answer = out;
  answer.lineage.id = "msg-2";
  answer.lineage.causation_id = "msg-1";
  answer.lineage.sender_agent = "b";
  answer.content = "answer";
  record(std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = file}), "a", {out});
  record(pg.handler(), "b", {in, answer});
  auto r = test::run({PARLEY_INSPECT_BIN, file, pg.where(), "chain", "msg-1", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto rows = json::parse(r.out);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["file"] == "a.db");
  CHECK(rows[0]["agent"] == "a");
  std::set<std::string> ids;
  for (const auto& row : rows) ids.insert(row["message_id"].get<std::string>());
  CHECK(ids == std::set<std::string>{"msg-1", "msg-2"});
  for (const auto& row : rows)
    if (row["agent"] == "b") CHECK(row["file"].get<std::string>().starts_with("postgresql://"));
}
