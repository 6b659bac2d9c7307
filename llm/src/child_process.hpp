#pragma once
// Starting a child process with its stdin, stdout and stderr on pipes, for the MCP stdio
// client. posix_spawn, not fork: the io threads keep running while a server starts, and
// between fork and exec a threaded program may call almost nothing.
#include <map>
#include <string>
#include <vector>

namespace parley::llm::detail {

struct child_process {
  int pid = -1;
  int stdin_fd = -1;   // we write
  int stdout_fd = -1;  // we read
  int stderr_fd = -1;  // we read
  int pidfd = -1;      // readable once the child exits; -1 when the kernel has no pidfd_open
};

// The environment a server gets: HOME, LOGNAME, PATH, SHELL, TERM and USER from ours (when
// set), the variables named by `pass`, then `extra`. Never our whole environment: API keys and tokens stay here.
// `pass` names variables of ours the server also gets. @throws std::runtime_error naming a
// variable of `pass` that is not set.
std::vector<std::string> scrubbed_environment(const std::map<std::string, std::string>& extra,
                                              const std::vector<std::string>& pass = {});

// Starts `command` (searched on PATH when it has no '/') with `args` and `env` ("K=V").
// Every descriptor returned is non-blocking and close-on-exec.
// @throws std::runtime_error with the reason (errno text) when it cannot start.
child_process spawn_child(const std::string& command, const std::vector<std::string>& args,
                          const std::vector<std::string>& env);

}  // namespace parley::llm::detail
