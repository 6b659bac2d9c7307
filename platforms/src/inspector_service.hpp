#pragma once
// The web inspector's server side, without sockets (docs/inspector.md): the answers to GET
// /inspect/..., computed on a small pool of query threads with read-only connections of their
// own (never on an io thread), and the live followers, fed by one watcher thread that looks at
// the database only while someone follows.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <parley/db/reader.hpp>

#include "beast.hpp"

namespace parley::platforms::detail {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// Whether `path` is the inspector's: /inspect or below it.
bool is_inspector_path(std::string_view path);

/// A JSON error answer: {"error": why}.
response inspector_error(http::status status, unsigned version, bool keep_alive,
                         const std::string& why);

/// A live follower (/inspect/live), as the watcher sees it.
class live_client {
 public:
  virtual ~live_client() = default;
  /// Any thread: queues a text frame.
  virtual void push(std::shared_ptr<const std::string> frame) = 0;
};

/// What a live follower asked for: one session's rows after an id, or news of any change.
struct follow_spec {
  std::optional<std::int64_t> session;
  std::int64_t after = 0;
};

class inspector_service {
 public:
  /// `db_path`: the database to read, a SQLite file or a postgresql:// URI ("" = none: the
  /// API answers 503). `token`: what
  /// /inspect/api and /inspect/live need ("" = nothing). `threads` query threads start with the
  /// first query.
  inspector_service(std::string db_path, std::string token, std::size_t threads = 2);
  ~inspector_service();
  inspector_service(const inspector_service&) = delete;
  inspector_service& operator=(const inspector_service&) = delete;

  /// Any thread: answers a GET under /inspect. The page's own files are answered at once (on
  /// the caller's thread); the API's queries run on a query thread, which calls `done`. `done`
  /// is called exactly once (not at all after stop()).
  void handle(const request& req, std::function<void(response)> done);

  /// Any thread: the refusal of a /inspect/live upgrade (token, parameters), or nullopt with
  /// `spec` filled in.
  std::optional<response> check_live(const request& req, follow_spec& spec) const;
  /// Any thread: `c` gets frames (docs/inspector.md) until it expires.
  void follow(std::weak_ptr<live_client> c, follow_spec spec);

  /// Joins the threads; later calls of handle() answer 503. Idempotent.
  void stop();

 private:
  struct follower {
    std::weak_ptr<live_client> client;
    follow_spec spec;
    bool fresh = true;  // not yet caught up
  };
  void query_thread();
  void watch();
  std::int64_t catch_up(db::reader& db, const follower& f, live_client& c);
  bool check_token(const request& req, std::string& why) const;

  std::string path_;
  std::string token_;
  std::size_t thread_count_;

  std::mutex mutex_;
  std::condition_variable work_, watch_cv_;
  // A query: the thread's connection, or null and why there is none.
  std::deque<std::function<void(db::reader*, const std::string&)>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::vector<follower> followers_;
  std::thread watcher_;  // started with the first follower
};

}  // namespace parley::platforms::detail
