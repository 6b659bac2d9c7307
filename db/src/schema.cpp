#include "schema.hpp"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <parley/db/sqlite_db_handler.hpp>
#include <parley/db/sqlite_open.hpp>
#include <parley/errors.hpp>

namespace parley::db {

namespace {

// Numbered migrations: migrations[i] takes the schema from version i to i + 1. Never edit a
// released one; append a new one. Columns follow BAF's monitoring DB where it has them.
constexpr const char* migrations[] = {
    // 1: the first schema.
    R"sql(
CREATE TABLE session (
  id            INTEGER PRIMARY KEY,
  agent_name    TEXT NOT NULL,
  session_id    TEXT NOT NULL,
  session_name  TEXT NOT NULL DEFAULT '',
  username      TEXT NOT NULL DEFAULT '',
  platform_name TEXT NOT NULL DEFAULT '',
  timestamp     TEXT NOT NULL,
  variables     TEXT NOT NULL DEFAULT '{}',
  current_state TEXT,
  closed_reason TEXT,
  last_activity TEXT NOT NULL,
  UNIQUE (agent_name, session_id)
);
CREATE INDEX session_by_activity ON session (agent_name, last_activity);
CREATE INDEX session_by_user ON session (agent_name, username, last_activity);

CREATE TABLE chat (
  id         INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  type       TEXT NOT NULL,
  content    TEXT NOT NULL,
  is_user    INTEGER NOT NULL,
  timestamp  TEXT NOT NULL
);
CREATE INDEX chat_by_session ON chat (session_id, id);

CREATE TABLE transition (
  id           INTEGER PRIMARY KEY,
  session_id   INTEGER NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  source_state TEXT NOT NULL,
  dest_state   TEXT NOT NULL,
  event        TEXT NOT NULL DEFAULT '',
  condition    TEXT NOT NULL DEFAULT '',
  timestamp    TEXT NOT NULL
);
CREATE INDEX transition_by_session ON transition (session_id, id);

CREATE TABLE intent_prediction (
  id                INTEGER PRIMARY KEY,
  session_id        INTEGER NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  message           TEXT NOT NULL,
  timestamp         TEXT NOT NULL,
  intent_classifier TEXT NOT NULL DEFAULT '',
  intent            TEXT,
  score             REAL NOT NULL
);
CREATE INDEX intent_prediction_by_session ON intent_prediction (session_id, id);

CREATE TABLE parameter (
  id                   INTEGER PRIMARY KEY,
  intent_prediction_id INTEGER NOT NULL REFERENCES intent_prediction (id) ON DELETE CASCADE,
  name                 TEXT NOT NULL,
  value                TEXT,
  info                 TEXT
);
CREATE INDEX parameter_by_prediction ON parameter (intent_prediction_id);

CREATE TABLE event (
  id         INTEGER PRIMARY KEY,
  session_id INTEGER REFERENCES session (id) ON DELETE CASCADE,
  agent_name TEXT NOT NULL,
  event      TEXT NOT NULL,
  info       TEXT NOT NULL DEFAULT '',
  timestamp  TEXT NOT NULL
);
CREATE INDEX event_by_session ON event (session_id, id);

CREATE TABLE reasoning_step (
  id         INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  chat_id    INTEGER REFERENCES chat (id) ON DELETE SET NULL,
  kind       TEXT NOT NULL,
  step_kind  TEXT NOT NULL DEFAULT '',
  step       TEXT NOT NULL DEFAULT '',
  summary    TEXT NOT NULL DEFAULT '',
  payload    TEXT NOT NULL,
  timestamp  TEXT NOT NULL
);
CREATE INDEX reasoning_step_by_session ON reasoning_step (session_id, id);
CREATE INDEX reasoning_step_by_chat ON reasoning_step (chat_id);

CREATE TABLE timer (
  id         INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  due        TEXT NOT NULL,
  event      TEXT NOT NULL,
  UNIQUE (session_id, key)
);
)sql",
    // 2: reasoning steps carry their run, number, tokens and latency (issue 14); agent-to-agent
    // messages with their lineage (issue 13).
    R"sql(
ALTER TABLE reasoning_step ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
ALTER TABLE reasoning_step ADD COLUMN step_number INTEGER;
ALTER TABLE reasoning_step ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE reasoning_step ADD COLUMN completion_tokens INTEGER;
ALTER TABLE reasoning_step ADD COLUMN latency_ms REAL;

CREATE TABLE agent_message (
  id             INTEGER PRIMARY KEY,
  session_id     INTEGER REFERENCES session (id) ON DELETE CASCADE,
  direction      TEXT NOT NULL,
  protocol       TEXT NOT NULL,
  peer           TEXT NOT NULL DEFAULT '',
  message_id     TEXT NOT NULL,
  causation_id   TEXT NOT NULL DEFAULT '',
  correlation_id TEXT NOT NULL DEFAULT '',
  sender_agent   TEXT NOT NULL DEFAULT '',
  sender_session TEXT NOT NULL DEFAULT '',
  depth          INTEGER NOT NULL DEFAULT 0,
  content        TEXT NOT NULL DEFAULT '',
  status         TEXT NOT NULL DEFAULT '',
  timestamp      TEXT NOT NULL
);
CREATE INDEX agent_message_by_session ON agent_message (session_id, id);
CREATE INDEX agent_message_by_message ON agent_message (message_id);
CREATE INDEX agent_message_by_cause ON agent_message (causation_id);
CREATE INDEX agent_message_by_correlation ON agent_message (correlation_id);
)sql",
    // 3: each agent's definition (states, transitions, intents), so tools can draw its state
    // diagram from the database alone (issue 15).
    R"sql(
CREATE TABLE agent_definition (
  agent_name TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  timestamp  TEXT NOT NULL
);
)sql",
    // 4: the inspector's sessions page counts each session's user messages from the index
    // alone (without it, every chat row of each listed session is read); with `id`, a
    // session's last user message is found at once too.
    R"sql(
CREATE INDEX chat_by_session_user ON chat (session_id, is_user, id);
)sql",
    // 5: each reply carries its session's reply sequence number (a client resumes from it,
    // WebSocket ?since=N; NULL for the user's rows). Unique per session: a second writer of
    // the same session (two owners) is refused by the database, not interleaved.
    R"sql(
ALTER TABLE chat ADD COLUMN seq INTEGER;
CREATE UNIQUE INDEX chat_by_session_seq ON chat (session_id, seq) WHERE seq IS NOT NULL;
)sql",
};

constexpr int known_version = static_cast<int>(std::size(migrations));

const char* fix_for(int code) {
  switch (code) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "it is locked by another process (another agent, or a tool holding a write "
             "transaction); stop that process, or pass another path with --db";
    case SQLITE_NOTADB:
      return "the file is not a SQLite database; pass the path of a Parley database (or of a "
             "file to create) with --db";
    case SQLITE_CANTOPEN:
      return "the file cannot be created or opened; check that its folder exists and is "
             "writable, or pass another path with --db ('--db \"\"' disables recording)";
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return "the file is not writable; fix its permissions or pass another path with --db";
    case SQLITE_CORRUPT:
      return "the file is damaged; restore it from a backup or pass another path with --db";
    case SQLITE_FULL:
      return "the disk is full; free some space";
    default:
      return "check the file, or pass another path with --db";
  }
}

int query_int(SQLite::Database& db, const char* sql) {
  SQLite::Statement q(db, sql);
  return q.executeStep() ? q.getColumn(0).getInt() : 0;
}

// Checks that `db` holds a Parley schema this build can use; returns its version.
int check_schema(SQLite::Database& db, const std::string& path) {
  // The three reads see one moment: outside a transaction, another process creating the
  // schema could commit between them (no Parley id yet, then its tables: "not a Parley one").
  const bool own_transaction = sqlite3_get_autocommit(db.getHandle()) != 0;
  if (own_transaction) db.exec("BEGIN");
  int app = 0, version = 0, tables = 0;
  try {
    app = query_int(db, "PRAGMA application_id");
    version = query_int(db, "PRAGMA user_version");
    tables = query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'");
  } catch (...) {
    if (own_transaction) db.exec("ROLLBACK");
    throw;
  }
  if (own_transaction) db.exec("COMMIT");
  if (app != 0 && app != detail::application_id)
    throw db_error("database '" + path +
                   "' is a SQLite file of another application, not a Parley database; pass "
                   "another path with --db");
  if (app == 0 && version == 0 && tables > 0)
    throw db_error("database '" + path +
                   "' is a SQLite database but not a Parley one (it has tables and no Parley "
                   "schema); pass another path with --db");
  if (version > known_version)
    throw db_error("database '" + path + "' has schema version " + std::to_string(version) +
                   ", newer than this build of Parley knows (" + std::to_string(known_version) +
                   "); run a newer Parley, or pass another path with --db");
  return version;
}

}  // namespace

int schema_version() { return known_version; }

namespace detail {

void rethrow_open_error(const std::string& path, const std::exception& e, const char* doing) {
  if (const auto* de = dynamic_cast<const db_error*>(&e)) throw *de;
  int code = 0;
  if (const auto* se = dynamic_cast<const SQLite::Exception*>(&e)) code = se->getErrorCode();
  throw db_error(std::string("cannot ") + doing + " database '" + path + "': " + e.what() +
                 "; " + fix_for(code));
}

namespace {
// One attempt of open_for_writing; SQLite's failures come out as they are.
std::unique_ptr<SQLite::Database> open_once(const std::string& path,
                                            std::chrono::milliseconds busy_timeout, bool durable) {
  // NOMUTEX: only the writer's thread uses this connection, so SQLite's per-call mutex
  // (taken on every bind, step and reset) is pure cost.
  auto db = std::make_unique<SQLite::Database>(
      path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
      static_cast<int>(busy_timeout.count()));
  int version = check_schema(*db, path);
  // WAL: readers (parley-inspect too) never block the writer, and a commit is one append.
  db->exec("PRAGMA journal_mode=WAL");
  db->exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // Not enforced on this connection: a parent lookup for every row written (~10 % of the
  // writer's time), for links the writer makes itself. The schema still declares them (and
  // their cascades, for tools that enable foreign keys); delete_session cascades by hand.
  db->exec("PRAGMA foreign_keys=OFF");
  // Takes the write lock even when there is nothing to migrate: a database locked by another
  // process is reported now, not as failing writes later.
  SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
  version = check_schema(*db, path);  // another process may have migrated meanwhile
  if (version < known_version) {
    for (int v = version; v < known_version; ++v) db->exec(migrations[v]);
    db->exec("PRAGMA application_id=" + std::to_string(application_id));
    db->exec("PRAGMA user_version=" + std::to_string(known_version));
  }
  tx.commit();
  return db;
}
}  // namespace

std::unique_ptr<SQLite::Database> open_for_writing(const std::string& path,
                                                   std::chrono::milliseconds busy_timeout,
                                                   bool durable) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path() && !fs::is_directory(p.parent_path(), ec))
    throw db_error("cannot create database '" + path + "': the folder '" +
                   p.parent_path().string() +
                   "' does not exist; create it, or pass another path with --db ('--db \"\"' "
                   "disables recording)");
  if (fs::is_directory(p, ec))
    throw db_error("cannot create database '" + path +
                   "': it is a folder; pass the path of a file with --db");
  // Two processes opening the same new file at the same moment (two agents started together)
  // can make a step of the other's fail with SQLITE_BUSY at once, without SQLite's busy
  // handler (switching the file to WAL, or the check right after): about one start in 35 in
  // the two-process test. Such a failure is retried until busy_timeout has passed, as a lock
  // held by a live process is waited for; then it is reported as before.
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
  for (;;) {
    try {
      return open_once(path, busy_timeout, durable);
    } catch (const SQLite::Exception& e) {
      const int code = e.getErrorCode() & 0xff;
      if ((code == SQLITE_BUSY || code == SQLITE_LOCKED) &&
          std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      rethrow_open_error(path, e, "open");
    } catch (const std::exception& e) {
      rethrow_open_error(path, e, "open");
    }
  }
}

std::unique_ptr<SQLite::Database> open_for_reading(const std::string& path,
                                                   std::chrono::milliseconds busy_timeout) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw db_error("database '" + path + "' does not exist; check the path");
  try {
    // Read-write without create: a WAL database needs its -shm file, which a read-only
    // connection may not create. Nothing is ever written through this connection.
    auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
                                                 static_cast<int>(busy_timeout.count()));
    db->exec("PRAGMA query_only=ON");
    const int version = check_schema(*db, path);
    if (version == 0)
      throw db_error("database '" + path +
                     "' is empty, not a Parley database; check the path (an agent creates it "
                     "with --db PATH)");
    return db;
  } catch (const std::exception& e) {
    rethrow_open_error(path, e, "read");
  }
}

}  // namespace detail
}  // namespace parley::db

namespace parley::db {
std::unique_ptr<SQLite::Database> open_for_reading(const std::string& path,
                                                   std::chrono::milliseconds busy_timeout) {
  return detail::open_for_reading(path, busy_timeout);
}
}  // namespace parley::db
