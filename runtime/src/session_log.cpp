// The chat log and reasoning events: what a session records and reads back.
#include <parley/session.hpp>

#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley {

namespace {
// Awaits a db_handler read: `start(done)` begins it; `done` may run on any thread (a reader
// thread, or inside the call), so the coroutine is resumed through the session's strand.
template <class T, class Start>
net::awaitable<T> read_on_strand(const strand_type& strand, Start start) {
  co_return co_await net::async_initiate<decltype(net::use_awaitable),
                                         void(std::exception_ptr, T)>(
      [&strand, &start](auto handler) {
        // read_callback is a std::function (copyable); the handler is move-only.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        start([strand, h](T result, std::exception_ptr error) {
          net::post(strand, [h, result = std::move(result), error]() mutable {
            (*h)(error, std::move(result));
          });
        });
      },
      net::use_awaitable);
}
}  // namespace

// ---- chat log and reasoning ------------------------------------------------------------------

void session::save_message(const parley::reply& message, bool is_user) {
  if (auto* db = agent_->db()) db->save_message(*this, message, is_user);
}

std::vector<chat_message> session::get_chat_history(std::optional<std::size_t> n,
                                                    std::optional<wall_clock::time_point> until) {
  if (auto* db = agent_->db()) return db->chat_history(*this, n, until);
  PARLEY_LOG(warn, "session " << session_tag(id_) << ": get_chat_history needs a DB handler (--db PATH)");
  return {};
}

net::awaitable<std::vector<chat_message>> session::chat_history(
    std::optional<std::size_t> n, std::optional<wall_clock::time_point> until) {
  auto* db = agent_->db();
  if (!db) {
    PARLEY_LOG(warn, "session " << session_tag(id_) << ": chat_history needs a DB handler (--db PATH)");
    co_return std::vector<chat_message>{};
  }
  auto self = shared_from_this();
  co_return co_await read_on_strand<std::vector<chat_message>>(
      strand_, [&](db_handler::read_callback<std::vector<chat_message>> done) {
        db->async_chat_history(*self, n, until, std::move(done));
      });
}

void session::save_reasoning_event(std::string kind, json payload) {
  if (auto* db = agent_->db()) db->save_reasoning_event(*this, kind, payload);
}

std::vector<reasoning_event> session::get_reasoning_events(
    std::optional<wall_clock::time_point> until) {
  if (auto* db = agent_->db()) return db->reasoning_events(*this, until);
  return {};
}

net::awaitable<std::vector<reasoning_event>> session::reasoning_events(
    std::optional<wall_clock::time_point> until) {
  auto* db = agent_->db();
  if (!db) co_return std::vector<reasoning_event>{};
  auto self = shared_from_this();
  co_return co_await read_on_strand<std::vector<reasoning_event>>(
      strand_, [&](db_handler::read_callback<std::vector<reasoning_event>> done) {
        db->async_reasoning_events(*self, until, std::move(done));
      });
}

}  // namespace parley
