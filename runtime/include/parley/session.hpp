#pragma once
/// A session: one conversation. It owns a strand, a bounded FIFO event queue and a timer.
/// Everything about a session's state is touched only on its strand: bodies, conditions and
/// the methods marked "strand" run there. Methods marked "any thread" post to the strand.
///
/// Life: a session is made by agent::get_or_create_session and lives until it is closed, or
/// until it has been idle for agent.session_idle_ttl: no attachment (see attach()), nothing
/// queued, no body running and no timer due within the TTL. Then the agent evicts it from
/// memory. With persist_sessions it resumes from the database (state, dictionary, timers) on
/// its next event, and a durable timer falling due while it is evicted brings it back; without
/// persistence its next event starts a fresh conversation under the same id (its timers are
/// dropped). An event posted to an evicted session object goes to its successor.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <deque>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/cancellation_signal.hpp>

#include <parley/db_handler.hpp>
#include <parley/double_texting.hpp>
#include <parley/event.hpp>
#include <parley/reply.hpp>
#include <parley/trace.hpp>

namespace parley {

class agent;
class state;
class transition;
class platform;
class body;

/// The outcome of offering an event to a session. `error` names the problem and the fix.
struct post_result {
  bool ok = true;
  std::string error;
  explicit operator bool() const { return ok; }
  static post_result refused(std::string why) { return {false, std::move(why)}; }
};

class session;

/// A platform's hold on a session (one per connection, or the console): while any is held the
/// session is never evicted for idleness. Movable; detaches when destroyed or reset. The
/// session to talk to is `session()`, which may be a successor of the one attach() was called
/// on (same id) if that one was evicted just before. It does not own the session (the agent
/// does; a closed session may go while attached). Not thread-safe itself; any thread.
class session_attachment {
 public:
  session_attachment() = default;
  session_attachment(session_attachment&& o) noexcept = default;
  session_attachment& operator=(session_attachment&& o) noexcept {
    if (this != &o) {
      reset();
      s_ = std::move(o.s_);
    }
    return *this;
  }
  session_attachment(const session_attachment&) = delete;
  session_attachment& operator=(const session_attachment&) = delete;
  ~session_attachment() { reset(); }

  /// The attached session (null when empty, or when the session is gone).
  std::shared_ptr<parley::session> session() const { return s_.lock(); }
  explicit operator bool() const { return !s_.expired(); }
  /// Detaches now (the session's idle time starts counting).
  void reset();

 private:
  friend class parley::session;
  explicit session_attachment(const std::shared_ptr<parley::session>& s) : s_(s) {}
  std::weak_ptr<parley::session> s_;
};

class session : public std::enable_shared_from_this<session> {
  friend class session_attachment;
 public:
  /// Made by agent::get_or_create_session; not directly.
  session(parley::agent& owner, std::string id, parley::platform* platform, std::string username,
          std::string session_name);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // ---- identity (immutable; any thread) --------------------------------------------------
  const std::string& id() const { return id_; }
  const std::string& username() const { return username_; }
  const std::string& session_name() const { return session_name_; }
  parley::platform* platform() const { return platform_; }
  parley::agent& agent() const { return *agent_; }
  const strand_type& strand() const { return strand_; }

  // ---- state (strand) -------------------------------------------------------------------
  const parley::state& current_state() const { return *state_; }
  /// Any thread: the current state's name, as last seen ("" before the session starts).
  std::string_view current_state_name() const;
  /// The event being handled (the last one that triggered a transition or a fallback).
  const parley::event& event() const { return event_; }
  /// Events queued and not yet taken (any thread).
  std::size_t pending_event_count() const { return pending_.load(std::memory_order_relaxed); }
  bool is_terminal() const { return closed_.load(std::memory_order_acquire); }
  /// Why the session was closed ("" while open). Any thread.
  std::string closed_reason() const;

  // ---- private dictionary (strand); values are JSON -------------------------------------
  json get(const std::string& key, json fallback = nullptr) const;
  void set(const std::string& key, json value);
  /// Removes `key`; returns whether it was there.
  bool erase(const std::string& key);
  const json& dictionary() const { return dictionary_; }

  // ---- replies (strand) -----------------------------------------------------------------
  void reply(std::string text);
  void reply_markdown(std::string markdown);
  void reply_html(std::string html);
  void reply_options(std::vector<std::string> options);
  void reply_json(json value);
  void reply_file(file_data file);
  void reply_image(file_data image);
  void reply_location(double latitude, double longitude);
  void reply_reasoning_step(json step);
  void reply_task_list(json tasks);
  /// Sends any reply: records it (when a DB is configured) and hands it to the platform.
  void send(parley::reply r);

  // ---- chat log and reasoning events (strand; need a DB handler, else empty) ------------
  /// Records a message in the chat log without sending it anywhere.
  void save_message(const parley::reply& message, bool is_user);
  /// Chronological; the last `n` (all when n is empty), at or before `until` when given.
  /// Blocks the calling thread (an I/O thread, in a body) until the database answers: in a
  /// coroutine body prefer `co_await s.chat_history(n)`.
  std::vector<chat_message> get_chat_history(std::optional<std::size_t> n = std::nullopt,
                                             std::optional<wall_clock::time_point> until = {});
  /// The same, without blocking: read off the I/O threads (db_handler::async_chat_history),
  /// continuing on this session's strand. For coroutine bodies:
  ///   auto last = co_await s.chat_history(10);
  /// Sees every message this session recorded before the call. @throws what the DB read threw.
  net::awaitable<std::vector<chat_message>> chat_history(
      std::optional<std::size_t> n = std::nullopt,
      std::optional<wall_clock::time_point> until = {});
  void save_reasoning_event(std::string kind, json payload);
  /// Blocks like get_chat_history; `co_await reasoning_events()` does not.
  std::vector<reasoning_event> get_reasoning_events(
      std::optional<wall_clock::time_point> until = {});
  net::awaitable<std::vector<reasoning_event>> reasoning_events(
      std::optional<wall_clock::time_point> until = {});

  // ---- other agents (strand; issue 13) ----------------------------------------------------
  // Each message inherits the lineage of the event being handled (see next_lineage). One
  // deeper than agent.max_agent_depth is not sent: it is recorded as refused and the session
  // gets an `agent_error_event`. Failures later on (unreachable, refused handshake, dropped
  // connection, full queue, timeout) come as agent_error events too; answers come as non-human
  // events whose sender() is `url` (transitions: state::when_agent_message / when_agent_error).
  /// Strand. Sends `message` (a string or a JSON object) to the agent at `url` (ws:// or
  /// wss://) over BAF's WebSocket way. Returns the message's id, or "" when it was refused.
  std::string send_to_agent(const std::string& url, json message);
  /// Strand. Opens the WebSocket connection to `url` now (send_to_agent opens it otherwise).
  void create_agent_connection(const std::string& url);
  /// Strand. Sends `message` to the A2A agent at `url` (its base URL). Returns the message's
  /// id, or "" when it was refused (no A2A client registered, or the loop guard).
  std::string ask_agent(const std::string& url, json message);
  /// Strand. The lineage a message sent now would carry: a new id; caused by the event being
  /// handled (its lineage id; "" when it has none, e.g. a human's message); its correlation
  /// kept (a new one when it had none); depth + 1 (1 after a human); sent by this session.
  parley::lineage next_lineage() const;

  // ---- traces (see parley/trace.hpp) --------------------------------------------------------
  /// Strand. The root span (`invoke_agent {agent}`) of the turn being handled, from the moment
  /// an event is taken until the turn ends (its bodies, coroutine ones included, have run and
  /// no transition follows). Spans made with turn_span()->child(...) join the turn's trace.
  /// Null when the agent has no trace sink, and outside a turn.
  const span* turn_span() const { return turn_.get(); }
  /// Any thread. Ends `s` (if it has not ended) and gives it to the agent's trace sink;
  /// nothing happens without one.
  void export_span(span s) const;
  /// Whether spans may carry message text, tool arguments and results (the sink's
  /// capture_content(); false without a sink). Any thread.
  bool trace_content() const;

  // ---- events and transitions -------------------------------------------------------------
  /// Any thread. Queues `e` (FIFO); refused when the queue is full or the session is closed,
  /// and, for a user message (a human text, JSON or file event) under the `reject` double
  /// texting policy, while the previous user message is still being handled or waits.
  /// `more_of_last`: `e` is another part of the user message this caller posted just before
  /// (an A2A message with several parts): it is queued behind it and never refused or
  /// interrupting for double texting.
  post_result post(parley::event e, bool more_of_last = false);
  /// Any thread. This session's double texting policy (see parley/double_texting.hpp); nothing
  /// goes back to the agent's default (agent.double_texting). Applies to user messages posted
  /// from then on. Held in memory: a successor made after an eviction starts with the default.
  void set_double_texting(std::optional<parley::double_texting> policy);
  /// Any thread. The policy in force: this session's own, else the agent's default.
  parley::double_texting double_texting_policy() const;
  /// Strand. Takes the next queued event and evaluates the current state's transitions;
  /// with no event queued, evaluates the eventless ones.
  void manage_transition();
  /// Any thread. Asks for a manage_transition as soon as possible (e.g. a condition changed).
  void call_manage_transition();
  /// Strand. Moves along `t`: records it, runs the exit action, switches state, runs the new
  /// state's body, then follows eventless transitions (at most agent.max_auto_moves).
  void move(const transition& t);
  /// Strand. Posts `e` to this session after `delay`. Survives a restart when sessions are
  /// persisted.
  void schedule(clock::duration delay, parley::event e);
  /// Any thread. Starts the conversation again in place, after the events queued before
  /// this call: deletes its recorded rows, clears the dictionary and timers, enters the initial
  /// state and runs its body. Events queued after it belong to the fresh conversation. A
  /// coroutine body suspended at the time is cancelled at once (see close()).
  void reset();
  /// Any thread. Makes the session terminal: timers cancelled, later events refused with
  /// `reason`. Closing twice keeps the first reason. A coroutine body suspended at the time
  /// gets a terminal cancellation through the slot bound to it (net::this_coro::
  /// cancellation_state): the operation it awaits (a model call, a timer, a DB read) ends with
  /// operation_aborted or its own "cancelled" error, and that ending is not reported as a
  /// failure of the body.
  void close(std::string reason);

  // ---- runtime internals (used by agent, platforms and DB handlers) -------------------------
  /// Strand. Starts the session: runs the initial state's body (new session), or resumes in
  /// `snapshot`'s state with its dictionary and timers, without running the body. With
  /// `resume` false only the snapshot's reply numbering is taken (a session that is not
  /// persisted starts afresh, but numbers its replies on from the stored ones).
  void start(const session_snapshot* snapshot, bool resume = true);
  /// Any thread. Runs `fn` on the strand once every event queued before now is handled, no
  /// body is suspended, and every reply sent meanwhile has reached the platform (with
  /// db.sync_commit, or on PostgreSQL, a reply waits for its commit; one the database refuses
  /// counts as settled).
  void when_idle(std::function<void()> fn);
  /// Strand. The time this session's current state was entered.
  clock::time_point entered_at() const { return entered_at_; }
  /// Any thread. Last time an event was queued, a reply was sent or an attachment ended.
  wall_clock::time_point last_activity() const;

  // ---- attachment and eviction (any thread) ---------------------------------------------------
  /// Any thread. Attaches the caller (a platform's connection) to this session, which is then
  /// never evicted for idleness until the handle is released. Call it when a connection joins,
  /// drop the handle when it leaves. If this session was evicted meanwhile, the handle holds
  /// its successor (same id, made or resumed). @throws capacity_error when a successor is
  /// needed beyond agent.max_sessions.
  [[nodiscard]] session_attachment attach();
  /// Any thread. Attachments held now.
  std::size_t attachment_count() const { return attached_.load(std::memory_order_relaxed); }
  /// Any thread. Whether the agent evicted this session (its successor, if any, has its id).
  bool is_evicted() const { return evicted_.load(std::memory_order_acquire); }

  // Used by the agent to evict: strand. Whether nothing is running or due before `horizon`.
  bool idle_until(clock::time_point horizon) const;
  // Any thread, with the agent's sessions lock held: marks the session evicted if it is still
  // idle (nothing queued, nothing attached, nothing active since `quiet_since`).
  bool mark_evicted_if_idle(wall_clock::time_point quiet_since);
  // Strand, after mark_evicted_if_idle: cancels the timers; returns when the earliest of them
  // was due (none: no timer).
  std::optional<clock::time_point> release_timers();

 private:
  struct scheduled;
  using timer_type = net::basic_waitable_timer<clock, net::wait_traits<clock>, strand_type>;
  void enqueue_internal(parley::event e);
  bool claim_drain();
  bool push_locked(parley::event&& e);
  parley::event pop_locked();
  void release_queue_locked();
  void post_drain();
  void do_reset();
  void drain();
  void handle(parley::event e);
  void handle_event(parley::event e);
  void begin_turn(const parley::event& e);
  void end_turn();
  void trace_prediction(const intent_prediction& p, wall_clock::time_point started);
  void dispatch(parley::event e);
  bool wants_async_prediction(const parley::event& e) const;
  void predict_then_dispatch(parley::event e);
  const transition* find_event_transition(bool& wants_fallback);
  const transition* find_eventless_transition();
  bool conditions_hold(const transition& t);
  void predict();
  bool run_body(const parley::body& b, const char* what);
  void follow_eventless();
  void enter_state(const parley::state& s);
  void arm_timeouts(std::size_t from, bool save = true);
  void arm_poll();
  void add_timer(std::string key, clock::duration delay, parley::event e);
  void report_unhandled(const parley::event& e);
  void body_failed(const char* what, const std::string& error);
  void cancel_body();
  void cancel_body_for_reset();
  void touch();
  void detach();
  bool accept_user_message_locked(parley::event& e, bool more_of_last, bool& interrupt);
  post_result refuse_double_text(const parley::event& e);
  void take_user_message_locked(const parley::event& e);
  void interrupt_if_due();
  void end_user_turn();
  std::shared_ptr<session> successor();
  clock::time_point next_timer_due() const;
  std::string message_agent(std::string_view protocol, const std::string& url, json message);
  bool refuse_deep(std::string_view protocol, const std::string& peer, const parley::lineage& l,
                   const std::string& content);
  bool take_agent_message(const parley::event& e);
  void remember_agent_id(const std::string& id);
  void record_agent_message(std::string direction, std::string_view protocol, std::string peer,
                            const parley::lineage& l, std::string content, std::string status);
  void forget_agent_links();

  parley::agent* agent_;
  parley::platform* platform_;
  std::string id_;
  std::string username_;
  std::string session_name_;
  strand_type strand_;
  timer_type timer_;

  // Mailbox: guarded by mutex_; drained on the strand. Events [head_, size) are queued; the
  // taken prefix is dropped once it is half the vector (see pop_locked).
  mutable std::mutex mutex_;
  std::vector<parley::event> queue_;
  std::size_t head_ = 0;
  bool drain_scheduled_ = false;
  std::vector<std::function<void()>> idle_waiters_;
  std::size_t awaiting_commit_ = 0;  // replies handed to the DB, not yet delivered or dropped
  void delivery_settled();           // any thread
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> closed_{false};
  std::atomic<std::int64_t> last_activity_ms_{0};
  std::atomic<std::size_t> attached_{0};  // written under mutex_
  std::atomic<bool> evicted_{false};      // written under mutex_ (and the agent's map lock)

  std::string closed_reason_;  // guarded by mutex_

  // Double texting (double_texting.hpp). The policy: 0xff = the agent's default. The rest is
  // guarded by mutex_: user messages accepted so far (each event carries its number), those
  // queued and not yet taken, the number of the one whose turn runs (0: none), and the
  // newest that asked to interrupt (turns of older ones are cancelled at their next
  // suspension).
  std::atomic<unsigned char> double_texting_{0xff};
  std::uint64_t user_seq_ = 0;
  std::size_t user_queued_ = 0;
  std::uint64_t user_turn_ = 0;
  std::uint64_t interrupt_before_ = 0;

  // Strand-only state.
  const parley::state* state_ = nullptr;
  parley::event event_;
  json dictionary_;
  std::uint64_t generation_ = 0;  // bumped on every state entry; stale timeouts are dropped
  clock::time_point entered_at_{};
  std::uint32_t chain_ = 0;       // moves since the last event (loop guard)
  bool busy_ = false;             // a coroutine body is suspended, or a prediction awaited
  // Bound to the running coroutine body (one at a time); emitted by reset() and close().
  net::cancellation_signal body_cancel_;
  bool body_cancelled_ = false;  // the running body was cancelled: its ending is no failure
  bool body_running_ = false;    // a coroutine body (not a prediction) is suspended
  bool user_turn_open_ = false;  // strand's view of user_turn_ != 0 (no lock to test it)
  std::size_t resets_queued_ = 0;  // reset markers not yet handled; guarded by mutex_
  std::optional<intent_prediction> ready_prediction_;  // an asynchronous model's answer
  // The turn's root span while a turn runs with a trace sink set (null otherwise: a session
  // without tracing pays one pointer), and when an asynchronous prediction was asked for.
  std::unique_ptr<span> turn_;
  wall_clock::time_point predict_started_{};
  bool started_ = false;
  std::array<const parley::state*, 8> recent_{};  // states left by the last moves
  std::atomic<const parley::state*> visible_state_{nullptr};  // for listings off the strand
  std::unique_ptr<timer_type> poll_;
  std::optional<clock::time_point> after_due_;  // the armed after(d) timeout, if any
  std::uint64_t timer_seq_ = 0;
  // The last reply's sequence number (reply::seq): restored from the database when the
  // session starts, kept across a reset (a client's cursor never goes back).
  std::int64_t reply_seq_ = 0;
  std::vector<std::shared_ptr<scheduled>> scheduled_;
  // Lineage ids of the agent messages handled last (agent.agent_message_ids of them): a
  // resend is dropped. Strand.
  std::deque<std::string> handled_order_;
  std::unordered_set<std::string> handled_ids_;
};

}  // namespace parley
