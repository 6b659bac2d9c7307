#pragma once
// Test helpers: run an agent on a callback platform, collect replies per session, and wait for
// conditions with a time limit (never a sleep).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>

namespace test {

using namespace std::chrono_literals;

// Replies of every session, as plain text, in arrival order.
class recorder {
 public:
  void add(const std::string& session, const std::string& text) {
    {
      std::lock_guard l(m_);
      replies_[session].push_back(text);
    }
    cv_.notify_all();
  }
  std::vector<std::string> of(const std::string& session) const {
    std::lock_guard l(m_);
    auto it = replies_.find(session);
    return it == replies_.end() ? std::vector<std::string>{} : it->second;
  }
  // Waits until pred() holds (checked on every reply and at least every 5 ms).
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
    std::unique_lock l(m_);
    auto until = std::chrono::steady_clock::now() + limit;
    while (true) {
      l.unlock();
      if (pred()) return true;
      l.lock();
      if (std::chrono::steady_clock::now() >= until) return false;
      cv_.wait_for(l, 5ms);
    }
  }
  bool wait_count(const std::string& session, std::size_t n, std::chrono::milliseconds limit = 10s) {
    return wait([&] { return of(session).size() >= n; }, limit);
  }
  void notify() { cv_.notify_all(); }
  void clear() {
    std::lock_guard l(m_);
    replies_.clear();
  }

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::string>> replies_;
};

// An agent with a callback platform that records replies; stops on destruction.
struct harness {
  explicit harness(std::string name = "test", int threads = 2) : agent(std::move(name)) {
    agent.config().set("agent.threads", threads);
    agent.config().set("log.level", "error");
    platform = std::make_shared<parley::callback_platform>(
        [this](parley::session& s, const parley::reply& r) { replies.add(s.id(), r.plain_text()); });
    agent.use_platform(platform);
  }
  ~harness() {
    agent.stop();
    agent.wait();
  }
  std::shared_ptr<parley::session> session(const std::string& id) {
    return agent.get_or_create_session(id, platform.get());
  }
  // Runs fn on the session's strand and waits for it.
  template <class F>
  void on_strand(const std::shared_ptr<parley::session>& s, F fn) {
    std::promise<void> done;
    boost::asio::post(s->strand(), [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  // Waits until every event queued for s so far is handled.
  void idle(const std::shared_ptr<parley::session>& s) {
    std::promise<void> done;
    s->when_idle([&] { done.set_value(); });
    done.get_future().wait_for(10s);
  }
  std::string state_of(const std::shared_ptr<parley::session>& s) {
    std::string name;
    on_strand(s, [&] { name = s->current_state().name(); });
    return name;
  }

  parley::agent agent;
  std::shared_ptr<parley::callback_platform> platform;
  recorder replies;
};

}  // namespace test
