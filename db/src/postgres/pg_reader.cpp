// The inspectors' reader on PostgreSQL: plain blocking libpq, which is right here: the
// inspectors read on threads of their own (a tool's main thread, the web inspector's query
// and watcher threads), never on an agent's strand, so the Asio-driven pg::connection the
// handler needs would only add a thread to drive it.
#include "pg_reader.hpp"

#include <libpq-fe.h>

#include <functional>

#include <parley/errors.hpp>

#include "pg_connection.hpp"
#include "pg_schema.hpp"

namespace parley::db::pg {

namespace {

// Type oids, so that a parameter's type never depends on where it first appears.
constexpr Oid int8_oid = 20;
constexpr Oid text_oid = 25;

std::string trimmed(const char* s) {
  std::string t = s ? s : "";
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

class pg_reader final : public reader {
 public:
  pg_reader(std::string url) : url_(std::move(url)), where_(connection::redact(url_)) { connect(); }
  ~pg_reader() override {
    if (conn_) PQfinish(conn_);
  }

  std::vector<read_row> query(const std::string& sql, const std::vector<read_param>& params) override {
    // A connection lost between two calls (server restarted) is made again once; within a
    // snapshot the error goes to the caller, since the snapshot is gone with it.
    if (PQstatus(conn_) != CONNECTION_OK && !in_snapshot_) reconnect();
    std::vector<Oid> types;
    std::vector<std::string> values;
    std::vector<const char*> pointers;
    types.reserve(params.size());
    values.reserve(params.size());
    for (const auto& p : params) {
      if (const auto* v = std::get_if<std::int64_t>(&p)) {
        types.push_back(int8_oid);
        values.push_back(std::to_string(*v));
      } else if (const auto* s = std::get_if<std::string>(&p)) {
        types.push_back(text_oid);
        values.push_back(*s);
      } else {
        types.push_back(text_oid);
        values.emplace_back();
      }
    }
    for (std::size_t i = 0; i < params.size(); ++i)
      pointers.push_back(std::holds_alternative<std::nullptr_t>(params[i]) ? nullptr : values[i].c_str());
    result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), types.data(),
                          pointers.data(), nullptr, nullptr, 0));
    check(r, sql);
    std::vector<read_row> rows;
    rows.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) {
      std::vector<std::optional<std::string>> cells;
      cells.reserve(static_cast<std::size_t>(r.columns()));
      for (int c = 0; c < r.columns(); ++c) cells.push_back(r.optional_text(i, c));
      rows.emplace_back(std::move(cells));
    }
    return rows;
  }

  void begin_snapshot() override {
    if (PQstatus(conn_) != CONNECTION_OK) reconnect();
    exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    in_snapshot_ = true;
  }
  void end_snapshot() noexcept override {
    in_snapshot_ = false;
    try {
      exec("COMMIT");
    } catch (...) {
    }
  }
  std::int64_t change_marker() override {
    // The server's current snapshot (xmin:xmax:in-progress xids) changes whenever a writing
    // transaction starts or commits, and reading it touches no table. Not the row-id
    // sequence: ids are taken before their rows commit, so a watcher woken by a new id could
    // read too early and then never look again.
    const std::string text = query("SELECT pg_current_snapshot()::text", {}).at(0).text(0);
    return static_cast<std::int64_t>(std::hash<std::string>{}(text));
  }
  bool has_table(const std::string& name) override {
    return !query("SELECT to_regclass($1)::text", {name}).at(0).is_null(0);
  }
  db::dialect dialect() const override { return db::dialect::postgresql; }
  const std::string& where() const override { return where_; }

 private:
  void connect() {
    // The URI as dbname with expand_dbname: its own settings, plus a connect timeout.
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* values[] = {url_.c_str(), "5", "parley-inspect", nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      std::string why = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
      for (auto at = why.find(url_); !url_.empty() && at != std::string::npos; at = why.find(url_))
        why.replace(at, url_.size(), where_);
      throw db_error("cannot read PostgreSQL at '" + where_ + "': " + why +
                     " (give a libpq URI such as postgresql://user@host:5432/dbname of a server "
                     "that is up)");
    }
    exec("SET default_transaction_read_only = on");
    check_schema();
  }

  void reconnect() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    connect();
  }

  void check_schema() {
    if (query("SELECT to_regclass('parley_schema')::text", {}).at(0).is_null(0))
      throw db_error("the PostgreSQL database at '" + where_ +
                     "' is not a Parley database (it has no parley_schema table); check the URI "
                     "(an agent creates the tables with --db postgresql://...)");
    const auto version = query("SELECT coalesce(max(version), 0) FROM parley_schema", {}).at(0).integer(0);
    if (version > schema_version)
      throw db_error("the PostgreSQL database at '" + where_ + "' has schema version " +
                     std::to_string(version) + ", newer than this Parley's " +
                     std::to_string(schema_version) + "; use a newer parley-inspect");
  }

  void exec(const char* sql) {
    result r(PQexec(conn_, sql));
    check(r, sql);
  }

  void check(const result& r, const std::string& sql) {
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return;
    std::string why = trimmed(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK)
      throw db_error("lost the connection to PostgreSQL at '" + where_ + "': " + why +
                     "; it is made again at the next read");
    throw db_error("reading PostgreSQL at '" + where_ + "' failed: " + why + " (in: " +
                   sql.substr(0, 120) + ")");
  }

  std::string url_, where_;
  PGconn* conn_ = nullptr;
  bool in_snapshot_ = false;
};

}  // namespace

std::unique_ptr<reader> open_reader(const std::string& url) { return std::make_unique<pg_reader>(url); }

}  // namespace parley::db::pg
