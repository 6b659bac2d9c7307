#pragma once
// The readers: connections lent to the callers of the blocking reads, and a few threads, each
// with its own connection, for the async reads. Private to parley_db.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "writer.hpp"

namespace parley::db::detail {

/// A reading connection and its prepared statements. One thread at a time.
struct reader_conn {
  std::unique_ptr<SQLite::Database> db;
  statement_cache statements;
  explicit reader_conn(std::unique_ptr<SQLite::Database> d) : db(std::move(d)), statements(*db) {}
};

class reader_pool {
 public:
  /// An async read: gets the reader thread's connection, or (null and) the error that kept it
  /// from opening. Must not throw (what it throws is logged and swallowed).
  using job = std::function<void(reader_conn*, std::exception_ptr)>;

  /// Starts `threads` (at least 1) reader threads; their connections open at their first job.
  /// `w` must outlive the pool.
  reader_pool(std::string path, std::chrono::milliseconds busy_timeout, std::size_t threads,
              writer& w);
  ~reader_pool();
  reader_pool(const reader_pool&) = delete;
  reader_pool& operator=(const reader_pool&) = delete;

  /// A connection lent to the calling thread (the blocking reads), returned when it ends.
  class lease {
   public:
    lease(reader_pool& pool, std::unique_ptr<reader_conn> c) : pool_(pool), c_(std::move(c)) {}
    ~lease() { pool_.give_back(std::move(c_)); }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    reader_conn& operator*() { return *c_; }
    reader_conn* operator->() { return c_.get(); }

   private:
    reader_pool& pool_;
    std::unique_ptr<reader_conn> c_;
  };
  /// Any thread. @throws db_error when a new connection cannot be opened.
  lease take();

  /// Any thread; never blocks. Runs `j` on a reader thread once the writer has processed op
  /// `after` (writer::mark), in about the order of the calls. The wait is the reader thread's:
  /// a job waiting for the writer holds one reader, never the caller. False, with `j` not run,
  /// once stop() has begun.
  bool submit(std::uint64_t after, job j);

  /// Refuses new jobs, runs every queued one (the writer must still run), joins the threads.
  /// Idempotent. Not from a reader thread.
  void stop();

 private:
  struct queued {
    std::uint64_t after = 0;
    job fn;
  };
  void run();
  void give_back(std::unique_ptr<reader_conn> c);

  std::string path_;
  std::chrono::milliseconds busy_;
  writer& writer_;

  std::mutex mutex_;
  std::condition_variable work_;
  std::deque<queued> jobs_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<reader_conn>> free_;  // lent to blocking reads
  std::vector<std::thread> threads_;
};

}  // namespace parley::db::detail
