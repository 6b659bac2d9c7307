#pragma once
// Reply numbers and the resend from a client's cursor (?since=N), over real loopback sockets,
// written once for any database: the platforms tests run them on SQLite files, the PostgreSQL
// tests on a throwaway server. Each case makes its agents (and so its handlers) with `make_db`,
// every one on the same database.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <doctest/doctest.h>

#include "ws_test_bot.hpp"
#include "ws_test_client.hpp"

namespace wstest::resume {

using make_db = std::function<std::shared_ptr<parley::db_handler>()>;

/// The handshake target of session `id`, with a cursor when given.
inline std::string at(const std::string& id, std::optional<std::int64_t> since = {}) {
  return "/?session_id=" + id + (since ? "&since=" + std::to_string(*since) : std::string());
}

/// The next frame, which must be a numbered reply; returns it.
inline json reply(client& c) {
  json f = c.read();
  INFO("frame: " << f.dump());
  REQUIRE(f.contains("seq"));
  REQUIRE(f["seq"].is_number_integer());
  return f;
}

/// Reads replies numbered `from`..`to`, in order, each once; returns them.
inline std::vector<json> replies(client& c, std::int64_t from, std::int64_t to) {
  std::vector<json> out;
  for (auto n = from; n <= to; ++n) {
    json f = reply(c);
    REQUIRE(f["seq"].get<std::int64_t>() == n);
    out.push_back(std::move(f));
  }
  return out;
}

/// Each reply frame carries the next number of its session, 1, 2, 3..., whatever its kind; a
/// client with ?since=0 gets every stored reply again, as it went live, numbers included.
inline void numbers_every_reply(const make_db& db) {
  server srv(test_options(), db());
  net::io_context io;
  client c(io);
  REQUIRE(!c.connect(srv.port(), at("n1")));
  CHECK(replies(c, 1, 1)[0]["message"] == "welcome");
  c.say("x");
  CHECK(replies(c, 2, 2)[0]["action"] == "agent_reply_json");
  c.say("rich");  // ten replies, one of each kind
  const auto rich = replies(c, 3, 12);
  CHECK(rich.front()["action"] == "agent_reply_str");
  CHECK(rich[6]["action"] == "agent_reply_image");
  CHECK(rich.back()["action"] == "agent_reply_task_list_update");
  for (const auto& f : rich) CHECK(f["history"] == false);
  // Per session: another one starts at 1.
  client other(io);
  REQUIRE(!other.connect(srv.port(), at("n2")));
  CHECK(replies(other, 1, 1)[0]["message"] == "welcome");
  // Stored with their numbers: all of them again, then the next one live.
  client again(io);
  REQUIRE(!again.connect(srv.port(), at("n1", 0)));
  const auto all = replies(again, 1, 12);
  CHECK(all[0]["message"] == "welcome");
  CHECK(all[0]["history"] == false);
  for (std::size_t i = 0; i < rich.size(); ++i) {
    CHECK(all[i + 2]["action"] == rich[i]["action"]);
    CHECK(all[i + 2]["message"] == rich[i]["message"]);
  }
  again.say("y");
  CHECK(replies(again, 13, 13)[0]["message"]["text"] == "y");
  // The first connection got it too (every connection of the session does).
  CHECK(replies(c, 13, 13)[0]["message"]["text"] == "y");
}

/// A new agent on the same database numbers a returning session's replies on from the last
/// stored one: resumed (`persist`) or started afresh under the same id.
inline void numbers_on_after_restart(const make_db& db, bool persist) {
  net::io_context io;
  {
    server first(test_options(), db(), persist);
    client c(io);
    REQUIRE(!c.connect(first.port(), at("r1")));
    replies(c, 1, 1);
    c.say("x");
    replies(c, 2, 2);
    c.close();
  }
  server second(test_options(), db(), persist);
  client c(io);
  REQUIRE(!c.connect(second.port(), at("r1")));
  std::int64_t next = 3;
  if (!persist) CHECK(replies(c, next, next)[0]["message"] == "welcome");  // a fresh start
  if (!persist) ++next;
  c.say("y");
  CHECK(replies(c, next, next)[0]["message"]["text"] == "y");
  // Every reply of both lives is stored once, under its own number.
  client all(io);
  REQUIRE(!all.connect(second.port(), at("r1", 0)));
  replies(all, 1, next);
}

/// ?since=N gets exactly the stored replies after N, then live ones; N at or beyond the last
/// gets nothing resent.
inline void resends_after_the_cursor(const make_db& db) {
  server srv(test_options(), db());
  net::io_context io;
  {
    client c(io);
    REQUIRE(!c.connect(srv.port(), at("s1")));
    replies(c, 1, 1);
    c.say("a");
    replies(c, 2, 2);
    c.say("b");
    replies(c, 3, 3);
    c.close();
  }
  client c(io);
  REQUIRE(!c.connect(srv.port(), at("s1", 1)));
  const auto resent = replies(c, 2, 3);
  CHECK(resent[0]["message"]["text"] == "a");
  CHECK(resent[1]["message"]["text"] == "b");
  c.say("c");
  CHECK(replies(c, 4, 4)[0]["message"]["text"] == "c");
  // At the last one: nothing resent, the next frame is the live answer. (A resent frame would
  // come first: live replies wait for the resend to end.)
  client at_last(io);
  REQUIRE(!at_last.connect(srv.port(), at("s1", 4)));
  at_last.say("d");
  CHECK(replies(at_last, 5, 5)[0]["message"]["text"] == "d");
  // Beyond the last (a cursor from a deleted session, say): nothing, then live replies.
  client beyond(io);
  REQUIRE(!beyond.connect(srv.port(), at("s1", 1000)));
  beyond.say("e");
  CHECK(replies(beyond, 6, 6)[0]["message"]["text"] == "e");
}

/// Replies the session sends while the resend runs (several pages of it) reach the client
/// once each, after the stored ones, in order.
inline void live_replies_during_the_resend(const make_db& db) {
  server srv(test_options(), db());
  net::io_context io;
  {
    client c(io);
    REQUIRE(!c.connect(srv.port(), at("d1")));
    c.say("numbered 450 500");  // welcome, 450 replies and "numbered done": 452 stored
    replies(c, 1, 452);
    c.close();
  }
  client c(io);
  REQUIRE(!c.connect(srv.port(), at("d1", 0)));
  c.say("numbered 300 50");  // handled while the 452 stored ones are read, page by page
  const auto got = replies(c, 1, 452 + 301);
  CHECK(got[451]["message"] == "numbered done");
  CHECK(got.back()["message"] == "numbered done");
  CHECK(got[452]["message"].get<std::string>().rfind("0:", 0) == 0);
  // Nothing more: the next frame answers the next message.
  c.say("z");
  CHECK(replies(c, 754, 754)[0]["message"]["text"] == "z");
}

}  // namespace wstest::resume
