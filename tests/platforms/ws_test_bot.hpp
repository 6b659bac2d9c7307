#pragma once
// The bot and server behind the WebSocket tests: it says "welcome", then answers every event
// with a JSON description of it, and a few commands ("rich", "flood N SIZE", "get VAR",
// "close", "slow") exercise replies, slow readers and shutdown.
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <parley/agent.hpp>
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

/// A chat log kept in memory: stands in for the SQLite handler (issue 4) so that
/// fetch_user_messages can be tested before it lands. Only the chat table is kept.
class memory_chat_log final : public parley::db_handler {
 public:
  std::string_view name() const override { return "memory"; }
  void open(const parley::agent&) override {}
  void close() override {}
  void session_started(const parley::session&) override {}
  void session_closed(const parley::session&, std::string_view) override {}
  void save_message(const parley::session& s, const parley::reply& m, bool is_user,
                    std::function<void()> committed) override {
    std::lock_guard l(mu_);
    auto& rows = rows_[s.id()];
    rows.push_back({static_cast<std::int64_t>(rows.size() + 1),
                    std::string(parley::to_string(m.kind)), m.content(), is_user, m.timestamp});
    if (committed) committed();
  }
  void save_transition(const parley::session&, const parley::transition&,
                       const parley::event*) override {}
  void save_prediction(const parley::session&, std::string_view,
                       const parley::intent_prediction&) override {}
  void save_event(const parley::session*, std::string_view, std::string_view) override {}
  void save_variables(const parley::session&) override {}
  void save_reasoning_event(const parley::session&, std::string_view, const parley::json&) override {}
  void save_timer(const parley::session&, const parley::pending_timer&) override {}
  void delete_timer(const parley::session&, std::string_view) override {}
  std::vector<parley::chat_message> chat_history(
      const parley::session& s, std::optional<std::size_t>,
      std::optional<parley::wall_clock::time_point> until) override {
    std::lock_guard l(mu_);
    std::vector<parley::chat_message> out;
    for (const auto& m : rows_[s.id()])
      if (!until || m.timestamp <= *until) out.push_back(m);
    return out;
  }
  std::vector<parley::reasoning_event> reasoning_events(
      const parley::session&, std::optional<parley::wall_clock::time_point>) override {
    return {};
  }
  std::optional<parley::session_snapshot> load_session(std::string_view, std::string_view) override {
    return std::nullopt;
  }
  void delete_session(std::string_view, std::string_view id) override {
    std::lock_guard l(mu_);
    rows_.erase(std::string(id));
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<parley::chat_message>> rows_;
};

/// An agent running the test bot with a WebSocket platform on a free port.
struct server {
  parley::agent agent{"wsbot"};
  std::shared_ptr<parley::platforms::websocket_platform> ws;

  explicit server(parley::platforms::websocket_options o = test_options(),
                  std::shared_ptr<parley::db_handler> db = nullptr) {
    agent.config().set("agent.threads", 2);
    agent.config().set("log.level", "warn");
    define_bot(agent);
    if (db) agent.use_db(std::move(db));
    ws = std::make_shared<parley::platforms::websocket_platform>(std::move(o));
    agent.use_platform(ws);
    agent.start();
  }
  ~server() {
    agent.stop();
    agent.wait();
  }
  std::uint16_t port() const { return ws->port(); }
};

}  // namespace wstest
