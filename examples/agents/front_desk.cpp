// The front desk: greets people, hands each question to the specialist agent and relays its
// answer. It reaches the specialist over BAF's WebSocket way (front_desk.via=websocket, the
// default) or over A2A (front_desk.via=a2a); either way every message carries its lineage, so
// `parley-inspect front.db chain ID` shows the question's path through both agents.
#include <string>

#include <parley/parley.hpp>

namespace {

void define(parley::agent& agent) {
  auto& cfg = agent.config();
  cfg.declare("front_desk.specialist", parley::config_type::string, "ws://127.0.0.1:8766",
              "the specialist agent: ws://HOST:PORT for BAF's WebSocket way, http://HOST:PORT for A2A");
  cfg.declare("front_desk.via", parley::config_type::string, "websocket",
              "how to reach the specialist: websocket or a2a");
  const std::string url = cfg.get_string("front_desk.specialist");
  const std::string via = cfg.get_string("front_desk.via");
  if (via != "websocket" && via != "a2a")
    throw parley::config_error("front_desk.via must be websocket or a2a, got '" + via + "'");

  auto& greet = agent.new_state("greet", /*initial=*/true);
  auto& waiting = agent.new_state("waiting");
  auto& asking = agent.new_state("asking");
  auto& relay = agent.new_state("relay");
  auto& failed = agent.new_state("failed");

  greet.set_body([](parley::session& s) {
    s.reply("Hello, this is the front desk. Ask me anything about the shop and I will ask our "
            "specialist.");
  });
  greet.go_to(waiting);
  waiting.when_event(parley::event_kind::text)
      .when_condition([](parley::session& s) { return s.event().human(); }, "from a person")
      .go_to(asking);

  asking.set_body([url, via](parley::session& s) {
    s.reply("Let me ask our specialist...");
    if (via == "a2a")
      s.ask_agent(url, s.event().text());
    else
      s.send_to_agent(url, s.event().text());
  });
  asking.when_agent_message().go_to(relay);
  asking.when_agent_error().go_to(failed);
  asking.after(std::chrono::seconds(15)).go_to(failed);

  relay.set_body([](parley::session& s) { s.reply("Our specialist says: " + s.event().text()); });
  relay.go_to(waiting);

  failed.set_body([](parley::session& s) {
    const auto& p = s.event().payload();
    const std::string why = p.is_object() && p.contains("reason") && p["reason"].is_string()
                                ? p["reason"].get<std::string>()
                                : std::string("no answer in time");
    s.reply("Sorry, I could not reach our specialist (" + why + "). Please try again later.");
  });
  failed.go_to(waiting);
}

}  // namespace

int main(int argc, char** argv) { return parley::run("front_desk", argc, argv, define); }
