#pragma once
// The writer: one thread that owns the write connection and applies queued operations in
// batches, one transaction per batch (group commit). Private to parley_db.
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <parley/db/sqlite_db_handler.hpp>
#include <parley/net.hpp>

namespace parley::db::detail {

/// Prepared statements kept for the life of a connection, keyed by their SQL literal.
class statement_cache {
 public:
  explicit statement_cache(SQLite::Database& db) : db_(db) {}
  /// `sql` must be a string literal (its address is the key). The statement comes back reset.
  SQLite::Statement& get(const char* sql);

 private:
  SQLite::Database& db_;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache_;
};

/// The bytes of one queued row: written by the recording call into the writer's queue, read
/// back by the writer. No allocation per row, and nothing allocated on one thread is freed
/// on the other (which made both threads' malloc slow). Fields are read in written order.
class row_writer {
 public:
  explicit row_writer(std::string& out) : out_(out) {}
  row_writer& str(std::string_view s) {  // read back NUL-terminated (see bind_text)
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
    out_.push_back('\0');
    return *this;
  }
  row_writer& i64(std::int64_t v) { return raw(v); }
  row_writer& f64(double v) { return raw(v); }
  row_writer& u32(std::uint32_t v) { return raw(v); }
  row_writer& flag(bool v) { return raw(static_cast<char>(v)); }
  row_writer& time(wall_clock::time_point t) { return i64(t.time_since_epoch().count()); }

 private:
  template <class T>
  row_writer& raw(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  std::string& out_;
};

class row_reader {
 public:
  explicit row_reader(const char* p) : p_(p) {}
  std::string_view str() {
    const auto n = u32();
    const std::string_view s(p_, n);
    p_ += n + 1;
    return s;
  }
  std::int64_t i64() { return raw<std::int64_t>(); }
  double f64() { return raw<double>(); }
  std::uint32_t u32() { return raw<std::uint32_t>(); }
  bool flag() { return raw<char>() != 0; }
  wall_clock::time_point time() {
    return wall_clock::time_point(wall_clock::duration(i64()));
  }

 private:
  template <class T>
  T raw() {
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  const char* p_;
};

/// Binds `text` as TEXT, not copied (it must outlive the statement's step). `text` must be
/// followed by a NUL, as a std::string's and row_reader::str()'s are.
void bind_text(SQLite::Statement& q, int index, std::string_view text);

/// Hashes std::string keys and finds them by std::string_view.
struct text_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// What the writer remembers about a session between operations.
struct session_slot {
  std::int64_t row = 0;        ///< session.id
  std::int64_t turn_from = 0;  ///< first reasoning_step.id of the current turn; 0: none
};

/// What an operation sees: the connection, statements, and the session rows it knows. Slot
/// changes are journaled so that a rolled-back batch leaves no trace in memory either.
class write_context {
 public:
  write_context(SQLite::Database& db, std::string agent_name);
  SQLite::Database& db() { return db_; }
  const std::string& agent_name() const { return agent_name_; }
  SQLite::Statement& stmt(const char* sql) { return statements_.get(sql); }

  /// The session's slot, inserting a minimal session row when there is none.
  const session_slot& slot(std::string_view session_id, const std::string& timestamp);
  /// The session's slot if the session has a row, else nullptr.
  const session_slot* find_slot(std::string_view session_id);
  /// Sets a slot (journaled).
  void set_slot(std::string_view session_id, const session_slot& s);
  /// Forgets a slot (journaled).
  void erase_slot(std::string_view session_id);
  /// `t` as stored, in a buffer reused by the next call.
  const std::string& timestamp(wall_clock::time_point t);
  /// The id of the next chat, transition, intent_prediction, event or reasoning_step row. One
  /// sequence for all of them, so ids across tables are in write order (the timeline merges on
  /// it; timestamps tie within a millisecond). It continues from the file's largest id, read
  /// again at the start of every batch (begin_batch): other processes may write the file too.
  std::int64_t next_id() { return ++next_id_; }
  std::int64_t& id_counter() { return next_id_; }
  /// Notes activity on a session row. The row's last_activity is written at the end of the
  /// batch when it moved to another second (it is indexed twice: rewriting it on every
  /// message would dirty a page of each index per session per batch), and exactly by
  /// flush_session_rows(true).
  void touch(std::int64_t row, const std::string& timestamp);
  /// Notes a session row's current state; written at the end of the batch (one update per
  /// session per batch, not one per transition).
  void set_state(std::int64_t row, const std::string& state);
  /// A session row was just written with this state and activity (session_started).
  void row_written(std::int64_t row, const std::string& timestamp);
  /// Writes the noted states and activity: all of it when `exact`, else what the rules above
  /// call for. Runs inside the batch's transaction (and before ops that read session rows).
  void flush_session_rows(bool exact);

  // Batch bookkeeping (writer only).
  /// Inside the batch's write transaction: catches the id sequence up with the file.
  void begin_batch();
  void commit_journal();
  void rollback_journal();

 private:
  void journal(std::string_view session_id);
  session_slot& put_slot(std::string_view session_id, const session_slot& s);

  struct row_note {
    std::string activity;  ///< the latest activity noted
    std::string written;   ///< the last_activity last written
    std::optional<std::string> state;  ///< a state not yet written
    bool listed = false;               ///< in dirty_rows_
  };
  row_note& note(std::int64_t row);  // the row's note, listed in dirty_rows_

  SQLite::Database& db_;
  std::string agent_name_;
  statement_cache statements_;
  std::unordered_map<std::string, session_slot, text_hash, std::equal_to<>> slots_;
  std::string timestamp_;
  std::vector<std::pair<std::string, std::optional<session_slot>>> journal_;
  std::unordered_map<std::int64_t, row_note> rows_;
  std::vector<std::int64_t> dirty_rows_;  // rows_ entries with something to write
  std::int64_t next_id_ = 0;
  std::int64_t batch_first_id_ = 0;
};

using write_op = std::function<void(write_context&)>;
/// Why a batch failed to commit (see writer.cpp: what each leads to).
enum class failure { none, locked, transient, bad };
/// Called once an operation is committed (nullptr) or given up on (the error).
using write_done = std::function<void(std::exception_ptr)>;

class writer {
 public:
  writer(std::unique_ptr<SQLite::Database> db, std::string agent_name,
         const sqlite_options& options);
  ~writer();

  /// Any thread. Queues `op`; returns its sequence number. `checked` ops run inside a
  /// savepoint: if they throw anything but an SQLite error, only they are undone and `done`
  /// gets the error. After stop(), ops are refused: `done` runs at once with an error.
  std::uint64_t push(write_op op, write_done done = {}, bool checked = false) {
    return push_for({}, std::move(op), std::move(done), checked);
  }
  /// push() for an op that writes rows of session `session` (of this writer's agent): a read
  /// of that session (mark(session)) waits for it.
  std::uint64_t push_for(std::string_view session, write_op op, write_done done = {},
                         bool checked = false);
  /// A row op of session `session`: applies the bytes `encode` writes (a row_writer&) with
  /// `fn`, which must read them back in the same order. For the rows written on every
  /// message. `encode` runs under the queue's lock: it should only copy (serialise before
  /// calling); if it throws, nothing is queued and the exception is the caller's.
  using row_fn = void (*)(write_context&, row_reader&);
  template <class Encode>
  std::uint64_t push_row(std::string_view session, row_fn fn, Encode&& encode,
                         write_done done = {}) {
    std::unique_lock lock(mutex_);
    if (!admit(lock, done)) return 0;
    entry e;
    e.row = fn;
    e.at = arena_.size();
    e.done = std::move(done);
    row_writer w(arena_);
    try {
      encode(w);
    } catch (...) {
      arena_.resize(e.at);  // nothing of a row that failed to encode stays queued
      throw;
    }
    return enqueue(lock, std::move(e), session);
  }
  /// Any thread. The sequence number of the last op queued.
  std::uint64_t last_queued() const;
  /// Any thread; never blocks on the disk. The sequence number a reader waits for (with
  /// wait_processed) to see every op queued before the call for `session` (every op at all
  /// when empty); when some are not yet committed, asks the writer to commit them without
  /// gathering more. A session with nothing pending needs no wait, however far behind the
  /// writer is with other sessions' rows.
  std::uint64_t mark(std::string_view session = {});
  /// Any thread. Blocks until every op up to `seq` is committed or given up on.
  void wait_processed(std::uint64_t seq);
  /// Any thread. Blocks until everything queued before is committed (or given up on) and the
  /// session rows are exact (state and last activity): what readers wait for.
  void sync();
  /// Writes everything queued, then ends the thread and closes the connection. Idempotent.
  void stop();
  writer_stats stats() const;

 private:
  struct entry {
    write_op op;
    row_fn row = nullptr;  // or a row op: its bytes start at arena offset `at`
    std::size_t at = 0;
    write_done done;
    bool checked = false;
    std::exception_ptr error;  // a checked op's own failure (not retried)
    bool exact = false;        // sync(): the batch ends with exact session rows
  };
  /// Under the lock: waits for room (max_queued). False, with `done` called and the lock
  /// released, once stopped.
  bool admit(std::unique_lock<std::mutex>& lock, write_done& done);
  /// Under the lock: queues `e` (of `session`, if any), releases the lock, wakes the writer if
  /// it should.
  std::uint64_t enqueue(std::unique_lock<std::mutex>& lock, entry e, std::string_view session);
  void run();
  /// Gathering stops at this many queued ops.
  std::size_t gather_limit() const;
  void process(std::vector<entry>& batch, bool exact);
  /// One transaction for batch[from, to); never throws.
  failure try_commit(std::vector<entry>& batch, std::size_t from, std::size_t to, bool exact);
  /// try_commit, retried while the file is locked (without limit, unless stopping) or failing
  /// (write_attempts times). Returns the last failure, or none.
  failure commit_retrying(std::vector<entry>& batch, std::size_t from, std::size_t to,
                          bool exact);
  /// Writes batch[from, to) around its bad rows (halving); returns the rows given up on.
  std::size_t isolate(std::vector<entry>& batch, std::size_t from, std::size_t to, bool exact);
  bool stopping() const;
  void write_session_rows();
  void apply(entry& e);

  std::unique_ptr<SQLite::Database> db_;
  std::string path_;  // for messages
  write_context ctx_;
  sqlite_options options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;       // the writer: work or stop
  std::condition_variable processed_;  // waiters: processed_seq_ moved
  std::condition_variable room_;       // pushers: the queue was taken (max_queued)
  std::thread::id thread_id_;          // the writer's own thread never waits for room
  std::vector<entry> queue_;
  // The last op of each session in queue_ (queued_sessions_) and in the batch being written
  // (writing_sessions_, swapped in with the batch): what mark(session) waits for. A session
  // in neither has nothing pending. Both hold only sessions with rows in flight.
  using session_seqs =
      std::unordered_map<std::string, std::uint64_t, text_hash, std::equal_to<>>;
  session_seqs queued_sessions_;
  session_seqs writing_sessions_;
  std::string arena_;        // the queued row ops' bytes
  std::string batch_arena_;  // the writer's: the bytes of the batch it writes
  std::uint64_t queued_seq_ = 0;
  std::uint64_t processed_seq_ = 0;
  std::uint64_t writing_seq_ = 0;  // the last op of the batch being written
  bool stopping_ = false;
  bool stopped_ = false;
  bool urgent_ = false;  // somebody waits for a queued op: commit without gathering
  writer_stats stats_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace parley::db::detail
