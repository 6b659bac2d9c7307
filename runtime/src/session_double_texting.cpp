// Double texting: a user message that arrives while the session still handles the previous
// one is queued (enqueue), refused (reject) or cancels the running coroutine body (interrupt).
//
// What "still handling" means is tracked under the mailbox's mutex, where post() decides: a
// user message counts from the moment post() accepts it, through its wait in the queue, until
// its turn ends (end_turn with no body suspended). post() reads that in the same critical
// section that queues, so two messages racing in from two connections cannot both be taken
// for the first.
#include <parley/session.hpp>

#include <boost/asio/post.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>
#include <parley/state.hpp>

namespace parley {

std::string_view to_string(double_texting p) {
  switch (p) {
    case double_texting::enqueue: return "enqueue";
    case double_texting::reject: return "reject";
    case double_texting::interrupt: return "interrupt";
  }
  return "?";
}

std::optional<double_texting> parse_double_texting(std::string_view text) {
  for (auto p : {double_texting::enqueue, double_texting::reject, double_texting::interrupt})
    if (to_string(p) == text) return p;
  return std::nullopt;
}

namespace {
constexpr unsigned char agent_default = 0xff;

// What double texting is about: a person's message. Timeouts, custom events, agent messages
// and what the bot schedules for itself are never refused or interrupting.
bool is_user_message(const parley::event& e) {
  return e.human() && (e.kind() == event_kind::text || e.kind() == event_kind::json ||
                       e.kind() == event_kind::file);
}
}  // namespace

void session::set_double_texting(std::optional<parley::double_texting> policy) {
  double_texting_.store(policy ? static_cast<unsigned char>(*policy) : agent_default,
                        std::memory_order_relaxed);
}

parley::double_texting session::double_texting_policy() const {
  const unsigned char p = double_texting_.load(std::memory_order_relaxed);
  return p == agent_default ? agent_->double_texting() : static_cast<parley::double_texting>(p);
}

// Called with mutex_ held, from post(), for any event: false when `e` is a user message that
// the reject policy refuses. A further part of the last message is not counted on its own. Else numbers a user message and counts it as queued; `interrupt`
// is set when the caller must ask the strand to cancel the turn that runs.
bool session::accept_user_message_locked(parley::event& e, bool more_of_last, bool& interrupt) {
  interrupt = false;
  if (more_of_last || !is_user_message(e)) return true;
  const bool handling = user_turn_ != 0 || user_queued_ != 0;
  const auto policy = handling ? double_texting_policy() : double_texting::enqueue;
  if (policy == double_texting::reject) return false;
  e.user_seq_ = ++user_seq_;
  ++user_queued_;
  if (policy == double_texting::interrupt) {
    // Every turn of an older message is to end: the one running now (if a coroutine body of
    // it is suspended) and those queued before this one (their bodies are cancelled as they
    // start; the messages themselves are still handled, in order).
    interrupt_before_ = e.user_seq_;
    interrupt = user_turn_ != 0;
  }
  return true;
}

post_result session::refuse_double_text(const parley::event& e) {
  PARLEY_LOG(debug, "session " << session_tag(id_) << ": " << e.describe()
                               << " refused: still handling the previous message (reject)");
  if (auto* db = agent_->db())
    db->save_event(this, "double_texting",
                   "rejected " + e.describe() + ": the previous message was still being handled "
                   "(policy reject)");
  return post_result::refused(
      "the agent is still answering your last message, and this conversation takes no new one "
      "meanwhile (double texting policy: reject); wait for its reply, then send this message "
      "again");
}

// Called with mutex_ held, as an event is taken from the queue: a user message's turn starts.
void session::take_user_message_locked(const parley::event& e) {
  if (e.user_seq_ == 0) return;
  --user_queued_;
  user_turn_ = e.user_seq_;
}

// Strand: cancels the running coroutine body if its turn belongs to a user message older than
// the newest that asked to interrupt. Called when such a message arrives and whenever a
// coroutine body starts. A plain body, or an asynchronous prediction, is not cancelled.
void session::interrupt_if_due() {
  if (!body_running_ || body_cancelled_ || is_terminal()) return;
  {
    std::lock_guard lock(mutex_);
    if (user_turn_ == 0 || user_turn_ >= interrupt_before_) return;
  }
  PARLEY_LOG(debug, "session " << session_tag(id_) << ": body of state " << state_->name()
                               << " interrupted by a newer message");
  if (auto* db = agent_->db())
    db->save_event(this, "double_texting",
                   "interrupted the body of state " + state_->name() +
                       ": a newer message arrived (policy interrupt)");
  if (turn_) turn_->set("parley.interrupted", true);
  cancel_body();
}

// Strand, from end_turn once no body is suspended: the user message's turn is over.
void session::end_user_turn() {
  if (!user_turn_open_) return;
  user_turn_open_ = false;
  std::lock_guard lock(mutex_);
  user_turn_ = 0;
}

}  // namespace parley
