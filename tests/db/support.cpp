#include "support.hpp"

#include <fcntl.h>
#include <poll.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <regex>
#include <stdexcept>
#include <thread>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

namespace test {

temp_dir::temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "parley-db-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
}

std::shared_ptr<parley::callback_platform> replies::platform(std::string name) {
  return std::make_shared<parley::callback_platform>(
      [this](parley::session& s, const parley::reply& r) {
        if (on_deliver) on_deliver(s, r);
        {
          std::lock_guard lock(mutex_);
          by_session_[s.id()].push_back(r.plain_text());
        }
        cv_.notify_all();
      },
      std::move(name));
}

bool replies::wait(const std::string& id, std::size_t n, std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, limit, [&] { return by_session_[id].size() >= n; });
}

std::vector<std::string> replies::of(const std::string& id) {
  std::lock_guard lock(mutex_);
  return by_session_[id];
}

void on_strand(parley::session& s, std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  s.when_idle([done, fn = std::move(fn)] {
    fn();
    done->set_value();
  });
  if (f.wait_for(10s) != std::future_status::ready)
    throw std::runtime_error("session did not become idle within 10 s");
}

harness::harness(const std::string& path, const std::function<void(parley::agent&)>& define,
                 parley::db::sqlite_options options, bool persist, std::string name)
    : agent(std::move(name)) {
  agent.config().set("agent.threads", 2, "test");
  agent.config().set("log.level", "warn", "test");
  define(agent);
  options.path = path;
  db = std::make_shared<parley::db::sqlite_db_handler>(options);
  agent.use_db(db);
  platform = got.platform();
  agent.use_platform(platform);
  agent.persist_sessions(persist);
  agent.start();
}

harness::harness(std::shared_ptr<parley::db_handler> handler,
                 const std::function<void(parley::agent&)>& define, bool persist, std::string name)
    : agent(std::move(name)) {
  agent.config().set("agent.threads", 2, "test");
  agent.config().set("log.level", "warn", "test");
  define(agent);
  agent.use_db(std::move(handler));
  platform = got.platform();
  agent.use_platform(platform);
  agent.persist_sessions(persist);
  agent.start();
}

harness::~harness() { stop(); }

void harness::stop() {
  agent.stop();
  agent.wait();
}

std::shared_ptr<parley::session> harness::session(const std::string& id, const std::string& user) {
  return agent.get_or_create_session(id, platform.get(), user, "test");
}

void harness::say(const std::string& id, const std::string& text) {
  auto r = agent.receive_event(id, parley::event::text(text, true));
  if (!r) throw std::runtime_error("say: " + r.error);
}

// ---- child processes -------------------------------------------------------------------------

child::child(std::vector<std::string> argv) {
  int in[2], out[2], err[2];
  // Close-on-exec: a second child must not inherit this one's pipes (it would hold its stdin open).
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  ::signal(SIGPIPE, SIG_IGN);
}

child::~child() {
  if (status_ < 0 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
  for (int fd : {in_, out_fd_, err_fd_})
    if (fd >= 0) ::close(fd);
}

void child::write(const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(in_, data.data() + done, data.size() - done);
    if (n <= 0) throw std::runtime_error("writing to the child failed");
    done += static_cast<std::size_t>(n);
  }
}

void child::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

bool child::read_until(const std::function<bool(const std::string&)>& pred,
                       std::chrono::milliseconds limit) {
  return wait_output(pred, limit, out_);
}

bool child::read_err_until(const std::function<bool(const std::string&)>& pred,
                           std::chrono::milliseconds limit) {
  return wait_output(pred, limit, err_);
}

bool child::wait_output(const std::function<bool(const std::string&)>& pred,
                        std::chrono::milliseconds limit, const std::string& watched) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred(watched)) {
    // Rounded up, and at least one look at the pipes: a short limit still drains them.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (out_fd_ < 0 && err_fd_ < 0) return false;
    pollfd p[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    const int r = ::poll(p, 2, static_cast<int>(std::max<long long>(0, left.count())));
    if (r <= 0) {
      if (left.count() <= 0) return pred(watched);
      continue;
    }
    char buf[4096];
    if (err_fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
      auto n = ::read(err_fd_, buf, sizeof buf);
      if (n > 0)
        err_.append(buf, static_cast<std::size_t>(n));
      else {
        ::close(err_fd_);
        err_fd_ = -1;
      }
    }
    if (out_fd_ >= 0 && (p[0].revents & (POLLIN | POLLHUP))) {
      auto n = ::read(out_fd_, buf, sizeof buf);
      if (n > 0) {
        out_.append(buf, static_cast<std::size_t>(n));
      } else {
        if (&watched == &out_) return pred(out_);
        ::close(out_fd_);
        out_fd_ = -1;
      }
    }
    if (left.count() <= 0) return pred(watched);
  }
  return true;
}

int child::finish(std::chrono::milliseconds limit) {
  close_stdin();
  const auto end = std::chrono::steady_clock::now() + limit;
  bool eof = false;
  read_until([&](const std::string&) { return false; }, limit);  // to EOF or the limit
  (void)eof;
  while (err_fd_ >= 0 && std::chrono::steady_clock::now() < end) {
    char buf[4096];
    pollfd p{err_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    auto n = ::read(err_fd_, buf, sizeof buf);
    if (n <= 0) {
      ::close(err_fd_);
      err_fd_ = -1;
    } else {
      err_.append(buf, static_cast<std::size_t>(n));
    }
  }
  while (status_ < 0) {
    int st = 0;
    const auto r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      break;
    }
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      status_ = st;
      return -1;
    }
    std::this_thread::sleep_for(2ms);
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

void child::kill(int sig) { ::kill(pid_, sig); }

run_result run(std::vector<std::string> argv, const std::string& input,
               std::chrono::milliseconds limit) {
  child c(std::move(argv));
  if (!input.empty()) c.write(input);
  const int code = c.finish(limit);
  return {code, c.out(), c.err()};
}

long long query_count(const std::string& path, const std::string& sql) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  return q.executeStep() ? q.getColumn(0).getInt64() : 0;
}

std::string query_text(const std::string& path, const std::string& sql) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  return q.executeStep() ? q.getColumn(0).getString() : std::string();
}

std::uint16_t listening_port(child& bot) {
  std::uint16_t port = 0;
  const std::regex listening("listening; open https?://[^ ]+:([0-9]+)/");
  bot.read_err_until([&](const std::string& err) {
    std::smatch m;
    if (!std::regex_search(err, m, listening)) return false;
    port = static_cast<std::uint16_t>(std::stoi(m[1]));
    return true;
  });
  return port;
}

}  // namespace test
