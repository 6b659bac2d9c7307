#include "pg_connection.hpp"

#include <charconv>
#include <regex>

#include <parley/log.hpp>

namespace parley::db::pg {

namespace {

// libpq's messages on one line: its line breaks and tabs become single spaces.
std::string trimmed(const char* s) {
  std::string out;
  for (const char* p = s ? s : ""; *p; ++p) {
    const bool space = *p == '\n' || *p == '\t' || *p == ' ';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : *p;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Server notices ("relation ... already exists, skipping") go to the debug log, not stderr.
void on_notice(void*, const char* message) {
  PARLEY_LOG(debug, "db: PostgreSQL notice: " << trimmed(message));
}

pg_error error_of(PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return pg_error(trimmed(PQresultErrorMessage(r)), state ? state : "");
}

}  // namespace

std::int64_t result::integer(int row, int col) const {
  const auto t = text(row, col);
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size())
    throw pg_error("column " + std::to_string(col) + " is not an integer: '" + std::string(t) + "'", "");
  return v;
}

std::int64_t result::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return n && *n ? std::stoll(n) : 0;
}

std::string connection::redact(std::string_view conninfo) {
  std::string s(conninfo);
  // postgresql://user:secret@host -> postgresql://user:***@host
  static const std::regex uri_password(R"(^(postgres(?:ql)?://[^:/@?]*:)[^@/?]*@)");
  s = std::regex_replace(s, uri_password, "$1***@");
  // ?password=secret or &password=secret, and password=secret in key=value strings
  static const std::regex param_password(R"((^|[?&\s])password\s*=\s*('[^']*'|[^&\s]*))");
  return std::regex_replace(s, param_password, "$1password=***");
}

std::shared_ptr<connection> connection::create(net::any_io_executor ex) {
  return std::shared_ptr<connection>(new connection(std::move(ex)));
}

connection::connection(net::any_io_executor ex) : ex_(ex), socket_(ex), connect_timer_(ex) {}

connection::~connection() {
  if (socket_.is_open()) socket_.release();  // libpq owns the descriptor
  if (conn_) PQfinish(conn_);
}

void connection::async_connect(std::string conninfo, std::chrono::milliseconds timeout,
                               connect_handler done) {
  where_ = redact(conninfo);
  on_connected_ = std::move(done);
  state_ = state::connecting;
  conn_ = PQconnectStart(conninfo.c_str());
  if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) {
    std::string why = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
    // libpq quotes a URI it cannot parse: never with its password.
    for (auto at = why.find(conninfo); !conninfo.empty() && at != std::string::npos; at = why.find(conninfo))
      why.replace(at, conninfo.size(), where_);
    state_ = state::broken;
    auto h = std::exchange(on_connected_, nullptr);
    net::post(ex_, [h, e = pg_error("cannot connect to PostgreSQL at '" + where_ + "': " + why +
                                        " (db.url must be a libpq URI such as "
                                        "postgresql://user@host:5432/dbname)",
                                    "")] { h(std::make_exception_ptr(e)); });
    return;
  }
  PQsetnonblocking(conn_, 1);
  PQsetNoticeProcessor(conn_, &on_notice, nullptr);
  connect_timer_.expires_after(timeout);
  connect_timer_.async_wait([self = shared_from_this(), timeout](boost::system::error_code ec) {
    if (ec || self->state_ != state::connecting) return;
    self->state_ = state::broken;
    if (self->socket_.is_open()) self->socket_.release();
    if (auto h = std::exchange(self->on_connected_, nullptr))
      h(std::make_exception_ptr(pg_error(
          "cannot connect to PostgreSQL at '" + self->where_ + "': no answer within " +
              std::to_string(timeout.count()) + " ms (is the server up and reachable?)",
          "")));
  });
  // libpq: "consider it to have returned PGRES_POLLING_WRITING" before the first poll.
  const int fd = PQsocket(conn_);
  if (fd >= 0) socket_.assign(fd);
  socket_.async_wait(net::posix::stream_descriptor::wait_write,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       if (ec || self->state_ != state::connecting) return;
                       self->poll_connect();
                     });
}

void connection::poll_connect() {
  const PostgresPollingStatusType st = PQconnectPoll(conn_);
  // The socket may change between polls (another host of a list, an SSL retry).
  const int fd = PQsocket(conn_);
  if (socket_.is_open() && socket_.native_handle() != fd) socket_.release();
  if (!socket_.is_open() && fd >= 0) socket_.assign(fd);
  auto again = [self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->state_ != state::connecting) return;
    self->poll_connect();
  };
  switch (st) {
    case PGRES_POLLING_READING:
      socket_.async_wait(net::posix::stream_descriptor::wait_read, again);
      return;
    case PGRES_POLLING_WRITING:
      socket_.async_wait(net::posix::stream_descriptor::wait_write, again);
      return;
    case PGRES_POLLING_OK: {
      connect_timer_.cancel();
      if (PQenterPipelineMode(conn_) != 1) {
        state_ = state::broken;
        if (auto h = std::exchange(on_connected_, nullptr))
          h(std::make_exception_ptr(pg_error("cannot enter pipeline mode: " + trimmed(PQerrorMessage(conn_)), "")));
        return;
      }
      state_ = state::ready;
      watch_socket();
      if (auto h = std::exchange(on_connected_, nullptr)) h(nullptr);
      return;
    }
    default: {
      connect_timer_.cancel();
      state_ = state::broken;
      const std::string why = trimmed(PQerrorMessage(conn_));
      if (socket_.is_open()) socket_.release();
      if (auto h = std::exchange(on_connected_, nullptr))
        h(std::make_exception_ptr(pg_error("cannot connect to PostgreSQL at '" + where_ + "': " + why, "")));
      return;
    }
  }
}

pg_error connection::lost_error() const {
  return pg_error("PostgreSQL connection lost: " + trimmed(PQerrorMessage(conn_)), "");
}

void connection::watch_socket() { wait_readable(); }

void connection::wait_readable() {
  if (reading_ || state_ != state::ready) return;
  reading_ = true;
  socket_.async_wait(net::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       self->reading_ = false;
                       if (ec || self->state_ != state::ready) return;
                       self->on_readable();
                     });
}

void connection::wait_writable() {
  if (writing_ || state_ != state::ready) return;
  writing_ = true;
  socket_.async_wait(net::posix::stream_descriptor::wait_write,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       self->writing_ = false;
                       if (ec || self->state_ != state::ready) return;
                       self->flush();
                     });
}

void connection::flush() {
  const int r = PQflush(conn_);
  if (r < 0) return fail_all(lost_error());
  if (r == 1) wait_writable();
}

void connection::async_batch(std::vector<query> batch, batch_handler done) {
  if (state_ != state::ready) {
    net::post(ex_, [done = std::move(done)] {
      done(std::make_exception_ptr(pg_error("not connected to PostgreSQL", "")), {});
    });
    return;
  }
  pending p;
  p.done = std::move(done);
  p.results.reserve(batch.size());
  auto lost = [this] { fail_all(lost_error()); };
  std::vector<const char*> values;
  for (const auto& q : batch) {
    values.clear();
    for (const auto& v : q.params) values.push_back(v ? v->c_str() : nullptr);
    const int n = static_cast<int>(values.size());
    if (q.params.empty()) {
      if (PQsendQueryParams(conn_, q.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) return lost();
      p.is_prepare.push_back(false);
      continue;
    }
    auto it = prepared_.find(q.sql);
    if (it == prepared_.end()) {
      it = prepared_.emplace(q.sql, "p" + std::to_string(++next_name_)).first;
      if (PQsendPrepare(conn_, it->second.c_str(), q.sql.c_str(), 0, nullptr) != 1) return lost();
      p.is_prepare.push_back(true);
      p.prepared.push_back(q.sql);
    }
    if (PQsendQueryPrepared(conn_, it->second.c_str(), n, values.data(), nullptr, nullptr, 0) != 1)
      return lost();
    p.is_prepare.push_back(false);
  }
  if (PQpipelineSync(conn_) != 1) return lost();
  p.statements = p.is_prepare.size();
  pending_.push_back(std::move(p));
  flush();
  wait_readable();
}

void connection::on_readable() {
  if (PQconsumeInput(conn_) != 1)
    return fail_all(lost_error());
  while (PGnotify* n = PQnotifies(conn_)) {
    notification note{n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid};
    PQfreemem(n);
    if (notify_) notify_(std::move(note));
  }
  finish();
  if (state_ != state::ready) return;
  flush();  // libpq may have been waiting for input before it could send more
  wait_readable();
}

// Collects the results that have arrived: per statement its result then a null, then the
// batch's PGRES_PIPELINE_SYNC.
void connection::finish() {
  while (!pending_.empty() && state_ == state::ready && !PQisBusy(conn_)) {
    PGresult* r = PQgetResult(conn_);
    auto& p = pending_.front();
    if (!r) {
      // The end of one statement's results. It counts even when the next statement's results
      // have not arrived yet (PQisBusy is then 1): skipping it left every later result one
      // statement behind, so a query's rows after a prepare that ended alone in one read were
      // taken for the prepare's and dropped (a resend page of 100 kB came back empty).
      if (p.statements == 0) break;
      --p.statements;
      ++p.next;
      continue;
    }
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      // A failed batch may have skipped its prepares: prepare those again, under new names.
      if (p.error)
        for (const auto& sql : p.prepared) prepared_.erase(sql);
      auto done = std::move(p);
      pending_.pop_front();
      done.done(done.error, std::move(done.results));
      continue;
    }
    if (st == PGRES_FATAL_ERROR) {
      if (!p.error) p.error = std::make_exception_ptr(error_of(r));
      PQclear(r);
    } else if (st == PGRES_PIPELINE_ABORTED || st == PGRES_NONFATAL_ERROR ||
               (p.next < p.is_prepare.size() && p.is_prepare[p.next])) {
      PQclear(r);
    } else {
      p.results.emplace_back(r);
    }
  }
  if (PQstatus(conn_) == CONNECTION_BAD)
    fail_all(lost_error());
}

void connection::fail_all(const pg_error& e) {
  if (state_ == state::broken || state_ == state::closed) return;
  state_ = state::broken;
  if (socket_.is_open()) socket_.release();
  auto failed = std::move(pending_);
  pending_.clear();
  for (auto& p : failed) p.done(std::make_exception_ptr(e), {});
  if (lost_) lost_(e);
}

void connection::close() {
  if (state_ == state::closed) return;
  state_ = state::closed;
  connect_timer_.cancel();
  if (socket_.is_open()) socket_.release();
  auto failed = std::move(pending_);
  pending_.clear();
  for (auto& p : failed)
    p.done(std::make_exception_ptr(pg_error("the PostgreSQL connection was closed", "")), {});
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

}  // namespace parley::db::pg
