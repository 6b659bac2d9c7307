#pragma once
/// An agent: states, intents, configuration, platforms and a DB handler, and the sessions it
/// runs. Define states and intents first (not thread-safe), then start() or run(); after
/// that the definition is read-only and the methods marked "any thread" may be called from
/// anywhere.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include <parley/agent_link.hpp>
#include <parley/body.hpp>
#include <parley/config.hpp>
#include <parley/db_handler.hpp>
#include <parley/errors.hpp>
#include <parley/intent.hpp>
#include <parley/platform.hpp>
#include <parley/session.hpp>
#include <parley/diagram.hpp>
#include <parley/state.hpp>
#include <parley/trace.hpp>

namespace parley {

/// A summary of a live session (for listings).
struct session_info {
  std::string id;
  std::string username;
  std::string state;
  std::size_t pending = 0;
};

class agent {
 public:
  explicit agent(std::string name);
  ~agent();
  agent(const agent&) = delete;
  agent& operator=(const agent&) = delete;

  const std::string& name() const { return name_; }

  // ---- definition (before start) ------------------------------------------------------------
  /// @throws definition_error on a duplicate name or a second initial state.
  state& new_state(std::string name, bool initial = false);
  /// @throws definition_error on a duplicate name or an intent with no training sentence.
  intent& new_intent(std::string name, std::vector<std::string> training_sentences,
                     std::string description = {});
  /// A custom entity: values with synonyms, matched tolerant of case, accents and small
  /// typos. Bind it to intent parameters with intent::parameter(name, fragment, entity).
  entity& new_entity(std::string name, std::vector<entity_value> values) {
    return entities_.emplace_back(std::move(name), std::move(values));
  }
  const std::deque<entity>& entities() const { return entities_; }
  /// Runs for a human message that no transition of the current state matches, when the
  /// state has no fallback body of its own. Default: replies "Sorry, I didn't get it".
  void set_global_fallback_body(body b);
  /// What the agent answers when a body throws. Default: "Sorry, something went wrong."
  void set_error_reply(std::string text);
  void set_intent_classifier(std::shared_ptr<intent_classifier> c);
  void use_platform(std::shared_ptr<platform> p);
  void use_db(std::shared_ptr<db_handler> db);
  /// Where each turn's trace goes (see parley/trace.hpp); none by default (no trace is
  /// built). The agent starts it in start() and stops it in stop().
  void set_trace_sink(std::shared_ptr<trace_sink> sink);
  /// Resume sessions with a known id after a restart (needs a DB handler).
  void persist_sessions(bool on);

  parley::config& config() { return config_; }
  const parley::config& config() const { return config_; }
  const std::deque<state>& states() const { return states_; }
  const std::deque<intent>& intents() const { return intents_; }
  const state* find_state(std::string_view name) const;
  const state& initial_state() const;
  const body& global_fallback() const { return global_fallback_; }
  const std::string& error_reply() const { return error_reply_; }
  db_handler* db() const { return db_.get(); }
  /// The trace sink, or null. Any thread once the agent runs.
  trace_sink* traces() const { return traces_.get(); }
  const std::vector<std::shared_ptr<platform>>& platforms() const { return platforms_; }
  bool persists_sessions() const { return persist_; }
  /// The definition as JSON: states (name, initial, transitions with dest, kind, event and
  /// condition) and intents (name, description). What diagrams are drawn from; the DB handler
  /// stores it so tools can draw an agent from its database alone.
  json definition() const;
  /// The state diagram as Graphviz DOT or Mermaid text (see parley/diagram.hpp).
  std::string diagram(diagram_format format) const;

  // ---- agent-to-agent messaging (issue 13) ------------------------------------------------
  /// Any thread. Registers the way sessions reach other agents over `protocol` ("websocket":
  /// session::send_to_agent; "a2a": session::ask_agent), replacing one set before. Platforms
  /// register theirs when they start; a bot may set its own.
  void set_agent_transport(std::string protocol, std::shared_ptr<agent_transport> t);
  /// Any thread. The transport registered for `protocol`, or null.
  std::shared_ptr<agent_transport> find_agent_transport(std::string_view protocol) const;
  /// Any thread. Every registered transport.
  std::vector<std::shared_ptr<agent_transport>> agent_transports() const;

  // ---- running ------------------------------------------------------------------------------
  /// Validates the definition, trains the intent models, opens the DB, starts the worker
  /// threads and the platforms. Returns at once. @throws definition_error, config_error,
  /// db_error, or what a platform throws.
  void start();
  /// start(), then blocks until stop() or SIGINT/SIGTERM; stops cleanly. Returns 0.
  int run();
  /// Any thread. Stops platforms, flushes the DB and ends the worker threads. Idempotent.
  void stop();
  /// Blocks until the agent has stopped (after stop(), or a signal during run()).
  void wait();
  bool running() const { return running_.load(); }
  net::io_context& io_context() { return io_; }

  // ---- sessions (any thread) -------------------------------------------------------------
  /// The session `id`, made (and started) if new: restored from the DB when sessions are
  /// persisted and it is known there, else started in the initial state. Never blocks on the
  /// DB: the restore is read off this thread (db_handler::async_load_session) and events
  /// posted meanwhile wait in the session's queue, in order, until it has started. A platform
  /// that keeps talking to the session should hold `s->attach()` while connected (see
  /// session_attachment), or the session may be evicted when idle (agent.session_idle_ttl).
  /// @throws capacity_error for a new session when agent.max_sessions are live.
  /// Several nodes on one database: asks whether this process may serve session `id`, claiming
  /// it when no live node holds it, without blocking. `done` runs (on a DB thread, or here when
  /// there is nothing to ask) with nothing when it may, else with the not_owner_error (naming
  /// the owner and its address) or db_error to answer. A platform calls it before
  /// get_or_create_session, which then does not wait on the database.
  void async_claim(const std::string& id, std::function<void(std::exception_ptr)> done);
  std::shared_ptr<session> get_or_create_session(const std::string& id, platform* p,
                                                  std::string username = {},
                                                  std::string session_name = {});
  /// The live session `id` (null if there is none, e.g. it was evicted).
  std::shared_ptr<session> find_session(std::string_view id) const;
  /// Queues `e` for session `session_id`. A session that is not live is resumed from the DB
  /// (on the agent's first platform) when sessions are persisted; otherwise, and for an empty
  /// id (to reach every session, call broadcast_event), the event is refused.
  post_result receive_event(std::string_view session_id, event e);
  /// Queues `e` for every live session (evicted ones are not woken); returns how many
  /// accepted it.
  std::size_t broadcast_event(const event& e);
  /// Closes the session (terminal) and forgets it.
  void close_session(std::string_view id, std::string reason);
  /// Closes the session and deletes all its rows (once its current event is handled).
  void delete_session(std::string_view id, std::function<void()> done = {});
  /// Deletes the session's data and starts it again in the initial state (body re-run), in
  /// place and in order with its events (session::reset); `done` gets the session once the
  /// reset and the events before it are handled.
  void reset_session(std::string_view id,
                     std::function<void(std::shared_ptr<session>)> done = {});
  /// Live sessions (in memory; evicted ones are not counted).
  std::size_t session_count() const;
  std::vector<session_info> sessions() const;

  // ---- session management: stored sessions (need a DB handler) ------------------------------
  // Any thread; they block on the DB briefly and see every row queued before the call.
  // delete_session / reset_session above also remove stored rows.
  /// Stored sessions of `username` ("" = every user), most recently active first, with their
  /// state and last activity, without history. @throws db_error without a DB handler.
  std::vector<stored_session> list_sessions(std::string_view username = {},
                                            std::size_t limit = 20, std::size_t offset = 0) const;
  /// Starts `new_id`, a copy of session `id` (state, dictionary, pending timers, history) as
  /// recorded so far; `id` is untouched. It talks on `p` (default: the platform of `id` when it
  /// is live). @throws db_error (no DB handler, unknown `id`, `new_id` taken).
  std::shared_ptr<session> fork_session(std::string_view id, const std::string& new_id,
                                        platform* p = nullptr);
  /// Every stored row of session `id` as one JSON document. @throws db_error.
  json export_session(std::string_view id) const;
  /// Stores an exported session under `new_id` ("" = its own id); with persist_sessions it
  /// resumes when that id next comes back. Returns the id. @throws db_error.
  std::string import_session(const json& data, const std::string& new_id = {});

  // ---- runtime settings read from config at start() (strand-safe after start) -------------
  double intent_threshold() const { return intent_threshold_; }
  std::size_t queue_capacity() const { return queue_capacity_; }
  std::uint32_t max_auto_moves() const { return max_auto_moves_; }
  clock::duration check_transitions_delay() const { return check_delay_; }
  /// agent.session_idle_ttl (zero: sessions are never evicted).
  clock::duration session_idle_ttl() const { return idle_ttl_; }
  std::size_t max_sessions() const { return max_sessions_; }
  /// agent.max_agent_depth: a message to another agent deeper than this is refused.
  int max_agent_depth() const { return max_agent_depth_; }
  /// agent.agent_message_ids: handled agent-message ids a session remembers.
  std::size_t agent_message_ids() const { return agent_message_ids_; }
  /// agent.double_texting: the sessions' double texting policy unless one sets its own.
  parley::double_texting double_texting() const { return double_texting_; }

 private:
  void validate() const;
  void train();
  std::shared_ptr<session> make_session(const std::string& id, platform* p, std::string username,
                                        std::string session_name);
  db_handler& require_db(const char* what) const;
  void start_restore(const std::shared_ptr<session>& s);
  // Eviction (agent.session_idle_ttl): a sweep finds sessions quiet for the TTL and asks each,
  // on its strand, whether it may go; a wake list brings back evicted persisted sessions
  // whose timers fall due.
  struct wake_entry {
    std::string id;
    platform* p = nullptr;
    std::string username;
    std::string session_name;
  };
  void arm_sweep();
  void sweep();
  void try_evict(const std::shared_ptr<session>& s);
  void claim(const std::string& id);
  void add_wake(clock::time_point due, wake_entry w);
  void arm_wake();
  void wake_due();

  std::string name_;
  parley::config config_;
  std::deque<state> states_;
  std::deque<intent> intents_;
  std::deque<entity> entities_;
  body global_fallback_;
  std::string error_reply_;
  bool error_reply_set_ = false;
  std::shared_ptr<intent_classifier> classifier_;
  std::vector<std::shared_ptr<platform>> platforms_;
  std::shared_ptr<db_handler> db_;
  std::shared_ptr<trace_sink> traces_;
  bool persist_ = false;

  double intent_threshold_ = 0.4;
  std::size_t queue_capacity_ = 1024;
  std::uint32_t max_auto_moves_ = 64;
  clock::duration check_delay_{};
  clock::duration idle_ttl_{};
  std::size_t max_sessions_ = 1'000'000;
  int max_agent_depth_ = 8;
  std::size_t agent_message_ids_ = 1024;
  parley::double_texting double_texting_ = parley::double_texting::enqueue;


  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::thread stopper_;
  std::unique_ptr<net::signal_set> signals_;
  std::mutex stop_mutex_;
  std::condition_variable stopped_cv_;
  bool stopped_ = false;

  mutable std::mutex sessions_mutex_;
  std::unordered_map<std::string, std::shared_ptr<session>> sessions_;

  // The sweep and wake timers share one strand.
  std::optional<net::strand<net::io_context::executor_type>> upkeep_;
  std::unique_ptr<net::steady_timer> sweep_timer_;
  std::unique_ptr<net::steady_timer> wake_timer_;
  std::mutex wake_mutex_;
  std::multimap<clock::time_point, wake_entry> wake_;  // guarded by wake_mutex_

  // After io_: transports (and the links they hold, with their timers) go before it.
  mutable std::mutex transports_mutex_;
  std::map<std::string, std::shared_ptr<agent_transport>, std::less<>> transports_;
};

}  // namespace parley
