// The specialist: a small agent that answers questions about the shop, to people on its chat
// page and to other agents, over BAF's WebSocket way and over A2A (its agent card is at
// /.well-known/agent-card.json on the same port). The front desk (front_desk.cpp) asks it.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <utility>

#include <parley/parley.hpp>

namespace {

std::string answer(std::string question) {
  std::transform(question.begin(), question.end(), question.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::array<std::pair<const char*, const char*>, 4> facts{{
      {"hour", "We are open 9:00 to 17:00, Monday to Friday."},
      {"open", "We are open 9:00 to 17:00, Monday to Friday."},
      {"price", "Repairs start at 40 euros; a quote is free."},
      {"where", "We are at 12 Harbour Street, next to the ferry."},
  }};
  for (const auto& [key, fact] : facts)
    if (question.find(key) != std::string::npos) return fact;
  return "I don't know that one; I know our opening hours, prices and address.";
}

void define(parley::agent& agent) {
  auto& ready = agent.new_state("ready", /*initial=*/true);
  auto& answering = agent.new_state("answering");
  // People and agents alike: every text gets an answer, sent back the way it came (an agent's
  // reply carries the question's lineage, one hop deeper).
  ready.when_event(parley::event_kind::text).go_to(answering);
  answering.set_body([](parley::session& s) { s.reply(answer(s.event().text())); });
  answering.go_to(ready);
}

}  // namespace

int main(int argc, char** argv) { return parley::run("specialist", argc, argv, define); }
