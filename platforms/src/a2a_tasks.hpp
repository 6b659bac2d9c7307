#pragma once
// A2A tasks over Parley sessions, without sockets. contextId = session id; each incoming
// message is a task; a task's turn posts the message's events to the session and ends when the
// session is idle again (session::when_idle: every event queued before is handled and no body
// is suspended). Replies the session sends during the turn become the task's artifacts, one
// per reply. A turn that ends in one of platforms.a2a.input_required_states leaves the task
// INPUT_REQUIRED (the next message may carry its taskId); any other ends it COMPLETED.
//
// Turns of one context run one after another (the next message's events are posted only once
// the previous turn ended), so every reply belongs to exactly one task. Replies sent while no
// turn runs (a later timeout's) are in the chat log only.
//
// Tasks live in memory, at most platforms.a2a.max_tasks: past it the task that ended first is
// forgotten; when none has ended, a new task is refused. Thread-safe: one mutex; listeners are
// called under it (they must only post).
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <parley/platforms/websocket_platform.hpp>
#include <parley/session.hpp>

#include "a2a_model.hpp"

namespace parley::platforms::detail::a2a {

/// Gets each StreamResponse of a task ({"task"}, {"statusUpdate"}, {"artifactUpdate"}), in
/// order; `final_task` is the task's snapshot on the last one (terminal or interrupted), else
/// null. Called under the store's lock: post, never call back into the store.
using task_listener = std::function<void(const json& stream_response, const json* final_task)>;

class task_store : public std::enable_shared_from_this<task_store> {
 public:
  task_store(parley::agent& owner, parley::platform* plat, a2a_options opts);
  ~task_store();

  /// Starts a task for `in` (or continues the interrupted task it names). `listener`, when
  /// given, is subscribed before the turn starts and gets the task first. Returns the task as
  /// it stands. @throws rpc_error (unknown or finished task, context mismatch, full store).
  json send(incoming_message in, json message, task_listener listener = {},
            std::uint64_t* listener_id = nullptr);
  /// The task with at most `history_length` messages of history. @throws rpc_error.
  json get(const std::string& id, std::optional<std::size_t> history_length = {}) const;
  /// Cancels a task that has not ended (idempotent on a canceled one). @throws rpc_error.
  json cancel(const std::string& id);
  /// ListTasks params -> {tasks, nextPageToken, pageSize, totalSize}. @throws rpc_error.
  json list(const json& params) const;
  /// Subscribes to a task that has not ended: it gets the task first. Returns the listener's
  /// id; for an interrupted task the first event is also the last. @throws rpc_error.
  std::uint64_t subscribe(const std::string& id, task_listener listener);
  void unsubscribe(const std::string& task_id, std::uint64_t listener_id);

  /// A reply of session `s` (platform::deliver): an artifact of its running task, if any.
  /// Any thread.
  void on_reply(parley::session& s, const reply& r);

  const a2a_options& options() const { return opts_; }
  std::size_t size() const;

 private:
  struct task;
  struct job;
  struct context;
  json snapshot(const task& t, std::optional<std::size_t> history_length, bool artifacts) const;
  void emit(task& t, const json& event, bool last);
  void finish(task& t, task_state s, std::string message = {});
  task& make_task(const std::string& context_id);
  void start_turn(const std::string& context_id);
  void run_turn(const std::string& context_id, job& j);  // once the session is claimed
  void end_turn_when_done(const std::string& context_id, const std::string& task_id,
                          std::weak_ptr<parley::session> s);
  void end_turn(const std::string& context_id, const std::string& task_id, parley::session& s);
  void fail_turn(const std::string& context_id, const std::string& task_id, std::string why);
  void drop_context_if_idle(const std::string& context_id);

  parley::agent& agent_;
  parley::platform* plat_;
  a2a_options opts_;
  std::unordered_set<std::string> input_states_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<task>> tasks_;
  std::unordered_map<std::string, std::unique_ptr<context>> contexts_;
  std::deque<std::string> ended_;  // ids of ended tasks, oldest first (eviction order)
  std::uint64_t seq_ = 0;          // creation order of tasks, and listener ids
  std::atomic<std::size_t> running_{0};  // contexts with a turn running (on_reply's fast path)
};

}  // namespace parley::platforms::detail::a2a
