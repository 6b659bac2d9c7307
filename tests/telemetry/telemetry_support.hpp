#pragma once
// A small bot for the telemetry tests (a greeting, an intent transition and a condition
// transition), an exporter pointed at a receiver, and a platform that keeps replies.
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/platforms/otlp_exporter.hpp>

#include "otlp_receiver.hpp"

namespace test {

// start --intent greet--> greeted --[always]--> done; "done" answers anything else with the
// fallback.
inline void define_greeter(parley::agent& a) {
  auto& start = a.new_state("start", true);
  auto& greeted = a.new_state("greeted");
  auto& done = a.new_state("done");
  auto& greet = a.new_intent("greet", {"hello", "hi there", "good morning"});
  start.set_body([](parley::session& s) { s.reply("welcome"); });
  start.when_intent_matched(greet).go_to(greeted);
  greeted.set_body([](parley::session& s) { s.reply("nice to meet you"); });
  greeted.when_condition([](parley::session&) { return true; }, "always true").go_to(done);
  done.set_body([](parley::session& s) { s.reply("done"); });
  done.set_fallback_body([](parley::session& s) { s.reply("say hello again later"); });
}

// Exporter options that send at once (tests wait on what arrives, not on the interval).
inline parley::platforms::otlp_options quick(std::string endpoint) {
  parley::platforms::otlp_options o;
  o.endpoint = std::move(endpoint);
  o.batch_interval = std::chrono::milliseconds(20);
  o.export_timeout = std::chrono::milliseconds(2000);
  o.shutdown_timeout = std::chrono::milliseconds(1000);
  return o;
}

// Replies per session, waited on with a condition variable.
class reply_box {
 public:
  std::shared_ptr<parley::callback_platform> platform() {
    return std::make_shared<parley::callback_platform>(
        [this](parley::session& s, const parley::reply& r) {
          {
            std::lock_guard l(m_);
            got_[s.id()].push_back(r.text);
          }
          cv_.notify_all();
        });
  }
  bool wait(const std::string& id, std::size_t n, std::chrono::milliseconds limit = 10s) {
    std::unique_lock l(m_);
    return cv_.wait_for(l, limit, [&] { return got_[id].size() >= n; });
  }
  std::vector<std::string> of(const std::string& id) {
    std::lock_guard l(m_);
    return got_[id];
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::string>> got_;
};

// The spans of one trace, and finders.
inline std::vector<otlp_span> of_trace(const std::vector<otlp_span>& all, const std::string& trace) {
  std::vector<otlp_span> out;
  for (const auto& s : all)
    if (s.trace_id == trace) out.push_back(s);
  return out;
}
inline std::vector<otlp_span> named(const std::vector<otlp_span>& all, const std::string& prefix) {
  std::vector<otlp_span> out;
  for (const auto& s : all)
    if (s.name.rfind(prefix, 0) == 0) out.push_back(s);
  return out;
}

}  // namespace test
