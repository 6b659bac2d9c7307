#pragma once
/// State diagrams of an agent (issue 15 §2): its states and transitions, with the kind of each
/// (intent, condition, timeout, file, event, agent, auto), as Graphviz DOT or Mermaid text. Made from
/// the agent's definition as JSON (agent::definition(), which the DB handler also stores), so
/// `parley-inspect DB diagram` draws the same picture from a database file alone.
///
///   std::cout << bot.diagram(parley::diagram_format::mermaid);
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <parley/net.hpp>

namespace parley {

enum class diagram_format { dot, mermaid };
/// "dot" or "mermaid"; nullopt otherwise.
std::optional<diagram_format> parse_diagram_format(std::string_view text);

/// What to mark on a diagram: how often each state was entered, the transitions a session
/// took, and where it is now. All optional.
struct diagram_marks {
  std::map<std::string, std::int64_t> visits;                 ///< state -> entries
  std::set<std::pair<std::string, std::string>> taken;        ///< (source, dest) taken
  std::string current;                                        ///< the session's current state
};

/// The diagram of a definition (the shape agent::definition() returns).
/// @throws std::invalid_argument when `definition` is not such a document.
std::string render_diagram(const json& definition, diagram_format format,
                           const diagram_marks& marks = {});

}  // namespace parley
