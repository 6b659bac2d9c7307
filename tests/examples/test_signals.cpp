// The greetings bot stops cleanly on SIGINT and SIGTERM: a real child process, a real signal.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// Reads from fd until `want` appears or the time limit passes.
std::string read_until(int fd, const std::string& want, int limit_ms) {
  std::string got;
  char buf[512];
  while (got.find(want) == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, limit_ms) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

// Waits for the child to exit (pidfd + poll: no sleeping); returns its wait status or -1.
int wait_exit(pid_t pid, int limit_ms) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    ::poll(&p, 1, limit_ms);
    ::close(pidfd);
  }
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid ? status : -1;
}

void stops_cleanly_on(int sig) {
  int in[2], out[2];
  REQUIRE(::pipe(in) == 0);
  REQUIRE(::pipe(out) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::close(in[1]);
    ::close(out[0]);
    ::execl(GREETINGS_BIN, GREETINGS_BIN, "--console", "--db", "", "--log-level", "warn", nullptr);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  // The bot is up once it has greeted; stdin stays open, so only the signal can stop it.
  CHECK(read_until(out[0], "Say hello", 10000).find("Say hello") != std::string::npos);
  ::kill(pid, sig);
  const int status = wait_exit(pid, 5000);
  if (status == -1) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
  REQUIRE(status != -1);  // exited within 5 s
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(in[1]);
  ::close(out[0]);
}

}  // namespace

TEST_CASE("the greetings bot exits 0 within 5 s on SIGTERM") { stops_cleanly_on(SIGTERM); }
TEST_CASE("the greetings bot exits 0 within 5 s on SIGINT") { stops_cleanly_on(SIGINT); }
