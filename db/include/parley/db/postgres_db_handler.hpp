#pragma once
/// Recording to PostgreSQL (issue 16, one node): the same records as the SQLite handler, in
/// the same tables and columns, through libpq driven by Asio on a thread of the handler's own.
///
/// Recording calls (any thread) queue rows and return. The handler's thread sends what is
/// queued as one pipelined batch (one transaction: a group commit) while up to one earlier batch
/// is in flight, so batches grow with the load. A batch writes each table's rows with one
/// multi-row INSERT; row ids are reserved from the sequence in blocks, so rows keep their write
/// order and a batch sent again after a lost connection writes nothing twice. A batch that fails on a row is retried row by
/// row and only that row is dropped (logged, counted); a lost connection is re-established with
/// backoff and the batch sent again, so nothing queued is lost while the server is away (the
/// queue is bounded: beyond db.max_queued rows, recording calls wait, as with SQLite).
/// Reads go down the same connection after the writes queued before them (read-your-writes).
///
/// Several nodes on one database: sessions fall in shard_count shards; a node claims a shard
/// (a lease row with an epoch) before it writes for its sessions, renews its leases every
/// lease_ttl / 3, and starts every batch with a fence (parley_fence) that checks, in the same
/// transaction, that it still holds each shard it writes for at the epoch it claimed (locking
/// only its own node row; a takeover locks that row too). A node that lost a shard (paused
/// past its lease, cut off) has its late writes refused by the database, never applied, and is
/// told through on_ownership_lost. See docs/multinode.md.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <parley/db/reader.hpp>
#include <parley/db_handler.hpp>

namespace parley::db {

namespace pg {
class connection;
struct query;
}  // namespace pg

struct postgres_options {
  /// A libpq URI (postgresql://user:password@host:port/dbname?...) or key=value string
  /// (db.url, or --db postgresql://...).
  std::string url;
  std::chrono::milliseconds connect_timeout{5000};
  /// Most statements queued; beyond it, recording calls wait for the server (db.max_queued).
  std::size_t max_queued = 100000;
  /// How long close() waits, while the server takes none of the queued rows (it is away),
  /// before it gives them up (logged with their count). A server that takes rows is waited for.
  std::chrono::milliseconds close_timeout{10000};
  /// How long a node's claim on its shards lasts unless renewed (renewed every third of it;
  /// db.lease_ttl). Another node takes a dead node's sessions over after about this long.
  std::chrono::milliseconds lease_ttl{10000};
  /// Where this node serves clients (host:port), published for the other nodes.
  std::string address;
};

/// Sessions are spread over this many shards; a node owns shards, not single sessions. Fixed:
/// every node of a database must agree on it.
inline constexpr int shard_count = 256;
/// The shard of a session (a stable hash of agent name and session id).
int shard_of(std::string_view agent_name, std::string_view session_id);

/// Whether a --db / db.path value names PostgreSQL rather than a SQLite file.
bool is_postgres_url(std::string_view path);

class postgres_db_handler final : public db_handler {
 public:
  explicit postgres_db_handler(postgres_options options);
  ~postgres_db_handler() override;
  postgres_db_handler(const postgres_db_handler&) = delete;
  postgres_db_handler& operator=(const postgres_db_handler&) = delete;

  std::string_view name() const override { return "postgresql"; }
  /// Always: a reply reaches the client only once its row is committed, under the fence. So
  /// a client never sees a reply that a node which lost the session wrote too late.
  bool sync_commit() const override { return true; }

  /// Connects, creates or migrates the schema, records the agent's definition.
  /// @throws db_error naming the server (never its password), the problem and the fix: a bad
  /// URI, a server that is down or refuses us, a schema from a newer Parley.
  void open(const agent& owner) override;
  /// The same, for programs without an agent (tools, tests).
  void open(std::string agent_name);
  /// Sends everything queued (waiting as long as the server takes rows, and close_timeout for
  /// one that is away), then closes. Safe to call twice.
  void close() override;

  void session_started(const session& s) override;
  void session_closed(const session& s, std::string_view reason) override;
  void save_message(const session& s, const reply& message, bool is_user,
                    std::function<void()> committed = {}) override;
  void save_transition(const session& s, const transition& t, const event* e) override;
  void save_prediction(const session& s, std::string_view message,
                       const intent_prediction& p) override;
  void save_event(const session* s, std::string_view event, std::string_view info) override;
  void save_variables(const session& s) override;
  void save_reasoning_event(const session& s, std::string_view kind, const json& payload) override;
  void save_agent_message(const session& s, const agent_message_record& m) override;
  void save_timer(const session& s, const pending_timer& t) override;
  void delete_timer(const session& s, std::string_view key) override;

  std::vector<chat_message> chat_history(const session& s, std::optional<std::size_t> n,
                                         std::optional<wall_clock::time_point> until) override;
  std::vector<reasoning_event> reasoning_events(
      const session& s, std::optional<wall_clock::time_point> until) override;
  std::optional<session_snapshot> load_session(std::string_view agent_name,
                                               std::string_view session_id) override;
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
  void delete_session(std::string_view agent_name, std::string_view session_id) override;

  // Session management: reads see every write queued before; an import is written as one
  // batch, fenced like any other, once this node holds the new session's shard.
  std::vector<stored_session> list_sessions(std::string_view agent_name, std::string_view username,
                                            std::size_t limit, std::size_t offset) override;
  json export_session(std::string_view agent_name, std::string_view session_id) override;
  void import_session(std::string_view agent_name, const json& data,
                      std::string_view new_session_id) override;
  void fork_session(std::string_view agent_name, std::string_view session_id,
                    std::string_view new_session_id) override;

  bool owns(std::string_view session_id) const override;
  void async_claim(std::string session_id,
                   std::function<void(ownership, std::exception_ptr)> done) override;
  void on_ownership_lost(std::function<void(std::function<bool(std::string_view)>)> lost) override;
  void on_orphaned_sessions(std::function<void(std::vector<std::string>)> wake) override;
  void set_node_address(std::string address) override;
  /// This process's incarnation: a fresh id at each start, the owner named in shard leases.
  const std::string& node_id() const;

  /// Rows given up (a row the server refused; what was queued at close when the server
  /// stayed away; rows of sessions this node no longer owns). Any thread.
  std::uint64_t rows_dropped() const;

 private:
  struct impl;
  std::unique_ptr<reader> caught_up(const char* what);
  void store_import(const std::string& agent_name, const json& document, const std::string& new_id);
  postgres_options options_;
  std::string agent_name_;
  std::shared_ptr<impl> impl_;
};

}  // namespace parley::db
