#pragma once
// The bot and server behind the WebSocket tests: it says "welcome", then answers every event
// with a JSON description of it, and a few commands ("rich", "flood N SIZE", "get VAR",
// "close", "slow") exercise replies, slow readers and shutdown.
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>

#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <parley/agent.hpp>
#include <parley/db/sqlite_db_handler.hpp>
#include <parley/platforms/websocket_platform.hpp>

namespace wstest {

inline void define_bot(parley::agent& a) {
  using parley::session;
  auto& start = a.new_state("start", /*initial=*/true);
  auto& echo = a.new_state("echo");
  auto& slow = a.new_state("slow");
  start.set_body([](session& s) { s.reply("welcome"); });
  auto describe = [](session& s) {
    const auto& e = s.event();
    const std::string& t = e.text();
    if (t == "rich") {
      s.reply("plain");
      s.reply_markdown("**bold**");
      s.reply_html("<b>bold</b>");
      s.reply_options({"A", "B"});
      s.reply_json({{"k", 1}});
      s.reply_file({"a.txt", "text/plain", "aGk="});
      s.reply_image({"p.png", "image/png", "iVBORw0KGgo="});
      s.reply_location(46.2, 6.1);
      s.reply_reasoning_step({{"kind", "plan"}, {"step", "1"}, {"summary", "s"}, {"details", "d"}});
      s.reply_task_list(parley::json::array({{{"id", 1}, {"description", "x"}, {"status", "done"}, {"result", "ok"}}}));
      return;
    }
    if (t.rfind("flood ", 0) == 0) {
      int n = 0, size = 0;
      std::sscanf(t.c_str(), "flood %d %d", &n, &size);
      for (int i = 0; i < n; ++i) s.reply(std::string(static_cast<std::size_t>(size), 'x'));
      s.reply("flood done");
      return;
    }
    if (t.rfind("numbered ", 0) == 0) {  // N frames of SIZE bytes, each starting with its index
      int n = 0, size = 0;
      std::sscanf(t.c_str(), "numbered %d %d", &n, &size);
      for (int i = 0; i < n; ++i) {
        auto text = std::to_string(i) + ':';
        text.resize(static_cast<std::size_t>(size), 'x');
        s.reply(text);
      }
      s.reply("numbered done");
      return;
    }
    if (t.rfind("get ", 0) == 0) {
      s.reply_json({{"var", t.substr(4)}, {"value", s.get(t.substr(4))}});
      return;
    }
    if (t == "close") {
      s.reply("closing");
      s.close("the bot closed it");
      return;
    }
    parley::json j = {{"kind", std::string(parley::to_string(e.kind()))},
                      {"human", e.human()},
                      {"text", e.text()},
                      {"payload", e.payload()}};
    if (const auto* f = e.file()) j["file"] = {{"name", f->name}, {"type", f->type}, {"base64", f->base64}};
    s.reply_json(std::move(j));
  };
  auto slow_body = [](session& s) -> parley::net::awaitable<void> {
    s.reply("started");
    parley::net::steady_timer t(co_await parley::net::this_coro::executor);
    t.expires_after(std::chrono::milliseconds(300));
    co_await t.async_wait(parley::net::use_awaitable);
    s.reply("done");
  };
  auto is_slow = [](session& s) { return s.event().text() == "slow"; };
  start.when_event().with_condition(is_slow, "slow").go_to(slow);
  start.when_event().go_to(echo);
  echo.set_body(describe);
  echo.when_event().with_condition(is_slow, "slow").go_to(slow);
  echo.when_event().go_to(echo);
  slow.set_body(slow_body);
  slow.when_event().go_to(echo);
}

/// Options for tests: port 0, generous limits unless a test narrows them.
inline parley::platforms::websocket_options test_options() {
  parley::platforms::websocket_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.rate_limit = 0;  // off unless the test is about it
  return o;
}

/// A fresh folder under the system's temp dir, removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static std::atomic<int> n{0};
    path = std::filesystem::temp_directory_path() /
           ("parley-ws-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// The SQLite DB handler on a file in `dir`.
inline std::shared_ptr<parley::db_handler> sqlite_in(const temp_dir& dir) {
  parley::db::sqlite_options o;
  o.path = (dir.path / "chat.db").string();
  return std::make_shared<parley::db::sqlite_db_handler>(std::move(o));
}

/// An agent running the test bot with a WebSocket platform on a free port.
struct server {
  parley::agent agent{"wsbot"};
  std::shared_ptr<parley::platforms::websocket_platform> ws;

  /// `setup`, when given, runs on the agent before it starts (e.g. to set config keys).
  explicit server(parley::platforms::websocket_options o = test_options(),
                  std::shared_ptr<parley::db_handler> db = nullptr, bool persist = false,
                  int threads = 2, const std::function<void(parley::agent&)>& setup = {}) {
    agent.config().set("agent.threads", threads);
    agent.persist_sessions(persist);
    agent.config().set("log.level", "warn");
    define_bot(agent);
    if (db) agent.use_db(std::move(db));
    ws = std::make_shared<parley::platforms::websocket_platform>(std::move(o));
    agent.use_platform(ws);
    if (setup) setup(agent);
    agent.start();
  }
  ~server() {
    agent.stop();
    agent.wait();
  }
  std::uint16_t port() const { return ws->port(); }
};

}  // namespace wstest
