#pragma once
// Starting and stopping the server processes a benchmark drives (the echo server, the
// greetings bot), and finding a free port for them. Shared by the WebSocket benchmarks.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

extern char** environ;

namespace bench {

/// A port that was free a moment ago on 127.0.0.1.
inline unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

/// Starts `args` with stdout and stderr to `log`; exits the benchmark if it cannot.
inline pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "cannot start %s\n", argv[0]);
    std::exit(1);
  }
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

/// Waits (up to 10 s) until something accepts on `port`; exits the benchmark if nothing does.
inline void wait_listening(unsigned short port) {
  for (int i = 0; i < 200; ++i) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a process starting up
  }
  std::fprintf(stderr, "nothing listens on %u\n", port);
  std::exit(1);
}

/// SIGTERM (a clean stop: the bot commits what it recorded), then waits for the exit.
inline void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

}  // namespace bench
