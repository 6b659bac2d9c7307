#pragma once
// How the PostgreSQL handler turns recorded rows into few statements: a group commit's rows go
// to each table as ONE multi-row INSERT (`INSERT ... SELECT FROM unnest($n::text[], ...)`), so
// the server plans and executes a statement per table per batch, not per row. The SQL text of
// each table's statement is fixed (any number of rows), so it is prepared once per connection.
//
// Row ids come from the handler (reserved from the parley_row_id sequence in blocks), not from
// the column default: rows keep their write order across tables (the inspector's timeline reads
// them in id order), a parameter row knows its prediction's id, and a batch sent again after a
// lost connection can be checked: a batch that did commit before the connection dropped has its
// rows' ids in the tables, and is not written twice (the handler's `recover`).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pg_connection.hpp"

namespace parley::db::pg {

enum class table : std::uint8_t {
  chat,
  intent_prediction,
  parameter,  // values[0]: its intent_prediction's id
  transition,
  event,
  reasoning_step,
  agent_message,
};
constexpr std::size_t table_count = 7;

struct row {
  table t{};
  std::int64_t id = 0;   // 0 until the handler gives it one
  std::string session;   // the session's id ("" for none: events of no session, parameters)
  std::vector<std::optional<std::string>> values;  // the table's columns after id and session
};

/// A timer of a session set (due and event given) or deleted (neither).
struct timer_op {
  std::string key;
  std::optional<std::string> due, event;
};

/// The table's name in SQL.
const char* table_name(table t);

/// A PostgreSQL array literal of text (`{"a","b\"c",NULL}`) for an unnest($n::text[]) parameter.
std::string text_array(const std::vector<std::optional<std::string>>& items);

/// Collects one batch. Rows and session updates are buffered and written together; a raw
/// statement (a session's start, a timer, a delete) first writes what is buffered, so the batch
/// runs in the order things were recorded.
class batch_builder {
 public:
  explicit batch_builder(std::string agent) : agent_(std::move(agent)) {}

  /// `r` is read when the builder flushes (at take(), or at the next raw()): it must live
  /// until then, unchanged (the handler's items hold their rows for a retry anyway).
  void add(const row& r);
  /// The session's last activity moves on to `timestamp`; `state` and `variables`, when given,
  /// replace the stored ones (the last given in the batch wins).
  void touch(const std::string& session, const std::string& timestamp,
             const std::optional<std::string>& state, const std::optional<std::string>& variables);
  /// A timer set or deleted; within a batch the last operation on a (session, key) wins, and
  /// all of them go as one upsert and one delete.
  void timer(const std::string& session, timer_op op);
  void raw(query q);
  /// Everything, in order; the builder is empty afterwards.
  std::vector<query> take();

 private:
  struct touched {
    std::string timestamp;
    std::optional<std::string> state;
    std::optional<std::string> variables;
  };
  void flush();

  std::string agent_;
  std::vector<query> out_;
  std::vector<const row*> rows_[table_count];
  std::map<std::string, touched> touched_;
  std::map<std::pair<std::string, std::string>, timer_op> timers_;  // by (session, key)
};

}  // namespace parley::db::pg
