#include "pg_schema.hpp"

#include <algorithm>
#include <string>

namespace parley::db::pg {

namespace {

constexpr const char* version_1[] = {
    "CREATE SEQUENCE parley_row_id",
    R"sql(CREATE TABLE session (
  id            BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
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
  UNIQUE (agent_name, session_id)))sql",
    "CREATE INDEX session_by_activity ON session (agent_name, last_activity)",
    "CREATE INDEX session_by_user ON session (agent_name, username, last_activity)",
    R"sql(CREATE TABLE chat (
  id         BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id BIGINT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  type       TEXT NOT NULL,
  content    TEXT NOT NULL,
  is_user    INTEGER NOT NULL,
  timestamp  TEXT NOT NULL))sql",
    "CREATE INDEX chat_by_session ON chat (session_id, id)",
    "CREATE INDEX chat_by_session_user ON chat (session_id, is_user, id)",
    R"sql(CREATE TABLE transition (
  id           BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id   BIGINT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  source_state TEXT NOT NULL,
  dest_state   TEXT NOT NULL,
  event        TEXT NOT NULL DEFAULT '',
  condition    TEXT NOT NULL DEFAULT '',
  timestamp    TEXT NOT NULL))sql",
    "CREATE INDEX transition_by_session ON transition (session_id, id)",
    R"sql(CREATE TABLE intent_prediction (
  id                BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id        BIGINT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  message           TEXT NOT NULL,
  timestamp         TEXT NOT NULL,
  intent_classifier TEXT NOT NULL DEFAULT '',
  intent            TEXT,
  score             DOUBLE PRECISION NOT NULL))sql",
    "CREATE INDEX intent_prediction_by_session ON intent_prediction (session_id, id)",
    R"sql(CREATE TABLE parameter (
  id                   BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  intent_prediction_id BIGINT NOT NULL REFERENCES intent_prediction (id) ON DELETE CASCADE,
  name                 TEXT NOT NULL,
  value                TEXT,
  info                 TEXT))sql",
    "CREATE INDEX parameter_by_prediction ON parameter (intent_prediction_id)",
    R"sql(CREATE TABLE event (
  id         BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id BIGINT REFERENCES session (id) ON DELETE CASCADE,
  agent_name TEXT NOT NULL,
  event      TEXT NOT NULL,
  info       TEXT NOT NULL DEFAULT '',
  timestamp  TEXT NOT NULL))sql",
    "CREATE INDEX event_by_session ON event (session_id, id)",
    R"sql(CREATE TABLE reasoning_step (
  id                BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id        BIGINT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  chat_id           BIGINT REFERENCES chat (id) ON DELETE SET NULL,
  kind              TEXT NOT NULL,
  step_kind         TEXT NOT NULL DEFAULT '',
  step              TEXT NOT NULL DEFAULT '',
  summary           TEXT NOT NULL DEFAULT '',
  payload           TEXT NOT NULL,
  timestamp         TEXT NOT NULL,
  run_id            TEXT NOT NULL DEFAULT '',
  step_number       BIGINT,
  prompt_tokens     BIGINT,
  completion_tokens BIGINT,
  latency_ms        DOUBLE PRECISION))sql",
    "CREATE INDEX reasoning_step_by_session ON reasoning_step (session_id, id)",
    "CREATE INDEX reasoning_step_by_chat ON reasoning_step (chat_id)",
    R"sql(CREATE TABLE timer (
  id         BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id BIGINT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  due        TEXT NOT NULL,
  event      TEXT NOT NULL,
  UNIQUE (session_id, key)))sql",
    R"sql(CREATE TABLE agent_message (
  id             BIGINT PRIMARY KEY DEFAULT nextval('parley_row_id'),
  session_id     BIGINT REFERENCES session (id) ON DELETE CASCADE,
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
  timestamp      TEXT NOT NULL))sql",
    "CREATE INDEX agent_message_by_session ON agent_message (session_id, id)",
    "CREATE INDEX agent_message_by_message ON agent_message (message_id)",
    "CREATE INDEX agent_message_by_cause ON agent_message (causation_id)",
    "CREATE INDEX agent_message_by_correlation ON agent_message (correlation_id)",
    R"sql(CREATE TABLE agent_definition (
  agent_name TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  timestamp  TEXT NOT NULL))sql",
};

// Several nodes on one database: each session belongs to one of `shard_count` shards, each
// shard to at most one node at a time, named by its incarnation (a fresh id per process start)
// and an epoch that grows with every change of owner. Every batch a node writes first checks,
// in the same transaction, that it still holds each shard it writes for at the epoch it
// claimed (parley_fence, which also locks those lease rows until the commit, so a takeover
// waits for the batch and the batch never lands after it).
//
// Each reply also carries its session's reply sequence number (NULL for the user's rows),
// unique per session: a second line of defence against two owners writing one session.
constexpr const char* version_2[] = {
    "ALTER TABLE chat ADD COLUMN seq BIGINT",
    "CREATE UNIQUE INDEX chat_by_session_seq ON chat (session_id, seq) WHERE seq IS NOT NULL",
    R"sql(CREATE TABLE parley_node (
  node       TEXT PRIMARY KEY,
  agent_name TEXT NOT NULL,
  address    TEXT NOT NULL DEFAULT '',
  started    TIMESTAMPTZ NOT NULL DEFAULT now(),
  heartbeat  TIMESTAMPTZ NOT NULL DEFAULT now()))sql",
    R"sql(CREATE TABLE shard_lease (
  agent_name  TEXT NOT NULL,
  shard       INTEGER NOT NULL,
  owner       TEXT NOT NULL,
  epoch       BIGINT NOT NULL,
  lease_until TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (agent_name, shard)))sql",
    // The session's shard, so a node can find the sessions with timers that no live node owns.
    "ALTER TABLE session ADD COLUMN shard INTEGER",
    R"sql(CREATE FUNCTION parley_fence(p_agent TEXT, p_owner TEXT, p_shards INTEGER[], p_epochs BIGINT[])
RETURNS VOID LANGUAGE plpgsql AS $f$
DECLARE lost INTEGER[];
BEGIN
  PERFORM 1 FROM shard_lease WHERE agent_name = p_agent AND shard = ANY (p_shards) FOR SHARE;
  SELECT array_agg(u.s ORDER BY u.s) INTO lost FROM unnest(p_shards, p_epochs) AS u(s, e)
    LEFT JOIN shard_lease l ON l.agent_name = p_agent AND l.shard = u.s
    WHERE l.owner IS DISTINCT FROM p_owner OR l.epoch IS DISTINCT FROM u.e;
  IF lost IS NOT NULL THEN
    RAISE EXCEPTION 'this node no longer owns shards %', array_to_string(lost, ',')
      USING ERRCODE = 'PF001', HINT = 'another node took them over; their sessions live there now';
  END IF;
END $f$)sql",
};

// Session's two secondary indexes go. Measured with the greetings bot (bench/README): with
// either one present every batch cost about twice as much (4,900 against 9,300 messages a
// second), although the session updates were HOT once last_activity was unindexed. Neither
// served a query here: the inspector filters users with ILIKE and "($3 = '' OR ...)", which
// no b-tree answers, and it sorts the agent's sessions by last_activity with a top-N sort
// (bench_inspect --pg). Lookups by (agent_name, session_id) keep their unique index.
constexpr const char* version_3[] = {
    "DROP INDEX IF EXISTS session_by_activity",
    "DROP INDEX IF EXISTS session_by_user",
    "ALTER TABLE session SET (fillfactor = 80)",
};

// Foreign keys are no longer enforced, as on SQLite: every row a batch writes checked its parent
// with a query of its own (an RI trigger per row), which was a quarter of the server's time per
// message with the greetings bot (bench/README: 10,400 -> 13,600 messages a second, one node).
// The handler writes the links itself (a row's session is found in the same statement, and a
// missing one makes session_id NULL, which NOT NULL refuses); delete_session deletes a
// session's rows by hand, in one statement.
//
// The chat index for "a session's user messages" keeps only those rows (the replies, more than
// half of the chat, no longer pay for an entry); its queries say "is_user <> 0".
constexpr const char* version_4[] = {
    "ALTER TABLE chat DROP CONSTRAINT IF EXISTS chat_session_id_fkey",
    "ALTER TABLE transition DROP CONSTRAINT IF EXISTS transition_session_id_fkey",
    "ALTER TABLE intent_prediction DROP CONSTRAINT IF EXISTS intent_prediction_session_id_fkey",
    "ALTER TABLE parameter DROP CONSTRAINT IF EXISTS parameter_intent_prediction_id_fkey",
    "ALTER TABLE event DROP CONSTRAINT IF EXISTS event_session_id_fkey",
    "ALTER TABLE reasoning_step DROP CONSTRAINT IF EXISTS reasoning_step_session_id_fkey",
    "ALTER TABLE reasoning_step DROP CONSTRAINT IF EXISTS reasoning_step_chat_id_fkey",
    "ALTER TABLE timer DROP CONSTRAINT IF EXISTS timer_session_id_fkey",
    "ALTER TABLE agent_message DROP CONSTRAINT IF EXISTS agent_message_session_id_fkey",
    "DROP INDEX IF EXISTS chat_by_session_user",
    "CREATE INDEX chat_by_session_user ON chat (session_id, id) WHERE is_user <> 0",
};

// The fence locks one row per batch, the node's own, instead of one lease row per shard the
// batch writes for, and in the common case reads nothing else. With the greetings bot a batch
// wrote for ~80 shards, and each lease row's lock was a tuple change and a WAL record.
//
// The protocol:
// - A node's parley_node row has a generation, bumped by every claim that takes a lease the
//   node held (another node taking a lapsed one, or the node claiming its own anew), in the
//   claim's transaction, after locking the lease rows and then that node row FOR UPDATE.
// - A batch's fence takes FOR KEY SHARE on its node's row (so a claim taking its shards waits
//   for the batch to commit, and the node's next batch waits for the claim) and compares the
//   generation with the one the node last saw together with all its leases (its renewal reads
//   both in one transaction). Equal: none of its leases changed hands or epoch since, and the
//   batch goes. Different: each shard the batch writes for is checked against its lease row
//   (read afresh: a volatile function's statements each take a new snapshot).
// - Heartbeats update non-key columns of the node row and do not conflict with the fence.
// - A node's row gone (it stopped) refuses all of its batches.
// - A claim taking a lapsed lease ends the old owner's connections (they are named
//   "parley/<node>"): a node frozen mid-batch holds its node row in an open transaction, and
//   nothing else would end it (the server waits for the rest of the batch; idle-in-transaction
//   timeouts apply only between batches).
constexpr const char* version_5[] = {
    "ALTER TABLE parley_node ADD COLUMN generation BIGINT NOT NULL DEFAULT 0",
    "DROP FUNCTION IF EXISTS parley_fence(TEXT, TEXT, INTEGER[], BIGINT[])",
    // The shards and epochs come as array literals, parsed only when checked (parsing ~80 of
    // each was most of a fast fence's time).
    R"sql(CREATE FUNCTION parley_fence(p_agent TEXT, p_owner TEXT, p_shards TEXT, p_epochs TEXT, p_generation BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $f$
DECLARE lost INTEGER[]; g BIGINT;
BEGIN
  SELECT generation INTO g FROM parley_node WHERE node = p_owner FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'this node (%) is no longer registered in parley_node', p_owner
      USING ERRCODE = 'PF001', HINT = 'it stopped or was removed; its sessions live on other nodes now';
  END IF;
  IF g = p_generation THEN
    RETURN;
  END IF;
  SELECT array_agg(u.s ORDER BY u.s) INTO lost FROM unnest(p_shards::INTEGER[], p_epochs::BIGINT[]) AS u(s, e)
    LEFT JOIN shard_lease l ON l.agent_name = p_agent AND l.shard = u.s
    WHERE l.owner IS DISTINCT FROM p_owner OR l.epoch IS DISTINCT FROM u.e;
  IF lost IS NOT NULL THEN
    RAISE EXCEPTION 'this node no longer owns shards %', array_to_string(lost, ',')
      USING ERRCODE = 'PF001', HINT = 'another node took them over; their sessions live there now';
  END IF;
END $f$)sql",
    // Claims each shard that is free, lapsed, or p_owner's already (a new epoch), and says who
    // owns the others: one row per shard asked for, r_epoch NULL when not claimed.
    R"sql(CREATE FUNCTION parley_claim(p_agent TEXT, p_owner TEXT, p_shards INTEGER[], p_ttl_ms BIGINT)
RETURNS TABLE (r_shard INTEGER, r_epoch BIGINT, r_owner TEXT, r_address TEXT) LANGUAGE plpgsql AS $f$
DECLARE taken TEXT[];  -- the nodes whose leases this claim takes: lapsed ones, and p_owner's own
BEGIN
  PERFORM 1 FROM shard_lease l WHERE l.agent_name = p_agent AND l.shard = ANY (p_shards)
    ORDER BY l.shard FOR UPDATE;
  SELECT array_agg(DISTINCT l.owner) INTO taken FROM shard_lease l
    WHERE l.agent_name = p_agent AND l.shard = ANY (p_shards) AND (l.lease_until < now() OR l.owner = p_owner);
  -- A lapsed owner must not act any more. Its connections (named "parley/<node>") are ended:
  -- one frozen mid-batch holds its node row, and the server would wait for the rest without end.
  BEGIN
    PERFORM pg_terminate_backend(a.pid) FROM pg_stat_activity a
      WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
        AND a.application_name IN (SELECT 'parley/' || o FROM unnest(taken) AS o WHERE o <> p_owner);
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;  -- nodes under different roles: the claim waits for the frozen node instead
  END;
  PERFORM 1 FROM parley_node n WHERE n.node = ANY (taken) ORDER BY n.node FOR UPDATE;
  UPDATE parley_node n SET generation = n.generation + 1 WHERE n.node = ANY (taken);
  RETURN QUERY
  WITH want AS (SELECT DISTINCT unnest(p_shards) AS shard),
  c AS (INSERT INTO shard_lease AS l (agent_name, shard, owner, epoch, lease_until)
    SELECT p_agent, w.shard, p_owner, 1, now() + p_ttl_ms * interval '1 millisecond' FROM want w
    ON CONFLICT (agent_name, shard) DO UPDATE SET owner = excluded.owner, epoch = l.epoch + 1,
      lease_until = excluded.lease_until WHERE l.lease_until < now() OR l.owner = excluded.owner
    RETURNING l.shard, l.epoch)
  SELECT w.shard, c.epoch, l.owner, n.address FROM want w LEFT JOIN c ON c.shard = w.shard
    LEFT JOIN shard_lease l ON l.agent_name = p_agent AND l.shard = w.shard
    LEFT JOIN parley_node n ON n.node = l.owner;
END $f$)sql",
};

// Row ids in blocks (id_block); see pg_schema.hpp.
constexpr const char* version_5_ids[] = {
    "ALTER SEQUENCE parley_row_id INCREMENT BY 4096",
};
static_assert(id_block == 4096);

// Appends the steps of `version`, each run only when the stored version is below it (read
// under the migration lock: a node that lost the race skips them).
template <std::size_t N>
void add_steps(std::vector<query>& out, int version, const char* const (&steps)[N]) {
  for (const char* sql : steps)
    out.push_back({"DO $do$ BEGIN IF (SELECT coalesce(max(version), 0) FROM parley_schema) < " +
                       std::to_string(version) + " THEN EXECUTE $q$" + sql + "$q$; END IF; END $do$",
                   {}});
}

}  // namespace

query reserve_ids_query(std::size_t n) {
  const auto blocks = (static_cast<std::int64_t>(n) + id_block - 1) / id_block;
  return {"SELECT nextval('parley_row_id') FROM generate_series(1, $1::int)", {std::to_string(std::max<std::int64_t>(blocks, 1))}};
}

std::vector<std::int64_t> reserved_ids(const result& r) {
  std::vector<std::int64_t> starts;
  for (int i = 0; i < r.rows(); ++i) starts.push_back(r.integer(i, 0));
  std::sort(starts.begin(), starts.end());
  std::vector<std::int64_t> out;
  out.reserve(starts.size() * id_block);
  for (auto v : starts)
    for (std::int64_t k = 0; k < id_block; ++k) out.push_back(v + k);
  return out;
}

std::vector<query> version_queries() {
  return {{"CREATE TABLE IF NOT EXISTS parley_schema (version INTEGER NOT NULL)", {}},
          {"SELECT coalesce(max(version), 0) FROM parley_schema", {}}};
}

std::vector<query> migration(int from) {
  std::vector<query> out;
  // Nodes starting together: one migrates, the others wait here and then find nothing to do.
  out.push_back({"SELECT pg_advisory_xact_lock(7305402)", {}});
  out.push_back({"CREATE TABLE IF NOT EXISTS parley_schema (version INTEGER NOT NULL)", {}});
  if (from < 1) add_steps(out, 1, version_1);
  if (from < 2) add_steps(out, 2, version_2);
  if (from < 3) add_steps(out, 3, version_3);
  if (from < 4) add_steps(out, 4, version_4);
  if (from < 5) add_steps(out, 5, version_5);
  if (from < 5) add_steps(out, 5, version_5_ids);
  out.push_back({"INSERT INTO parley_schema (version) SELECT $1::int WHERE (SELECT coalesce(max(version), 0) "
                 "FROM parley_schema) < $1::int",
                 {std::to_string(schema_version)}});
  return out;
}

}  // namespace parley::db::pg
