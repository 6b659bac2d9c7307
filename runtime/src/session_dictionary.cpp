// A session's private dictionary (JSON values, saved when sessions are persisted).
#include <parley/session.hpp>

#include <parley/agent.hpp>

namespace parley {

// ---- dictionary --------------------------------------------------------------------------

json session::get(const std::string& key, json fallback) const {
  if (!dictionary_.is_object()) return fallback;
  auto it = dictionary_.find(key);
  return it == dictionary_.end() ? fallback : *it;
}

void session::set(const std::string& key, json value) {
  dictionary_[key] = std::move(value);
  if (auto* db = agent_->db()) db->save_variables(*this);
}

bool session::erase(const std::string& key) {
  if (!dictionary_.is_object() || dictionary_.erase(key) == 0) return false;
  if (auto* db = agent_->db()) db->save_variables(*this);
  return true;
}

}  // namespace parley
