#pragma once
/// The interface a database plugs into (SQLite in db/, PostgreSQL later). Nothing in the
/// runtime assumes a particular database.
///
/// Recording methods are called on session strands and must not block on disk: queue the
/// rows and write them elsewhere. A session must read its own writes: a read after a record
/// call sees it. Reading methods may block briefly.
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <parley/errors.hpp>
#include <parley/event.hpp>
#include <parley/net.hpp>
#include <parley/reply.hpp>

namespace parley {

class agent;
class session;
class transition;

struct chat_message {
  std::int64_t id = 0;
  std::string type;  ///< reply_kind name ("text", "markdown", ...)
  std::string content;
  bool is_user = false;
  wall_clock::time_point timestamp;
  /// The reply's sequence number in its session (reply::seq); 0 for the user's rows and for
  /// rows stored before replies were numbered.
  std::int64_t seq = 0;
};

struct reasoning_event {
  std::int64_t id = 0;
  std::string kind;  ///< "reasoning_step" | "task_list_update"
  std::string step_kind;
  std::string step;
  std::string summary;
  json payload;
  wall_clock::time_point timestamp;
  std::optional<std::int64_t> chat_id;  ///< the reply that closed the turn
  std::string run_id;                   ///< the reasoning run ("" for rows of no run)
  std::optional<std::int64_t> step_number;
  std::optional<std::int64_t> prompt_tokens;      ///< of the model call this step made
  std::optional<std::int64_t> completion_tokens;
  std::optional<double> latency_ms;
};

/// A pending `after(d)` or `schedule` timer of a persisted session.
struct pending_timer {
  std::string key;  ///< unique within the session
  wall_clock::time_point due;
  json event;  ///< the event, serialised (see event_to_json)
};

/// What a persisted session resumes from.
struct session_snapshot {
  std::string session_id;
  std::string username;
  std::string session_name;
  std::string platform;
  std::string state;
  json variables = json::object();
  std::string closed_reason;
  std::vector<pending_timer> timers;
  /// Lineage ids of the agent messages it handled last (oldest first), so a resend after a
  /// restart is still dropped as a duplicate. Handlers that do not keep them leave it empty.
  std::vector<std::string> handled_agent_ids;
  /// The highest reply sequence number stored for the session (0: none), whether or not it
  /// was closed: its next reply is numbered one more, on whichever process resumes it.
  std::int64_t last_reply_seq = 0;
};

/// A stored session, for listings (no history).
struct stored_session {
  std::string session_id;
  std::string username;
  std::string session_name;
  std::string platform;
  std::string state;
  std::string closed_reason;
  wall_clock::time_point created;
  wall_clock::time_point last_activity;
};

/// Serialisation of events for durable timers and exports.
json event_to_json(const event& e);
event event_from_json(const json& j);

class db_handler {
 public:
  virtual ~db_handler() = default;
  virtual std::string_view name() const = 0;

  /// Opens (creating or migrating the schema). @throws db_error naming the path and the fix.
  virtual void open(const agent& owner) = 0;
  /// Flushes every queued row and closes. Safe to call twice.
  virtual void close() = 0;
  /// When true, a reply reaches the platform only after the rows it completes are committed.
  virtual bool sync_commit() const { return false; }

  // ---- recording (session strands; must not block on disk) ----
  virtual void session_started(const session& s) = 0;
  virtual void session_closed(const session& s, std::string_view reason) = 0;
  /// `committed`, when given, runs (on a DB thread) once the row is durable.
  virtual void save_message(const session& s, const reply& message, bool is_user,
                            std::function<void()> committed = {}) = 0;
  virtual void save_transition(const session& s, const transition& t, const event* e) = 0;
  virtual void save_prediction(const session& s, std::string_view message,
                               const intent_prediction& p) = 0;
  /// Unhandled events, errors, closes. `s` is null for broadcasts.
  virtual void save_event(const session* s, std::string_view event, std::string_view info) = 0;
  virtual void save_variables(const session& s) = 0;
  /// A reasoning step (`kind` "reasoning_step") or task list snapshot ("task_list_update").
  /// The columns come from the payload's fields: "kind" (or "step_kind"), "step", "summary",
  /// and, when present, "run_id", "step_number", "prompt_tokens", "completion_tokens",
  /// "latency_ms". The whole payload is stored too.
  virtual void save_reasoning_event(const session& s, std::string_view kind,
                                    const json& payload) = 0;
  /// An agent-to-agent message, in or out, with its lineage (issue 13). Default: not recorded.
  virtual void save_agent_message(const session& /*s*/, const agent_message_record& /*m*/) {}
  virtual void save_timer(const session& s, const pending_timer& t) = 0;
  virtual void delete_timer(const session& s, std::string_view key) = 0;

  // ---- reading ----
  virtual std::vector<chat_message> chat_history(
      const session& s, std::optional<std::size_t> n,
      std::optional<wall_clock::time_point> until) = 0;
  virtual std::vector<reasoning_event> reasoning_events(
      const session& s, std::optional<wall_clock::time_point> until) = 0;
  /// The persisted session `session_id` of `agent_name`, if any.
  virtual std::optional<session_snapshot> load_session(std::string_view agent_name,
                                                       std::string_view session_id) = 0;
  // ---- reading off the caller's thread (issue 12 §4) ----
  // Session strands and I/O threads call these instead of the blocking reads above. The
  // handler does the read elsewhere (SQLite: a pool of reader threads with their own
  // connections) and calls `done` exactly once, with the result or the exception, on a thread
  // of its own or inside the call: post to your strand from `done`. Each sees every row the
  // caller recorded for that session before the call (read-your-writes). The defaults run the
  // blocking read inside the call.
  template <class T>
  using read_callback = std::function<void(T result, std::exception_ptr error)>;
  /// load_session, off the caller's thread.
  virtual void async_load_session(std::string agent_name, std::string session_id,
                                  read_callback<std::optional<session_snapshot>> done);
  /// chat_history, off the caller's thread.
  virtual void async_chat_history(const session& s, std::optional<std::size_t> n,
                                  std::optional<wall_clock::time_point> until,
                                  read_callback<std::vector<chat_message>> done);
  /// One page of the chat log, for replay: chronological messages with id > `after_id`, at most
  /// `limit` of them, at or before `until` when given. An empty page means the end.
  virtual void async_chat_page(const session& s, std::int64_t after_id, std::size_t limit,
                               std::optional<wall_clock::time_point> until,
                               read_callback<std::vector<chat_message>> done);
  /// The replies to resend to a client that has seen up to `after_seq` (WebSocket ?since=N):
  /// the session's stored replies with seq > `after_seq`, in seq order, at most `limit` (0:
  /// all). An empty page, or one shorter than `limit`, means the end. The default reads the
  /// whole chat log (chat_history) and keeps those.
  virtual void async_replies_since(const session& s, std::int64_t after_seq, std::size_t limit,
                                   read_callback<std::vector<chat_message>> done);
  /// reasoning_events, off the caller's thread.
  virtual void async_reasoning_events(const session& s,
                                      std::optional<wall_clock::time_point> until,
                                      read_callback<std::vector<reasoning_event>> done);

  /// Deletes every row of the session.
  virtual void delete_session(std::string_view agent_name, std::string_view session_id) = 0;

  // ---- several nodes on one database (issue 16; any thread) ----
  // A handler shared by several processes gives each session one owner at a time. A single-node
  // handler (SQLite) owns every session: these defaults.
  /// Who owns a session, as async_claim found it.
  struct ownership {
    bool owned = true;    ///< this process may act for the session now
    std::string owner;    ///< the owning node's id, when it is another node
    std::string address;  ///< where that node serves (host:port; "" when it published none)
  };
  /// Whether this process owns `session_id` now (no I/O: what its leases say).
  virtual bool owns(std::string_view /*session_id*/) const { return true; }
  /// Claims `session_id` for this process unless another live node owns it; `done` (on a DB
  /// thread) says which. Call before acting for a session that is not live here.
  virtual void async_claim(std::string /*session_id*/,
                           std::function<void(ownership, std::exception_ptr)> done) {
    done({}, nullptr);
  }
  /// `lost` runs (on a DB thread) when this process stops owning some sessions (another node
  /// took them over, or its leases lapsed): it gets a predicate naming them. Their rows are
  /// refused from then on; the agent should drop them from memory without recording.
  virtual void on_ownership_lost(std::function<void(std::function<bool(std::string_view)>)> /*lost*/) {}
  /// `wake` runs (on a DB thread) with sessions that have pending timers and no live owner
  /// (their node died): the agent brings them to life here (claiming them) so their timers
  /// fire, late but once. Checked every lease_ttl / 3.
  virtual void on_orphaned_sessions(std::function<void(std::vector<std::string>)> /*wake*/) {}
  /// Where this process serves clients (host:port), published for the other nodes so they
  /// can relay a session's clients here; a platform calls it once it knows its port. Any thread.
  virtual void set_node_address(std::string /*address*/) {}

  // ---- session management (any thread; may block; see every write queued before) ----
  // Optional for handlers: the defaults throw db_error.
  /// Sessions of `username` ("" = every user), most recently active first, without history.
  virtual std::vector<stored_session> list_sessions(std::string_view /*agent_name*/,
                                                    std::string_view /*username*/,
                                                    std::size_t /*limit*/,
                                                    std::size_t /*offset*/) {
    throw db_error(std::string(name()) + " DB handler cannot list sessions");
  }
  /// Every row of the session as one JSON document (import_session reads it back).
  /// @throws db_error for an unknown session.
  virtual json export_session(std::string_view /*agent_name*/, std::string_view /*session_id*/) {
    throw db_error(std::string(name()) + " DB handler cannot export sessions");
  }
  /// Stores an exported session under `new_session_id` ("" = its exported id).
  /// @throws db_error when the document is not an export or the id is taken.
  virtual void import_session(std::string_view /*agent_name*/, const json& /*data*/,
                              std::string_view /*new_session_id*/) {
    throw db_error(std::string(name()) + " DB handler cannot import sessions");
  }
  /// Copies state, dictionary, pending timers and history to `new_session_id`.
  /// @throws db_error for an unknown session or a taken id.
  virtual void fork_session(std::string_view /*agent_name*/, std::string_view /*session_id*/,
                            std::string_view /*new_session_id*/) {
    throw db_error(std::string(name()) + " DB handler cannot fork sessions");
  }
};

}  // namespace parley
