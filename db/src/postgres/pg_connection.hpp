#pragma once
// One PostgreSQL connection driven by Asio: libpq in non-blocking pipeline mode, its socket
// watched by the connection's strand, so no thread ever blocks on a query. Used by the
// PostgreSQL handler (its writer batches, its readers, its LISTEN connection).
//
// Every member function and every callback runs on the strand given at creation; call from
// elsewhere through net::post(conn->executor(), ...). Callbacks are called exactly once.
#include <libpq-fe.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>

#include <parley/net.hpp>

namespace parley::db::pg {

/// A failure from PostgreSQL or libpq. `sqlstate` is the server's five-character code
/// ("23505" unique violation, "57P01" admin shutdown, ...) or "" when the connection failed.
struct pg_error : std::runtime_error {
  pg_error(const std::string& what, std::string state)
      : std::runtime_error(what), sqlstate(std::move(state)) {}
  std::string sqlstate;
  /// The connection is gone (broken socket, server shut down): reconnect and retry.
  bool connection_lost() const { return sqlstate.empty() || sqlstate.starts_with("57P") || sqlstate.starts_with("08"); }
};

/// A query's result rows (text format). Move-only; owns the PGresult.
class result {
 public:
  result() = default;
  explicit result(PGresult* r) : r_(r) {}
  result(result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  result& operator=(result&& o) noexcept {
    if (this != &o) {
      if (r_) PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  result(const result&) = delete;
  result& operator=(const result&) = delete;
  ~result() {
    if (r_) PQclear(r_);
  }

  PGresult* get() const { return r_; }
  int rows() const { return r_ ? PQntuples(r_) : 0; }
  int columns() const { return r_ ? PQnfields(r_) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string_view text(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  std::optional<std::string> optional_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return std::string(text(row, col));
  }
  std::int64_t integer(int row, int col) const;
  /// Rows an INSERT/UPDATE/DELETE touched.
  std::int64_t affected() const;

 private:
  PGresult* r_ = nullptr;
};

/// One statement of a batch: SQL with $1.. placeholders and their values (NULL = nullopt).
struct query {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};

/// A NOTIFY received by a connection that LISTENs.
struct notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
};

class connection : public std::enable_shared_from_this<connection> {
 public:
  using connect_handler = std::function<void(std::exception_ptr)>;
  using batch_handler = std::function<void(std::exception_ptr, std::vector<result>)>;
  using notify_handler = std::function<void(notification)>;
  using lost_handler = std::function<void(const pg_error&)>;

  /// `ex` should be a strand (or a single-threaded io_context's executor).
  static std::shared_ptr<connection> create(net::any_io_executor ex);
  ~connection();

  net::any_io_executor executor() const { return ex_; }

  /// Connects with a libpq URI or key=value string, without blocking (PQconnectStart and
  /// PQconnectPoll, the socket watched by Asio), within `timeout`. The error names the URI
  /// with its password removed.
  void async_connect(std::string conninfo, std::chrono::milliseconds timeout, connect_handler done);

  /// Sends the statements as one pipeline with one sync point. The statements up to the sync
  /// are one implicit transaction: if one fails, it and the rest are rolled back and the
  /// handler gets that error. So never send BEGIN/COMMIT in a batch (a failure would leave
  /// the transaction open and aborted for the batches behind it). Batches are answered in
  /// the order they were sent; several may be in flight. A statement with parameters is
  /// prepared on its first use on this connection and executed by name afterwards.
  void async_batch(std::vector<query> batch, batch_handler done);

  /// Called for every NOTIFY that arrives (after LISTEN was executed on this connection).
  void on_notification(notify_handler h) { notify_ = std::move(h); }
  /// Called once when the connection breaks after it was established (pending batches fail
  /// with the same error first).
  void on_lost(lost_handler h) { lost_ = std::move(h); }

  bool connected() const { return state_ == state::ready; }
  /// Closes now: pending batches fail with "closed".
  void close();

  /// The URI without its password (for messages and logs).
  static std::string redact(std::string_view conninfo);

 private:
  explicit connection(net::any_io_executor ex);

  enum class state { idle, connecting, ready, broken, closed };
  struct pending {
    std::size_t statements = 0;  // results still to collect before the sync (prepares too)
    std::vector<result> results;
    std::exception_ptr error;
    batch_handler done;
    std::vector<bool> is_prepare;       // per entry sent: a PQsendPrepare (no result kept)
    std::size_t next = 0;               // the entry whose results come next
    std::vector<std::string> prepared;  // SQL first prepared by this batch (forgotten if it fails)
  };

  void poll_connect();
  void watch_socket();
  void wait_writable();
  void wait_readable();
  void on_readable();
  void flush();
  void fail_all(const pg_error& e);
  pg_error lost_error() const;  // the connection's last libpq error, as a lost connection
  void finish();

  net::any_io_executor ex_;
  net::posix::stream_descriptor socket_;
  net::steady_timer connect_timer_;
  PGconn* conn_ = nullptr;
  state state_ = state::idle;
  std::string where_;  // the redacted URI
  connect_handler on_connected_;
  std::deque<pending> pending_;
  bool reading_ = false, writing_ = false;
  // Statements with parameters are prepared once per connection (named p1, p2, ...) and then
  // only bound and executed: the server parses and plans each SQL text once.
  std::unordered_map<std::string, std::string> prepared_;
  std::uint64_t next_name_ = 0;
  notify_handler notify_;
  lost_handler lost_;
};

}  // namespace parley::db::pg
