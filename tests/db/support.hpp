#pragma once
// Helpers for the DB tests: temporary folders, waiting on conditions with a time limit,
// collecting replies, and child processes with pipes.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <parley/agent.hpp>
#include <parley/callback_platform.hpp>
#include <parley/db/sqlite_db_handler.hpp>

namespace test {

using namespace std::chrono_literals;

/// A fresh folder under the system temp dir, removed with everything in it.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Checks `pred` until it holds or `limit` passes; returns whether it held. For state that
/// has no notification of its own (counters, files written by another process).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s);

/// Replies of an agent, per session, with a condition variable to wait on.
class replies {
 public:
  std::shared_ptr<parley::callback_platform> platform(std::string name = "test");
  /// Waits until session `id` has at least `n` replies; false after `limit`.
  bool wait(const std::string& id, std::size_t n, std::chrono::milliseconds limit = 10s);
  std::vector<std::string> of(const std::string& id);
  /// Extra check run inside deliver (on the delivering thread).
  std::function<void(parley::session&, const parley::reply&)> on_deliver;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::string>> by_session_;
};

/// An agent with a callback platform and a SQLite handler on `path`, started.
struct harness {
  harness(const std::string& path, const std::function<void(parley::agent&)>& define,
          parley::db::sqlite_options options = {}, bool persist = false,
          std::string name = "testbot");
  ~harness();
  /// The session `id` (made on the callback platform).
  std::shared_ptr<parley::session> session(const std::string& id, const std::string& user = "alice");
  /// Posts a human text message to session `id`.
  void say(const std::string& id, const std::string& text);
  void stop();

  parley::agent agent;
  replies got;
  std::shared_ptr<parley::callback_platform> platform;
  std::shared_ptr<parley::db::sqlite_db_handler> db;
};

/// Runs `fn` on the session's strand once it is idle, and waits for it (limit 10 s).
void on_strand(parley::session& s, std::function<void()> fn);

/// A child process with stdin and stdout (and stderr) on pipes.
class child {
 public:
  explicit child(std::vector<std::string> argv);
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  void write(const std::string& data);
  void close_stdin();
  /// Reads stdout until `pred(all output so far)` holds, EOF, or `limit`; returns pred's value.
  bool read_until(const std::function<bool(const std::string&)>& pred,
                  std::chrono::milliseconds limit = 20s);
  /// The same, watching stderr (where the log goes).
  bool read_err_until(const std::function<bool(const std::string&)>& pred,
                      std::chrono::milliseconds limit = 20s);
  /// Reads stdout and stderr to EOF (limit), then waits for the exit; returns the exit code,
  /// or 128 + signal.
  int finish(std::chrono::milliseconds limit = 30s);
  void kill(int sig = SIGKILL);
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  bool wait_output(const std::function<bool(const std::string&)>& pred,
                   std::chrono::milliseconds limit, const std::string& watched);
  pid_t pid_ = -1;
  int in_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string out_, err_;
  int status_ = -1;
};

/// The port a WebSocket bot started as `bot` (with --port 0) listens on, read from its log line
/// "listening; open http://HOST:PORT/"; 0 when it does not say so in time.
std::uint16_t listening_port(child& bot);

/// Runs a program to completion with `input` on stdin; returns {exit code, stdout, stderr}.
struct run_result {
  int code;
  std::string out;
  std::string err;
};
run_result run(std::vector<std::string> argv, const std::string& input = {},
               std::chrono::milliseconds limit = 30s);

/// Row count of `sql` (first column of the first row) on a fresh connection.
long long query_count(const std::string& path, const std::string& sql);
std::string query_text(const std::string& path, const std::string& sql);

}  // namespace test
