#include "reader_pool.hpp"

#include <algorithm>

#include <parley/log.hpp>

#include "schema.hpp"

namespace parley::db::detail {

reader_pool::reader_pool(std::string path, std::chrono::milliseconds busy_timeout,
                         std::size_t threads, writer& w)
    : path_(std::move(path)), busy_(busy_timeout), writer_(w) {
  threads = std::max<std::size_t>(1, threads);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

reader_pool::~reader_pool() { stop(); }

reader_pool::lease reader_pool::take() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      auto c = std::move(free_.back());
      free_.pop_back();
      return lease(*this, std::move(c));
    }
  }
  return lease(*this, std::make_unique<reader_conn>(open_for_reading(path_, busy_)));
}

void reader_pool::give_back(std::unique_ptr<reader_conn> c) {
  std::lock_guard lock(mutex_);
  if (free_.size() < 16) free_.push_back(std::move(c));
}

bool reader_pool::submit(std::uint64_t after, job j) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    jobs_.push_back({after, std::move(j)});
  }
  work_.notify_one();
  return true;
}

void reader_pool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  std::lock_guard lock(mutex_);
  threads_.clear();
  free_.clear();
}

void reader_pool::run() {
  name_this_thread("parley-read");
  std::unique_ptr<reader_conn> conn;
  for (;;) {
    queued q;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) break;  // stopping, and every job queued before has run
      q = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // Read-your-writes: the rows the caller queued before its call are committed first. This
    // thread waits, not the caller; the writer commits at once for it (writer::mark).
    writer_.wait_processed(q.after);
    std::exception_ptr error;
    if (!conn) {
      try {
        conn = std::make_unique<reader_conn>(open_for_reading(path_, busy_));
      } catch (...) {
        error = std::current_exception();  // this job gets it; the next one tries again
      }
    }
    try {
      q.fn(conn.get(), error);
    } catch (const std::exception& e) {
      PARLEY_LOG(error, "db: a read's callback threw: " << e.what());
    } catch (...) {
      PARLEY_LOG(error, "db: a read's callback threw");
    }
  }
}

}  // namespace parley::db::detail
