#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace parley::llm::detail {

namespace {

struct pipe_pair {
  int fd[2] = {-1, -1};
  ~pipe_pair() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  int take(int i) {
    int f = fd[i];
    fd[i] = -1;
    return f;
  }
};

void make_pipe(pipe_pair& p) {
  if (::pipe2(p.fd, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Whether `command` names an executable file, itself or on PATH. posix_spawnp reports a
// failed exec too, but not everywhere (under valgrind the child starts and exits 127).
bool findable(const std::string& command) {
  if (command.find('/') != std::string::npos) return ::access(command.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (std::size_t i = 0; i <= dirs.size();) {
    std::size_t j = dirs.find(':', i);
    if (j == std::string::npos) j = dirs.size();
    std::string dir = j > i ? dirs.substr(i, j - i) : ".";
    if (::access((dir + "/" + command).c_str(), X_OK) == 0) return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

std::vector<std::string> scrubbed_environment(const std::map<std::string, std::string>& extra,
                                              const std::vector<std::string>& pass) {
  std::map<std::string, std::string> vars;
  for (const char* name : {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"})
    if (const char* v = std::getenv(name)) vars[name] = v;
  for (const auto& name : pass) {
    const char* v = std::getenv(name.c_str());
    if (!v) throw std::runtime_error("the environment variable " + name + " (pass_env) is not set");
    vars[name] = v;
  }
  for (const auto& [k, v] : extra) vars[k] = v;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

child_process spawn_child(const std::string& command, const std::vector<std::string>& args,
                          const std::vector<std::string>& env) {
  if (command.empty()) throw std::runtime_error("the command is empty");
  if (!findable(command))
    throw std::runtime_error("no executable file by that name" +
                             std::string(command.find('/') == std::string::npos ? " on PATH" : ""));
  pipe_pair in, out, err;
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the copies; the originals close at exec.
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with no blocked signals and default handlers (we may ignore SIGPIPE),
  // in a process group of its own so a terminal's Ctrl-C reaches us, not it directly.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);

  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(command.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, command.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error(std::strerror(rc));

  child_process c;
  c.pid = pid;
  c.stdin_fd = in.take(1);
  c.stdout_fd = out.take(0);
  c.stderr_fd = err.take(0);
  for (int fd : {c.stdin_fd, c.stdout_fd, c.stderr_fd}) set_nonblocking(fd);
#ifdef SYS_pidfd_open
  c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (c.pidfd >= 0) ::fcntl(c.pidfd, F_SETFD, FD_CLOEXEC);
#endif
  return c;
}

}  // namespace parley::llm::detail
