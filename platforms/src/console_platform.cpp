#include <parley/platforms/console_platform.hpp>

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <future>

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley::platforms {

console_platform::console_platform(int in_fd, std::FILE* out, std::string session_id)
    : in_fd_(in_fd), out_(out), session_id_(std::move(session_id)) {}

console_platform::~console_platform() {
  stop();
  if (reader_.joinable() && reader_.get_id() != std::this_thread::get_id()) reader_.join();
}

void console_platform::start(agent& owner) {
  agent_ = &owner;
  const char* user = std::getenv("USER");
  attachment_ =
      owner.get_or_create_session(session_id_, this, user ? user : "console", "console")->attach();
  reader_ = std::thread([this] {
    name_this_thread("parley-console");
    read_loop();
  });
}

void console_platform::stop() { stop_ = true; }

void console_platform::deliver(session&, const reply& r) {
  std::lock_guard lock(out_mutex_);
  if (r.kind == reply_kind::options) {
    options_.clear();
    for (const auto& o : r.data) options_.push_back(o.is_string() ? o.get<std::string>() : o.dump());
  }
  const std::string text = r.plain_text();
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void console_platform::read_loop() {
  std::string pending;
  char buf[4096];
  while (!stop_) {
    // poll with a timeout so stop() (a signal, /quit) ends the loop even while idle.
    pollfd p{in_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(in_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of input
    pending.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; !stop_ && (nl = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      handle_line(std::move(line));
    }
  }
  if (!stop_ && !pending.empty()) handle_line(std::move(pending));
  finish();
}

void console_platform::handle_line(std::string line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  const auto first = line.find_first_not_of(' ');
  if (first == std::string::npos) return;
  line.erase(0, first);
  if (line == "/quit") {
    stop_ = true;
    return;
  }
  if (line == "/reset") {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    agent_->reset_session(session_id_, [done](std::shared_ptr<session>) { done->set_value(); });
    f.wait();
    wait_idle();  // the fresh session's greeting
    return;
  }
  {
    std::lock_guard lock(out_mutex_);
    // Typing the number of an option picks it.
    char* end = nullptr;
    long k = std::strtol(line.c_str(), &end, 10);
    if (end && *end == '\0' && k >= 1 && static_cast<std::size_t>(k) <= options_.size())
      line = options_[static_cast<std::size_t>(k - 1)];
  }
  auto result = agent_->receive_event(session_id_, event::text(std::move(line), true));
  if (!result) {
    std::lock_guard lock(out_mutex_);
    std::fprintf(out_, "[error: %s]\n", result.error.c_str());
    std::fflush(out_);
    return;
  }
  // One person takes turns: the next line goes in once this one is answered (a pipe then
  // behaves like someone typing, and typed option numbers refer to the options shown).
  wait_idle();
}

void console_platform::wait_idle() {
  auto s = agent_->find_session(session_id_);
  if (!s) return;
  auto idle = std::make_shared<std::promise<void>>();
  auto f = idle->get_future();
  s->when_idle([idle] { idle->set_value(); });
  while (!stop_ && f.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
  }
}

void console_platform::finish() {
  // Stop once every message read so far is answered: the last reply is printed first.
  wait_idle();
  agent_->stop();
}

}  // namespace parley::platforms
