#pragma once
// CPU time of a process's threads, by thread name, from /proc (Linux). Shared by the
// benchmarks that report where the time of a run went, per thread.
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace bench {

/// CPU seconds (user + system) used so far by each thread of `pid`, summed by thread name.
inline std::map<std::string, double> thread_cpu_by_name(pid_t pid) {
  std::map<std::string, double> out;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& t :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream comm(t.path() / "comm"), stat(t.path() / "stat");
    std::string name, line;
    std::getline(comm, name);
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (name.empty() || close == std::string::npos) continue;
    std::istringstream in(line.substr(close + 2));  // field 3 (state) onwards
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    out[name] += (utime + stime) / tick;
  }
  return out;
}

/// CPU seconds used so far by this process's threads whose name starts with `prefix`.
inline double thread_cpu(const std::string& prefix) {
  double total = 0;
  for (const auto& [name, secs] : thread_cpu_by_name(::getpid()))
    if (name.rfind(prefix, 0) == 0) total += secs;
  return total;
}

}  // namespace bench
