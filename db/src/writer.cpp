#include "writer.hpp"

#include <sqlite3.h>

#include <sys/resource.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>

#include <SQLiteCpp/Exception.h>

#include <parley/db/timestamp.hpp>
#include <parley/errors.hpp>
#include <parley/log.hpp>

namespace parley::db::detail {

// ---- statements ------------------------------------------------------------------------------

SQLite::Statement& statement_cache::get(const char* sql) {
  auto& s = cache_[sql];
  if (!s) {
    s = std::make_unique<SQLite::Statement>(db_, sql);
  } else {
    s->tryReset();  // a statement that failed last time is reset here, not where it threw
    s->clearBindings();
  }
  return *s;
}

void bind_text(SQLite::Statement& q, int index, std::string_view text) {
  if (std::strlen(text.data()) == text.size())
    q.bindNoCopy(index, text.data());  // the usual case: text up to its terminator
  else
    q.bind(index, std::string(text));  // a NUL inside: bound by size, copied
}

// ---- context ---------------------------------------------------------------------------------

write_context::write_context(SQLite::Database& db, std::string agent_name)
    : db_(db), agent_name_(std::move(agent_name)), statements_(db) {}

void write_context::begin_batch() {
  batch_first_id_ = next_id_;
  // The batch holds the file's write lock (BEGIN IMMEDIATE) until it ends: no connection of
  // this or another process adds a row meanwhile, so ids above the largest one now in the
  // file are this batch's alone. Read at every batch because another process writing the same
  // file (a second agent, an import from a tool) moves it; six lookups of a b-tree's last
  // row, about a microsecond each. Never below our own count: ids are not reused after a
  // delete within a run.
  auto& q = stmt(
      "SELECT max(coalesce((SELECT max(id) FROM chat), 0), "
      "coalesce((SELECT max(id) FROM transition), 0), "
      "coalesce((SELECT max(id) FROM intent_prediction), 0), "
      "coalesce((SELECT max(id) FROM event), 0), "
      "coalesce((SELECT max(id) FROM reasoning_step), 0), "
      "coalesce((SELECT max(id) FROM agent_message), 0))");
  if (q.executeStep()) next_id_ = std::max(next_id_, q.getColumn(0).getInt64());
  q.tryReset();
  batch_first_id_ = next_id_;
}

session_slot& write_context::put_slot(std::string_view session_id, const session_slot& s) {
  auto [it, fresh] = slots_.try_emplace(std::string(session_id), s);
  if (!fresh) it->second = s;
  return it->second;
}

const session_slot* write_context::find_slot(std::string_view session_id) {
  if (auto it = slots_.find(session_id); it != slots_.end()) return &it->second;
  auto& q = stmt("SELECT id FROM session WHERE agent_name = ? AND session_id = ?");
  q.bindNoCopy(1, agent_name_);
  bind_text(q, 2, session_id);
  if (!q.executeStep()) return nullptr;
  const auto row = q.getColumn(0).getInt64();
  q.tryReset();  // an active statement would hold a read lock (and block the checkpoint)
  journal(session_id);
  return &put_slot(session_id, {row, 0});
}

const std::string& write_context::timestamp(wall_clock::time_point t) {
  return timestamp_ = format_timestamp(t);
}

const session_slot& write_context::slot(std::string_view session_id,
                                        const std::string& timestamp) {
  if (const auto* s = find_slot(session_id)) return *s;
  // A session recorded without session_started (rows deleted while it ran, or a handler
  // opened on an agent whose sessions began elsewhere): give it a minimal row.
  auto& ins = stmt(
      "INSERT INTO session (agent_name, session_id, timestamp, last_activity) "
      "VALUES (?, ?, ?, ?) RETURNING id");
  ins.bindNoCopy(1, agent_name_);
  bind_text(ins, 2, session_id);
  ins.bindNoCopy(3, timestamp);
  ins.bindNoCopy(4, timestamp);
  ins.executeStep();
  const auto row = ins.getColumn(0).getInt64();
  ins.tryReset();
  journal(session_id);
  return put_slot(session_id, {row, 0});
}

void write_context::set_slot(std::string_view session_id, const session_slot& s) {
  journal(session_id);
  put_slot(session_id, s);
}

void write_context::erase_slot(std::string_view session_id) {
  auto it = slots_.find(session_id);
  if (it != slots_.end()) rows_.erase(it->second.row);
  journal(session_id);
  if (it != slots_.end()) slots_.erase(it);
}

void write_context::journal(std::string_view session_id) {
  auto it = slots_.find(session_id);
  journal_.emplace_back(std::string(session_id),
                        it == slots_.end() ? std::nullopt : std::optional<session_slot>(it->second));
}

write_context::row_note& write_context::note(std::int64_t row) {
  auto& n = rows_[row];
  if (!n.listed) {
    n.listed = true;
    dirty_rows_.push_back(row);
  }
  return n;
}

void write_context::touch(std::int64_t row, const std::string& timestamp) {
  auto& n = note(row);
  if (n.activity < timestamp) n.activity = timestamp;
}

void write_context::set_state(std::int64_t row, const std::string& state) { note(row).state = state; }

void write_context::row_written(std::int64_t row, const std::string& timestamp) {
  auto& n = rows_[row];
  n.state.reset();
  n.activity.clear();
  n.written = timestamp;
}

namespace {
// Timestamps are "YYYY-MM-DDTHH:MM:SS.mmmZ": the same second is the same first 19 characters.
bool same_second(const std::string& a, const std::string& b) {
  return a.size() >= 19 && b.size() >= 19 && a.compare(0, 19, b, 0, 19) == 0;
}
}  // namespace

void write_context::flush_session_rows(bool exact) {
  if (dirty_rows_.empty()) return;
  std::vector<std::int64_t> keep;
  for (const auto row : dirty_rows_) {
    auto it = rows_.find(row);
    if (it == rows_.end()) continue;
    auto& n = it->second;
    if (n.activity <= n.written) n.activity.clear();  // nothing newer than the row has
    const bool activity = !n.activity.empty() && (exact || !same_second(n.activity, n.written));
    if (activity && n.state) {
      auto& u = stmt(
          "UPDATE session SET current_state = ?3, last_activity = max(last_activity, ?1) "
          "WHERE id = ?2");
      u.bindNoCopy(1, n.activity);
      u.bind(2, row);
      u.bindNoCopy(3, *n.state);
      u.exec();
    } else if (activity) {
      auto& u = stmt("UPDATE session SET last_activity = ?1 WHERE id = ?2 AND last_activity < ?1");
      u.bindNoCopy(1, n.activity);
      u.bind(2, row);
      u.exec();
    } else if (n.state) {
      auto& u = stmt("UPDATE session SET current_state = ? WHERE id = ?");
      u.bindNoCopy(1, *n.state);
      u.bind(2, row);
      u.exec();
    }
    n.state.reset();
    if (activity) {
      n.written = std::move(n.activity);
      n.activity.clear();
    }
    n.listed = !n.activity.empty();  // the same second as written: later, or when exact
    if (n.listed) keep.push_back(row);
  }
  dirty_rows_ = std::move(keep);
}

void write_context::commit_journal() { journal_.clear(); }

void write_context::rollback_journal() {
  for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
    if (it->second)
      slots_[it->first] = *it->second;
    else
      slots_.erase(it->first);
  }
  journal_.clear();
  // Rows made in the rolled-back batch are gone (their ids may come back for other
  // sessions): forget every note. The retried ops note again what they touch.
  rows_.clear();
  dirty_rows_.clear();
  next_id_ = batch_first_id_;
}

// ---- writer ----------------------------------------------------------------------------------

namespace {
// Gathering stops at this many queued ops: a batch's dirty pages stay in the page cache.
constexpr std::size_t max_gathered = 20000;
// The writer offers its core to other threads every this many ops (about 0.2 ms of work).
constexpr std::size_t yield_every = 64;

// Why a commit failed, which says what to do next.
//  - locked: another connection or process holds the write lock past busy_timeout. It will let
//    go: wait and retry, for as long as it takes (sessions slow down at db.max_queued).
//  - transient: the disk, memory, the file (full, I/O error). Retried write_attempts times, then
//    the batch is given up so later rows get their chance.
//  - bad: the rows themselves (a constraint, a bug, an exception of any type from an op): the
//    same rows fail the same way again, so the batch is halved until the culprit is alone.
failure classify(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return failure::locked;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_READONLY:
      return failure::transient;
    default:
      return failure::bad;
  }
}
}  // namespace

writer::writer(std::unique_ptr<SQLite::Database> db, std::string agent_name,
               const sqlite_options& options)
    : db_(std::move(db)),
      path_(options.path),
      ctx_(*db_, std::move(agent_name)),
      options_(options) {
  options_.max_queued = std::max<std::size_t>(1, options_.max_queued);
  thread_ = std::thread([this] { run(); });
  std::lock_guard lock(mutex_);
  thread_id_ = thread_.get_id();
}

writer::~writer() { stop(); }

bool writer::admit(std::unique_lock<std::mutex>& lock, write_done& done) {
  if (queue_.size() >= options_.max_queued && !stopping_ &&
      std::this_thread::get_id() != thread_id_) {
    // The writer is that far behind: wait until it takes the queue (it commits at once).
    if (stats_.queue_waits++ == 0)
      PARLEY_LOG(warn, "db: " << queue_.size() << " rows wait for the writer (db.max_queued); "
                              "sessions wait for the disk. A slow or locked database file, "
                              "or more load than the machine can record");
    urgent_ = true;
    wake_.notify_one();
    room_.wait(lock, [&] { return queue_.size() < options_.max_queued || stopping_; });
  }
  if (!stopping_) return true;
  lock.unlock();
  if (done) done(std::make_exception_ptr(db_error("the database is closed")));
  return false;
}

std::uint64_t writer::enqueue(std::unique_lock<std::mutex>& lock, entry e,
                              std::string_view session) {
  // Somebody waits for an op with a callback (a sync_commit reply, an import): no gathering.
  const bool urgent = e.done != nullptr && !urgent_;
  urgent_ = urgent_ || e.done != nullptr;
  queue_.push_back(std::move(e));
  ++stats_.rows_queued;
  stats_.queue_high = std::max<std::uint64_t>(stats_.queue_high, queue_.size());
  const auto seq = ++queued_seq_;
  if (!session.empty()) {
    // A lookup per row; a key allocated once per session per batch.
    if (auto it = queued_sessions_.find(session); it != queued_sessions_.end())
      it->second = seq;
    else
      queued_sessions_.emplace(std::string(session), seq);
  }
  const bool wake = queue_.size() == 1 || urgent || queue_.size() == gather_limit();
  lock.unlock();
  if (wake) wake_.notify_one();
  return seq;
}

std::uint64_t writer::push_for(std::string_view session, write_op op, write_done done,
                               bool checked) {
  std::unique_lock lock(mutex_);
  if (!admit(lock, done)) return 0;
  entry e;
  e.op = std::move(op);
  e.done = std::move(done);
  e.checked = checked;
  return enqueue(lock, std::move(e), session);
}

std::size_t writer::gather_limit() const { return std::min(max_gathered, options_.max_queued); }

std::uint64_t writer::last_queued() const {
  std::lock_guard lock(mutex_);
  return queued_seq_;
}

void writer::sync() {
  std::uint64_t seq = 0;
  {
    std::unique_lock lock(mutex_);
    if (stopping_) {
      // stop() writes everything, exactly: wait for that.
      processed_.wait(lock, [&] { return stopped_ || processed_seq_ >= queued_seq_; });
      return;
    }
    entry marker;
    marker.exact = true;
    queue_.push_back(std::move(marker));
    seq = ++queued_seq_;
    urgent_ = true;
  }
  wake_.notify_one();
  wait_processed(seq);
}

std::uint64_t writer::mark(std::string_view session) {
  bool wake = false;
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mutex_);
    if (session.empty()) {
      seq = queued_seq_;
    } else if (auto q = queued_sessions_.find(session); q != queued_sessions_.end()) {
      seq = q->second;
    } else if (auto w = writing_sessions_.find(session); w != writing_sessions_.end()) {
      seq = w->second;  // in the batch being written: no need to hurry the writer
    } else {
      return processed_seq_;  // nothing of this session pending: read now
    }
    // Nothing to wait for once it is committed. Else the batch being gathered is committed
    // now: a reader waits for one commit, not for the commit interval too. (No marker op: the
    // last op queued is what the reader waits for.)
    if (processed_seq_ < seq && seq > writing_seq_ && !stopping_ && !urgent_) {
      urgent_ = true;
      wake = true;
    }
  }
  if (wake) wake_.notify_one();
  return seq;
}

void writer::wait_processed(std::uint64_t seq) {
  std::unique_lock lock(mutex_);
  processed_.wait(lock, [&] { return processed_seq_ >= seq || stopped_; });
}

writer_stats writer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void writer::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  room_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void writer::run() {
  name_this_thread("parley-db");
  if (options_.writer_nice > 0) {
    // Linux: with a thread id, setpriority sets that thread's nice value alone. Only ever
    // lowered: a process already nicer than writer_nice keeps its own value.
    const auto tid = static_cast<id_t>(::gettid());
    errno = 0;
    const int now = ::getpriority(PRIO_PROCESS, tid);
    const int want = std::min(options_.writer_nice, 19);
    if (errno == 0 && want > now && ::setpriority(PRIO_PROCESS, tid, want) != 0)
      PARLEY_LOG(debug, "db: could not lower the writer's priority; it runs at the process's");
  }
  std::vector<entry> batch;
  for (;;) {
    std::uint64_t last = 0;
    bool exact = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) break;  // stopping, and everything is written
      if (options_.commit_interval.count() > 0)
        // Gather more rows into this commit, unless somebody waits for it.
        wake_.wait_for(lock, options_.commit_interval, [&] {
          return stopping_ || urgent_ || queue_.size() >= gather_limit();
        });
      urgent_ = false;
      batch.swap(queue_);
      batch_arena_.swap(arena_);
      writing_sessions_.swap(queued_sessions_);
      queued_sessions_.clear();  // the last batch's, all written
      writing_seq_ = queued_seq_;
      room_.notify_all();  // no system call when nobody waits
      last = queued_seq_;
      exact = stopping_;
    }
    process(batch, exact);
    batch.clear();
    batch_arena_.clear();
    if (batch_arena_.capacity() > (std::size_t{16} << 20)) std::string().swap(batch_arena_);
    {
      std::lock_guard lock(mutex_);
      processed_seq_ = last;
    }
    processed_.notify_all();
  }
  write_session_rows();
  try {
    // Fold the WAL back into the file so a cleanly stopped agent leaves one file.
    db_->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (const std::exception& e) {
    PARLEY_LOG(warn, "db: checkpoint at close failed (the WAL file stays; it is replayed on "
                     "the next open): " << e.what());
  }
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  processed_.notify_all();
}

void writer::write_session_rows() {
  try {
    db_->exec("BEGIN IMMEDIATE");
    ctx_.flush_session_rows(true);
    db_->exec("COMMIT");
  } catch (const std::exception& e) {
    try {
      if (sqlite3_get_autocommit(db_->getHandle()) == 0) db_->exec("ROLLBACK");
    } catch (...) {
    }
    PARLEY_LOG(warn, "db: writing the sessions' last activity at close failed (it stays up "
                     "to a second early): " << e.what());
  }
}

void writer::apply(entry& e) {
  if (e.row) {
    row_reader r(batch_arena_.data() + e.at);
    e.row(ctx_, r);
    return;
  }
  if (!e.checked) {
    if (e.op) e.op(ctx_);
    return;
  }
  ctx_.flush_session_rows(true);  // the op may read session rows
  db_->exec("SAVEPOINT op");
  try {
    e.op(ctx_);
    db_->exec("RELEASE op");
  } catch (const SQLite::Exception&) {
    throw;  // the batch fails and is retried
  } catch (...) {
    // The op's own refusal (a taken id, a bad document): undo just it.
    e.error = std::current_exception();
    db_->exec("ROLLBACK TO op");
    db_->exec("RELEASE op");
  }
}

failure writer::try_commit(std::vector<entry>& batch, std::size_t from, std::size_t to,
                           bool exact) {
  std::string what;
  failure kind = failure::bad;
  try {
    db_->exec("BEGIN IMMEDIATE");
    ctx_.begin_batch();
    for (std::size_t i = from; i < to; ++i) {
      batch[i].error = nullptr;
      apply(batch[i]);
      // Every so many rows, let a thread that woke on this core (an io thread with replies
      // to send) run now instead of waiting out the writer's time slice: on two busy cores
      // that wait left the other core idle. Cheap when nobody waits; fair under overload.
      if ((i + 1) % yield_every == 0) sched_yield();
    }
    ctx_.flush_session_rows(exact);
    db_->exec("COMMIT");
    ctx_.commit_journal();
    return failure::none;
  } catch (const SQLite::Exception& ex) {
    kind = classify(ex.getErrorCode());
    what = ex.what();
  } catch (const std::exception& ex) {
    // Not SQLite's: an op that threw (a bug, bad data, memory). Treated as a bad row: it is
    // isolated and dropped, the writer thread and every other row go on.
    what = ex.what();
  } catch (...) {
    what = "an exception that is not a std::exception";
  }
  try {
    if (sqlite3_get_autocommit(db_->getHandle()) == 0) db_->exec("ROLLBACK");
  } catch (...) {
  }
  ctx_.rollback_journal();
  {
    std::lock_guard lock(mutex_);
    ++stats_.write_failures;
  }
  if (kind == failure::locked)  // said once per wait, by commit_retrying
    PARLEY_LOG(debug, "db: writing " << (to - from) << " row(s) waits for the lock: " << what);
  else
    PARLEY_LOG(warn, "db: writing " << (to - from) << " row(s) failed: " << what
                                    << (kind == failure::transient ? " (will retry)" : ""));
  return kind;
}

bool writer::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

failure writer::commit_retrying(std::vector<entry>& batch, std::size_t from, std::size_t to,
                                bool exact) {
  auto backoff = options_.retry_backoff;
  int attempts = 0;  // failures that count against write_attempts
  bool waited = false;
  failure kind = failure::none;
  for (;;) {
    kind = try_commit(batch, from, to, exact);
    if (kind == failure::none || kind == failure::bad) break;
    if (kind == failure::locked && !stopping()) {
      // Another connection or process holds the write lock past busy_timeout. It will let go
      // (a second agent's batch, a tool's transaction): wait for it, however long, and drop
      // nothing. The sessions go on answering; once db.max_queued rows wait they slow down.
      if (!waited) {
        waited = true;
        std::uint64_t n = 0;
        {
          std::lock_guard lock(mutex_);
          n = ++stats_.lock_waits;
        }
        if (n == 1)
          PARLEY_LOG(warn, "db: '" << path_ << "' is locked by another connection or process "
                           "(another agent recording to it, or a tool holding a write "
                           "transaction) for longer than busy_timeout; the writer waits and "
                           "retries, no row is dropped, and sessions slow down once "
                           "db.max_queued rows wait. If it lasts, end the transaction or "
                           "process that holds it (fuser " << path_ << "), or give each agent "
                           "its own file with --db");
        else
          PARLEY_LOG(warn, "db: '" << path_ << "' is locked again; the writer waits for it");
      }
    } else if (++attempts >= std::max(1, options_.write_attempts)) {
      // A failing disk, or a lock that outlasts the retries while the agent stops.
      break;
    }
    // The writer's own thread waits, not a session: the agent goes on answering while its
    // rows queue up behind this batch.
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(1));
  }
  if (waited && kind == failure::none)
    PARLEY_LOG(info, "db: '" << path_ << "' is free again; the rows that waited are written");
  return kind;
}

std::size_t writer::isolate(std::vector<entry>& batch, std::size_t from, std::size_t to,
                            bool exact) {
  if (to - from == 1) {
    batch[from].error = std::make_exception_ptr(db_error("the row could not be written"));
    return 1;
  }
  // Halve: a few bad rows among thousands cost a few dozen transactions, not thousands.
  const std::size_t mid = from + (to - from) / 2;
  std::size_t dropped = 0;
  for (auto [a, b] : {std::pair{from, mid}, std::pair{mid, to}}) {
    const auto kind = commit_retrying(batch, a, b, exact);
    if (kind == failure::bad) {
      dropped += isolate(batch, a, b, exact);
    } else if (kind != failure::none) {
      for (std::size_t i = a; i < b; ++i)
        batch[i].error = std::make_exception_ptr(db_error("write failed"));
      dropped += b - a;
    }
  }
  return dropped;
}

void writer::process(std::vector<entry>& batch, bool exact) {
  for (const auto& e : batch) exact = exact || e.exact;
  std::size_t dropped = 0;
  const auto kind = commit_retrying(batch, 0, batch.size(), exact);
  if (kind == failure::bad) {
    // A row is bad: write the others, give up only on the bad ones.
    dropped = isolate(batch, 0, batch.size(), exact);
    PARLEY_LOG(error, "db: gave up on " << dropped << " row(s) that cannot be written (see the "
                                        "failures above); the agent goes on without them");
  } else if (kind != failure::none) {
    // Still failing (disk full, I/O errors): give these rows up so later ones get their chance.
    dropped = batch.size();
    for (auto& e : batch)
      if (!e.error) e.error = std::make_exception_ptr(db_error("write failed"));
    PARLEY_LOG(error, "db: gave up on " << dropped << " row(s) after " << options_.write_attempts
                                        << " attempts; the agent goes on without them");
  }
  {
    std::lock_guard lock(mutex_);
    stats_.rows_dropped += dropped;
    const auto markers = static_cast<std::size_t>(
        std::count_if(batch.begin(), batch.end(), [](const entry& e) { return !e.op && !e.row; }));
    stats_.rows_written += batch.size() - dropped - markers;
    stats_.batches += 1;
  }
  // Callbacks run after the commit, in queue order: replies of one session stay in order.
  for (auto& e : batch) {
    if (!e.done) continue;
    try {
      e.done(e.error);
    } catch (const std::exception& ex) {
      PARLEY_LOG(error, "db: a commit callback threw: " << ex.what());
    } catch (...) {
      PARLEY_LOG(error, "db: a commit callback threw");
    }
  }
}

}  // namespace parley::db::detail
