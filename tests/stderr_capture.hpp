#pragma once
// Captures what the process writes to stderr (where the log goes) while alive: for the tests
// that check what a log line says, and that a secret is not in it.
#include <unistd.h>

#include <cstdio>
#include <string>

namespace test {

class stderr_capture {
 public:
  stderr_capture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    saved_ = ::dup(2);
    ::dup2(::fileno(file_), 2);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;
  ~stderr_capture() {
    if (file_) finish();
  }
  // Restores stderr; returns what was written meanwhile.
  std::string finish() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::rewind(file_);
    std::string out;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, file_)) out.append(buf, n);
    std::fclose(file_);
    file_ = nullptr;
    return out;
  }

 private:
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

}  // namespace test
