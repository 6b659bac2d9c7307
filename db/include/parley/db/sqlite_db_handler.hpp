#pragma once
/// The SQLite DB handler: records chats, transitions, intent predictions, events and reasoning
/// steps into one SQLite file (WAL), persists sessions, and reads them back.
///
/// Writes go to one writer thread that owns the write connection and commits in batches
/// (group commit): the recording methods only queue a row and never touch the disk, so they
/// are safe on session strands. The async reads run on a pool of reader threads (db.readers),
/// each with its own connection: the caller never waits. The blocking reads run on the
/// caller's thread. Both see every row queued before the call (read-your-writes): the read
/// waits, on its own thread, until the writer has committed it. Every public method is safe
/// from any thread.
///
/// Several processes may record to one file: row ids are taken inside each batch's write
/// transaction from the file's largest, and a writer that finds the file locked waits.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <parley/db_handler.hpp>

namespace parley::db {

namespace detail {
class writer;
class reader_pool;
}  // namespace detail

/// The schema version this build writes (PRAGMA user_version after the migrations).
int schema_version();

/// Counters of the writer (monotonic; any thread).
struct writer_stats {
  std::uint64_t rows_queued = 0;     ///< recording calls accepted
  std::uint64_t rows_written = 0;    ///< recording calls committed
  std::uint64_t batches = 0;         ///< transactions committed
  std::uint64_t write_failures = 0;  ///< failed attempts to commit a batch (each is retried)
  std::uint64_t rows_dropped = 0;    ///< rows that cannot be written, or given up on after the
                                     ///< retries of a failing disk (logged as errors)
  std::uint64_t lock_waits = 0;      ///< times the writer found the file locked past
                                     ///< busy_timeout and waited (it drops nothing for a lock)
  std::uint64_t queue_waits = 0;     ///< recording calls that waited for room (max_queued)
  std::uint64_t queue_high = 0;      ///< the most rows ever queued at once
};

struct sqlite_options {
  std::string path = "parley.db";
  /// Deliver a reply only once the rows it completes are committed (db.sync_commit). Also
  /// makes commits durable against power loss (synchronous=FULL), still one fsync per batch.
  bool sync_commit = false;
  /// How long a connection waits for a lock held by another connection or process before
  /// the call fails (SQLite's busy_timeout). The writer then waits again, without limit: a
  /// locked file (another agent recording to it, a tool's transaction) delays rows, never
  /// drops them. Logged once, with the fix, and counted (writer_stats::lock_waits).
  std::chrono::milliseconds busy_timeout{5000};
  /// Attempts to commit a batch while the disk fails (full, I/O errors) before it is given
  /// up (its rows dropped, logged and counted), so that later rows get their chance. A batch
  /// with a row that cannot be written at all (a constraint, an exception) is split until
  /// that row is alone, and only it is dropped. Also bounds the waits for a lock during
  /// close().
  int write_attempts = 5;
  /// First wait between attempts; doubles each time.
  std::chrono::milliseconds retry_backoff{20};
  /// How long the writer gathers rows before it commits them (db.commit_interval_ms). One
  /// commit rewrites every page its rows touched, and each session's rows sit on pages of
  /// their own: under load, fewer and bigger commits cost far less per row. Nobody waits for
  /// it: replies go out at once (unless sync_commit), and a reader (history, restore, a
  /// listing) or a sync_commit reply makes the writer commit now. 0 commits as soon as rows
  /// are queued. A crash loses at most this much more of the recording.
  std::chrono::milliseconds commit_interval{20};
  /// The writer connection's page cache (a batch's pages should fit, so that they are not
  /// spilled to the WAL before the commit).
  std::size_t cache_mib = 32;
  /// The writer thread's nice value (db.writer_nice, 0-19); 0 keeps the process's. The
  /// writer already hands its core to a waking io thread every few dozen rows; a nice value
  /// also gives it a smaller share when the cores are contended, which under sustained
  /// overload makes it fall behind until max_queued holds the sessions back (longer waits,
  /// see bench/README.md). An unprivileged thread cannot undo it.
  int writer_nice = 0;
  /// The most rows queued for the writer (db.max_queued). A recording call that finds the
  /// queue full waits until the writer takes it: under sustained overload, or while the
  /// file stays locked, sessions slow down to the disk's pace instead of growing memory
  /// without bound or dropping rows. (Each queued row is a few hundred bytes.)
  std::size_t max_queued = 100000;
  /// Reader threads (db.readers), each with its own read-only connection, for the async reads
  /// (async_load_session, async_chat_history, async_chat_page, async_reasoning_events). At
  /// least 1.
  std::size_t readers = 2;
};

class sqlite_db_handler final : public db_handler {
 public:
  explicit sqlite_db_handler(sqlite_options options);
  ~sqlite_db_handler() override;
  sqlite_db_handler(const sqlite_db_handler&) = delete;
  sqlite_db_handler& operator=(const sqlite_db_handler&) = delete;

  std::string_view name() const override { return "sqlite"; }
  const std::string& path() const { return options_.path; }

  /// Creates the file and its folder-less path if missing, migrates the schema, starts the
  /// writer. @throws db_error naming the path, the problem and the fix (cannot create, not a
  /// SQLite database, not a Parley database, a newer schema, locked by another process).
  void open(const agent& owner) override;
  /// The same, for programs without an agent (tools, benchmarks).
  void open(std::string agent_name);
  /// Finishes the reads in flight (their callbacks run), flushes every queued row, then
  /// closes. Safe to call twice. Not from a read callback.
  void close() override;
  bool sync_commit() const override { return options_.sync_commit; }

  // ---- recording (any thread; never blocks on disk) ----
  void session_started(const session& s) override;
  void session_closed(const session& s, std::string_view reason) override;
  void save_message(const session& s, const reply& message, bool is_user,
                    std::function<void()> committed = {}) override;
  void save_transition(const session& s, const transition& t, const event* e) override;
  void save_prediction(const session& s, std::string_view message,
                       const intent_prediction& p) override;
  void save_event(const session* s, std::string_view event, std::string_view info) override;
  void save_variables(const session& s) override;
  void save_reasoning_event(const session& s, std::string_view kind,
                            const json& payload) override;
  void save_agent_message(const session& s, const agent_message_record& m) override;
  void save_timer(const session& s, const pending_timer& t) override;
  void delete_timer(const session& s, std::string_view key) override;

  // ---- reading (any thread; waits for the rows queued before the call) ----
  // Blocking: on the caller's thread. @throws db_error when closed, SQLite's errors.
  std::vector<chat_message> chat_history(const session& s, std::optional<std::size_t> n,
                                         std::optional<wall_clock::time_point> until) override;
  std::vector<reasoning_event> reasoning_events(
      const session& s, std::optional<wall_clock::time_point> until) override;
  std::optional<session_snapshot> load_session(std::string_view agent_name,
                                               std::string_view session_id) override;
  // Async: `done` runs once, on a reader thread (inline with a db_error when the handler is
  // not open or closing). An exception `done` throws is logged and swallowed.
  void async_load_session(std::string agent_name, std::string session_id,
                          read_callback<std::optional<session_snapshot>> done) override;
  void async_chat_history(const session& s, std::optional<std::size_t> n,
                          std::optional<wall_clock::time_point> until,
                          read_callback<std::vector<chat_message>> done) override;
  void async_chat_page(const session& s, std::int64_t after_id, std::size_t limit,
                       std::optional<wall_clock::time_point> until,
                       read_callback<std::vector<chat_message>> done) override;
  void async_replies_since(const session& s, std::int64_t after_seq, std::size_t limit,
                           read_callback<std::vector<chat_message>> done) override;
  void async_reasoning_events(const session& s, std::optional<wall_clock::time_point> until,
                              read_callback<std::vector<reasoning_event>> done) override;
  /// Queued after the session's earlier writes; the rows cascade.
  void delete_session(std::string_view agent_name, std::string_view session_id) override;

  // ---- session management ----
  std::vector<stored_session> list_sessions(std::string_view agent_name,
                                            std::string_view username, std::size_t limit,
                                            std::size_t offset) override;
  json export_session(std::string_view agent_name, std::string_view session_id) override;
  void import_session(std::string_view agent_name, const json& data,
                      std::string_view new_session_id) override;
  void fork_session(std::string_view agent_name, std::string_view session_id,
                    std::string_view new_session_id) override;

  /// Chat history by ids, for callers without a live session (tools, tests).
  std::vector<chat_message> chat_history(std::string_view session_id,
                                         std::optional<std::size_t> n = std::nullopt,
                                         std::optional<wall_clock::time_point> until = {});
  /// Blocks until every row queued so far is committed (or given up on). Any thread.
  void flush();
  writer_stats stats() const;

 private:
  void require_open(const char* what) const;
  /// Runs `read` (reading a detail::reader_conn) on a reader thread once the writer has
  /// committed every row of `session` queued before this call (every row when empty), then
  /// `done` with its result or error.
  template <class T, class Read>
  void read_async(const char* what, std::string_view session, read_callback<T> done, Read read);

  sqlite_options options_;
  std::string agent_name_;
  std::unique_ptr<detail::writer> writer_;
  std::unique_ptr<detail::reader_pool> readers_;
  std::atomic<bool> closed_warned_{false};
};

}  // namespace parley::db
