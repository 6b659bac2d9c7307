// The inspectors' reader (parley/db/reader.hpp): rows as text, and its SQLite side.
#include <parley/db/reader.hpp>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <unordered_map>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/db/postgres_db_handler.hpp>
#include <parley/db/sqlite_open.hpp>
#include <parley/errors.hpp>

#include "postgres/pg_reader.hpp"
#include "session_transfer.hpp"

namespace parley::db {

namespace {
const std::string empty;
}

const std::string& read_row::text(std::size_t i) const {
  const auto& c = cells_.at(i);
  return c ? *c : empty;
}

std::int64_t read_row::integer(std::size_t i) const {
  const auto& t = text(i);
  if (t.empty()) return 0;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) {
    // A whole number stored as a real (SQLite's "3.0", PostgreSQL's numeric "3.0").
    char* e = nullptr;
    const double d = std::strtod(t.c_str(), &e);
    if (e == t.c_str() || *e) throw std::runtime_error("column " + std::to_string(i) + " is not a number: '" + t + "'");
    return static_cast<std::int64_t>(d);
  }
  return v;
}

double read_row::real(std::size_t i) const {
  const auto& t = text(i);
  return t.empty() ? 0.0 : std::strtod(t.c_str(), nullptr);
}

json read_row::nullable_int(std::size_t i) const { return is_null(i) ? json() : json(integer(i)); }

json read_row::nullable_text(std::size_t i) const { return is_null(i) ? json() : json(text(i)); }

namespace {

// $1, $2 ... as SQLite's ?1, ?2 (the same numbered parameters), outside quoted text.
std::string sqlite_placeholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size());
  bool quoted = false;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'') quoted = !quoted;
    if (!quoted && c == '$' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1])))
      out += '?';
    else
      out += c;
  }
  return out;
}

class sqlite_reader_impl final : public reader {
 public:
  sqlite_reader_impl(std::unique_ptr<SQLite::Database> owned, std::string path)
      : owned_(std::move(owned)), db_(*owned_), path_(std::move(path)) {}
  sqlite_reader_impl(SQLite::Database& borrowed, std::string path) : db_(borrowed), path_(std::move(path)) {}

  std::vector<read_row> query(const std::string& sql, const std::vector<read_param>& params) override {
    // Prepared once per text: a page of 10,000 rows asks the same few statements again and again.
    // Bounded: a few texts vary with their input (a tag search lists its rows inline).
    if (statements_.size() >= max_statements && !statements_.count(sql)) statements_.clear();
    auto& st = statements_[sql];
    if (!st)
      st = std::make_unique<SQLite::Statement>(db_, sqlite_placeholders(sql));
    else
      st->reset();
    st->clearBindings();
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int n = static_cast<int>(i + 1);
      if (const auto* v = std::get_if<std::int64_t>(&params[i]))
        st->bind(n, *v);
      else if (const auto* s = std::get_if<std::string>(&params[i]))
        st->bind(n, *s);
      else
        st->bind(n);
    }
    std::vector<read_row> rows;
    const int columns = st->getColumnCount();
    while (st->executeStep()) {
      std::vector<std::optional<std::string>> cells;
      cells.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        const auto col = st->getColumn(c);
        if (col.isNull())
          cells.emplace_back();
        else
          cells.emplace_back(col.getString());
      }
      rows.emplace_back(std::move(cells));
    }
    st->reset();
    return rows;
  }

  void begin_snapshot() override { db_.exec("BEGIN"); }
  void end_snapshot() noexcept override {
    try {
      db_.exec("COMMIT");
    } catch (...) {
    }
  }
  std::int64_t change_marker() override {
    // One page of SQLite's shared memory: takes no lock the writer waits for.
    return db_.execAndGet("PRAGMA data_version").getInt64();
  }
  bool has_table(const std::string& name) override { return db_.tableExists(name); }
  db::dialect dialect() const override { return db::dialect::sqlite; }
  const std::string& where() const override { return path_; }

 private:
  static constexpr std::size_t max_statements = 64;
  std::unique_ptr<SQLite::Database> owned_;
  SQLite::Database& db_;
  std::string path_;
  // Declared after the connection: destroyed before it.
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> statements_;
};

}  // namespace

namespace detail {

std::unique_ptr<reader> borrow_reader(SQLite::Database& db, std::string path) {
  return std::make_unique<sqlite_reader_impl>(db, std::move(path));
}

void run_sqlite(SQLite::Database& db, const import_statement& s) {
  SQLite::Statement q(db, sqlite_placeholders(s.sql));
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    const int n = static_cast<int>(i + 1);
    if (s.params[i])
      q.bind(n, *s.params[i]);
    else
      q.bind(n);
  }
  q.exec();
}

}  // namespace detail

std::unique_ptr<reader> open_reader(const std::string& where) {
  if (is_postgres_url(where)) return pg::open_reader(where);
  return std::make_unique<sqlite_reader_impl>(open_for_reading(where), where);
}

}  // namespace parley::db
