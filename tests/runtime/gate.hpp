#pragma once
// A wait a test ends: a coroutine body does `co_await gate.wait()` and stays suspended until
// the test calls open() (the wait returns) or the body is cancelled (the wait throws
// operation_aborted, as any Asio operation would). Counts the waits begun and ended, so a test
// waits for "the body is suspended" instead of sleeping.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace test {

class gate {
 public:
  /// In a coroutine body (on its strand): one wait at a time per gate.
  boost::asio::awaitable<void> wait() {
    auto ex = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer t(ex, std::chrono::hours(1));
    {
      std::lock_guard l(m_);
      timer_ = &t;
      ex_ = ex;
      opened_ = false;
      ++begun_;
    }
    cv_.notify_all();
    boost::system::error_code ec;
    co_await t.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    bool opened = false;
    {
      std::lock_guard l(m_);
      timer_ = nullptr;
      opened = opened_;
      ++ended_;
    }
    cv_.notify_all();
    if (!opened) throw boost::system::system_error(boost::asio::error::operation_aborted);
  }
  /// Any thread: ends the wait in progress normally (wait_begun first).
  void open() {
    boost::asio::any_io_executor ex;
    {
      std::lock_guard l(m_);
      ex = ex_;
    }
    boost::asio::post(ex, [this] {
      std::lock_guard l(m_);
      if (!timer_) return;
      opened_ = true;
      timer_->cancel();
    });
  }
  /// Any thread: waits (at most `limit`) until `n` waits have begun.
  bool wait_begun(int n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock l(m_);
    return cv_.wait_for(l, limit, [&] { return begun_ >= n; });
  }
  /// Any thread: waits until `n` waits have ended (opened or cancelled).
  bool wait_ended(int n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock l(m_);
    return cv_.wait_for(l, limit, [&] { return ended_ >= n; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  boost::asio::steady_timer* timer_ = nullptr;
  boost::asio::any_io_executor ex_;
  bool opened_ = false;
  int begun_ = 0;
  int ended_ = 0;
};

}  // namespace test
