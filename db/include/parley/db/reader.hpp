#pragma once
/// A read-only connection to a Parley database of either backend (a SQLite file or a
/// PostgreSQL database), for the inspectors: `parley-inspect` and the web inspector run their
/// queries through it, written once in the SQL both dialects share. Synchronous: use it on a
/// thread of its own (a tool's main thread, the inspector's query threads), never on an
/// agent's strand. One thread at a time per reader.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <parley/net.hpp>

namespace parley::db {

/// A parameter of a read: NULL, an integer or a text.
using read_param = std::variant<std::nullptr_t, std::int64_t, std::string>;

/// One row of a result: each cell NULL or text (numbers in their decimal form).
class read_row {
 public:
  explicit read_row(std::vector<std::optional<std::string>> cells) : cells_(std::move(cells)) {}
  std::size_t size() const { return cells_.size(); }
  bool is_null(std::size_t i) const { return !cells_.at(i).has_value(); }
  /// The cell as text; NULL as "".
  const std::string& text(std::size_t i) const;
  /// The cell as an integer; NULL as 0. @throws std::runtime_error when it is not one.
  std::int64_t integer(std::size_t i) const;
  /// The cell as a number; NULL as 0.
  double real(std::size_t i) const;
  /// The cell as an integer, NULL as JSON null.
  json nullable_int(std::size_t i) const;
  /// The cell as text, NULL as JSON null.
  json nullable_text(std::size_t i) const;

 private:
  std::vector<std::optional<std::string>> cells_;
};

enum class dialect { sqlite, postgresql };

class reader {
 public:
  virtual ~reader() = default;

  /// Runs one SELECT. Placeholders are written $1, $2, ... in both dialects (each may appear
  /// several times); `params` binds them in order. @throws db_error naming the database.
  virtual std::vector<read_row> query(const std::string& sql,
                                      const std::vector<read_param>& params = {}) = 0;
  /// Starts a read-only snapshot: the queries until end_snapshot() see one state of the
  /// database. Not nested.
  virtual void begin_snapshot() = 0;
  /// Ends the snapshot (never throws).
  virtual void end_snapshot() noexcept = 0;
  /// A number that changes at least whenever another connection committed since the last
  /// call (maybe more often: PostgreSQL's changes with any writer on the server) (cheap: the inspector's live watcher asks it every 100 ms while someone follows).
  virtual std::int64_t change_marker() = 0;
  /// Whether a table exists (older SQLite files lack later tables).
  virtual bool has_table(const std::string& name) = 0;
  virtual db::dialect dialect() const = 0;
  /// The file's path or the URI without its password: for messages.
  virtual const std::string& where() const = 0;
};

/// A snapshot for the life of the object (reader::begin_snapshot / end_snapshot).
class snapshot {
 public:
  explicit snapshot(reader& r) : r_(r) { r_.begin_snapshot(); }
  ~snapshot() { r_.end_snapshot(); }
  snapshot(const snapshot&) = delete;
  snapshot& operator=(const snapshot&) = delete;

 private:
  reader& r_;
};

/// Opens `where` for reading: a postgresql:// (or postgres://) URI names PostgreSQL
/// (is_postgres_url), anything else a SQLite file (open_for_reading).
/// @throws db_error naming the database (never a password), the problem and the fix: a
/// missing file, a server that is down, not a Parley database, a newer schema.
std::unique_ptr<reader> open_reader(const std::string& where);

}  // namespace parley::db
