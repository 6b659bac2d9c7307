// The chat log and reasoning events: what a session records and reads back.
#include <parley/session.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley {

// ---- chat log and reasoning ------------------------------------------------------------------

void session::save_message(const parley::reply& message, bool is_user) {
  if (auto* db = agent_->db()) db->save_message(*this, message, is_user);
}

std::vector<chat_message> session::get_chat_history(std::optional<std::size_t> n,
                                                    std::optional<wall_clock::time_point> until) {
  if (auto* db = agent_->db()) return db->chat_history(*this, n, until);
  PARLEY_LOG(warn, "session " << id_ << ": get_chat_history needs a DB handler (--db PATH)");
  return {};
}

void session::save_reasoning_event(std::string kind, json payload) {
  if (auto* db = agent_->db()) db->save_reasoning_event(*this, kind, payload);
}

std::vector<reasoning_event> session::get_reasoning_events(
    std::optional<wall_clock::time_point> until) {
  if (auto* db = agent_->db()) return db->reasoning_events(*this, until);
  return {};
}

}  // namespace parley
