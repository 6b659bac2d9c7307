#pragma once
/// An in-process platform: replies go to a function. For embedding an agent in a program
/// (and for tests that talk to an agent without sockets).
#include <functional>
#include <string>

#include <parley/platform.hpp>

namespace parley {

class callback_platform final : public platform {
 public:
  using handler = std::function<void(session&, const reply&)>;
  explicit callback_platform(handler on_reply, std::string name = "callback")
      : on_reply_(std::move(on_reply)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  void start(agent&) override {}
  void stop() override {}
  /// Calls the handler on the calling thread (the session's strand, or a DB thread).
  void deliver(session& s, const reply& r) override { on_reply_(s, r); }

 private:
  handler on_reply_;
  std::string name_;
};

}  // namespace parley
