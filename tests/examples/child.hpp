#pragma once
// A child process for the example tests: stdin, stdout and stderr on pipes, reads with a time
// limit (poll, no sleeping), and an exit waited for on a pidfd.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace test {

// Waits for the child to exit (pidfd + poll); returns its wait status, or -1 after the limit.
inline int wait_exit(pid_t pid, int limit_ms) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    ::poll(&p, 1, limit_ms);
    ::close(pidfd);
  }
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid ? status : -1;
}

class child {
 public:
  explicit child(const std::vector<std::string>& argv) {
    int in[2], out[2], err[2];
    if (::pipe(in) || ::pipe(out) || ::pipe(err)) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
  }
  ~child() {
    close_input();
    if (pid_ > 0 && exit_status_ == -1) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {out_, err_})
      if (fd >= 0) ::close(fd);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  bool started() const { return pid_ > 0; }
  void write(const std::string& text) { (void)!::write(in_, text.data(), text.size()); }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // Reads stdout and stderr until `want` is in one of them or `limit` passes; true if found.
  bool wait_for(const std::string& want, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (out.find(want) == std::string::npos && err.find(want) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      if (::poll(p, 2, static_cast<int>(left.count())) <= 0) continue;
      bool any = false;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[4096];
        const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
        if (n > 0) {
          (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
          any = true;
        }
      }
      if (!any) return false;  // both ends closed: the child is gone
    }
    return true;
  }
  // SIGTERM, then the exit status (-1 if it did not exit within `limit_ms`).
  int stop(int limit_ms = 10000) {
    ::kill(pid_, SIGTERM);
    exit_status_ = wait_exit(pid_, limit_ms);
    return exit_status_;
  }

  std::string out, err;

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  int exit_status_ = -1;
};

}  // namespace test
