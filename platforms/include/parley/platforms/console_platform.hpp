#pragma once
/// The console platform: one session on a terminal or a pipe. Lines from the input are the
/// human's messages; replies are printed (options as a numbered list, where typing the number
/// picks it; markdown as plain text; files and images as a line naming them). `/reset`
/// starts the conversation again, `/quit` stops the agent; at the end of the input the agent
/// stops once the last reply is printed.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <parley/platform.hpp>
#include <parley/session.hpp>

namespace parley::platforms {

class console_platform final : public platform {
 public:
  /// Reads from file descriptor `in_fd`, writes to `out`.
  explicit console_platform(int in_fd = 0, std::FILE* out = stdout,
                            std::string session_id = "console");
  ~console_platform() override;

  std::string_view name() const override { return "console"; }
  void start(agent& owner) override;
  void stop() override;
  /// Any thread: prints under a lock.
  void deliver(session& s, const reply& r) override;

 private:
  void read_loop();
  void handle_line(std::string line);
  void finish();
  void wait_idle();

  int in_fd_;
  std::FILE* out_;
  std::string session_id_;
  agent* agent_ = nullptr;
  session_attachment attachment_;  // the console's session is never evicted
  std::thread reader_;
  std::atomic<bool> stop_{false};
  std::mutex out_mutex_;
  std::vector<std::string> options_;  // the last options shown, for "type the number"
};

}  // namespace parley::platforms
