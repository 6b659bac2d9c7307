#pragma once
// The two agents of the agent-to-agent tests, and a reader of the agent_message table.
#include <memory>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/websocket_agents.hpp>
#include <parley/platforms/websocket_platform.hpp>

#include "../db/support.hpp"

namespace agents_test {

using temp_folder = test::temp_dir;

inline std::shared_ptr<parley::db::sqlite_db_handler> sqlite(const std::string& path) {
  parley::db::sqlite_options o;
  o.path = path;
  return std::make_shared<parley::db::sqlite_db_handler>(o);
}

/// Answers every agent message with "answer to TEXT"; serves the WebSocket platform on port 0
/// (with `token` when given).
struct specialist {
  explicit specialist(const std::string& db, const std::string& token = {},
                      const std::string& tls_cert = {}, const std::string& tls_key = {})
      : agent("specialist") {
    agent.config().set("agent.threads", 2);
    agent.config().set("log.level", "error");
    auto& start = agent.new_state("start", true);
    auto& answer = agent.new_state("answer");
    start.when_agent_message().go_to(answer);
    answer.set_body([](parley::session& s) { s.reply("answer to " + s.event().text()); });
    answer.go_to(start);
    parley::platforms::websocket_options o;
    o.port = 0;
    o.token = token;
    o.tls_cert = tls_cert;
    o.tls_key = tls_key;
    platform = std::make_shared<parley::platforms::websocket_platform>(o);
    agent.use_platform(platform);
    agent.use_db(sqlite(db));
    agent.start();
  }
  ~specialist() { stop(); }
  void stop() {
    agent.stop();
    agent.wait();
  }
  std::string url() const {
    return (platform->options().tls_cert.empty() ? "ws://127.0.0.1:" : "wss://localhost:") +
           std::to_string(platform->port()) + "/";
  }

  parley::agent agent;
  std::shared_ptr<parley::platforms::websocket_platform> platform;
};

/// The front desk: a human's "X" goes to the specialist ("to URL X": to URL); answers are
/// relayed as "from URL: TEXT", failures as "error: REASON". After "loop" it sends every
/// answer back ("again"), forever but for the loop guard.
struct desk {
  desk(const std::string& db, std::string specialist_url, const std::string& token = {},
       std::size_t queue_limit = 256, bool tls_verify = true)
      : agent("desk"), url(std::move(specialist_url)) {
    agent.config().set("agent.threads", 2);
    agent.config().set("log.level", "error");
    auto& start = agent.new_state("start", true);
    auto& ask = agent.new_state("ask");
    auto& got = agent.new_state("got");
    auto& failed = agent.new_state("failed");
    start.when_agent_message().go_to(got);
    start.when_agent_error().go_to(failed);
    start.when_event(parley::event_kind::text).go_to(ask);
    ask.set_body([this](parley::session& s) {
      const std::string& t = s.event().text();
      if (t == "loop") s.set("loop", true);
      if (t.rfind("burst ", 0) == 0) {  // "burst N": N messages at once
        for (int i = 0, n = std::stoi(t.substr(6)); i < n; ++i) s.send_to_agent(url, "burst");
        return;
      }
      if (t.rfind("to ", 0) == 0) {
        const auto space = t.find(' ', 3);
        s.send_to_agent(t.substr(3, space - 3), t.substr(space + 1));
        return;
      }
      s.send_to_agent(url, t);
    });
    got.set_body([this](parley::session& s) {
      if (s.get("loop") == true) s.send_to_agent(url, "again");
      else s.reply("from " + s.event().sender() + ": " + s.event().text());
    });
    failed.set_body([](parley::session& s) {
      s.reply("error: " + s.event().payload().value("reason", std::string()));
    });
    for (auto* st : {&ask, &got, &failed}) st->go_to(start);
    platform = replies.platform();
    agent.use_platform(platform);
    agent.use_db(sqlite(db));
    parley::platforms::websocket_agent_options o;
    o.reconnect_attempts = 0;
    o.backoff = std::chrono::milliseconds(20);
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.token = token;
    o.queue_limit = queue_limit;
    o.tls_verify = tls_verify;
    parley::platforms::use_websocket_agents(agent, o);
    agent.start();
  }
  ~desk() { stop(); }
  void stop() {
    agent.stop();
    agent.wait();
  }
  std::shared_ptr<parley::session> session(const std::string& id) {
    return agent.get_or_create_session(id, platform.get());
  }

  parley::agent agent;
  std::string url;
  test::replies replies;
  std::shared_ptr<parley::callback_platform> platform;
};

struct agent_row {
  std::string direction, protocol, peer, message_id, causation_id, correlation_id, sender_agent,
      status;
  int depth = 0;
};

/// Every agent_message row of the file, in id order.
inline std::vector<agent_row> rows(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT direction, protocol, peer, message_id, causation_id, correlation_id, "
                      "sender_agent, status, depth FROM agent_message ORDER BY id");
  std::vector<agent_row> out;
  while (q.executeStep())
    out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                   q.getColumn(2).getString(), q.getColumn(3).getString(),
                   q.getColumn(4).getString(), q.getColumn(5).getString(),
                   q.getColumn(6).getString(), q.getColumn(7).getString(),
                   q.getColumn(8).getInt()});
  return out;
}

}  // namespace agents_test
