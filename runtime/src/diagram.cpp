#include <parley/diagram.hpp>

#include <stdexcept>

#include <parley/agent.hpp>

namespace parley {

namespace {

// A transition's label: what it waits for, and its conditions.
std::string label_of(const json& t) {
  std::string label = t.value("kind", "") == "condition" ? "" : t.value("event", "");
  const std::string cond = t.value("condition", "");
  if (!cond.empty()) label += label.empty() ? "[" + cond + "]" : " [" + cond + "]";
  return label;
}

std::string dot_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + '"';
}

// Mermaid takes entity codes inside labels; these characters would end or break one.
std::string mermaid_text(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '#': out += "#35;"; break;
      case '"': out += "#quot;"; break;
      case ';': out += "#59;"; break;
      case ':': out += "#58;"; break;
      case '\n':
      case '\r': out += ' '; break;
      default: out += c;
    }
  }
  return out;
}

const char* dot_style(std::string_view kind) {
  if (kind == "condition") return "dashed";
  if (kind == "timeout") return "dotted";
  if (kind == "auto") return "bold";
  return "solid";
}

std::string state_label(const std::string& name, const diagram_marks& marks) {
  const auto v = marks.visits.find(name);
  return v == marks.visits.end() ? name : name + " (" + std::to_string(v->second) + ")";
}

std::string render_dot(const json& def, const diagram_marks& marks) {
  std::string out = "digraph " + dot_quote(def.value("agent", "agent")) + " {\n";
  out += "  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];\n";
  out += "  edge [fontname=\"sans-serif\", fontsize=10];\n";
  out += "  \"__start\" [shape=point, label=\"\"];\n";
  for (const auto& s : def.at("states")) {
    const std::string name = s.at("name").get<std::string>();
    out += "  " + dot_quote(name) + " [label=" + dot_quote(state_label(name, marks));
    if (name == marks.current) out += ", style=\"rounded,filled,bold\", fillcolor=\"#fde68a\"";
    out += "];\n";
    if (s.value("initial", false)) out += "  \"__start\" -> " + dot_quote(name) + ";\n";
  }
  for (const auto& s : def.at("states")) {
    const std::string src = s.at("name").get<std::string>();
    for (const auto& t : s.at("transitions")) {
      const std::string dest = t.at("dest").get<std::string>();
      const std::string kind = t.value("kind", "event");
      out += "  " + dot_quote(src) + " -> " + dot_quote(dest) + " [label=" +
             dot_quote(label_of(t)) + ", style=" + dot_style(kind) + ", class=" + dot_quote(kind);
      if (marks.taken.count({src, dest})) out += ", color=\"#2563eb\", penwidth=2";
      out += "];\n";
    }
  }
  return out + "}\n";
}

std::string render_mermaid(const json& def, const diagram_marks& marks) {
  // States get short ids (s0, s1, ...): names may hold anything; labels carry the names.
  std::map<std::string, std::string> ids;
  for (const auto& s : def.at("states"))
    ids.emplace(s.at("name").get<std::string>(), "s" + std::to_string(ids.size()));
  auto id_of = [&](const std::string& name) {
    const auto it = ids.find(name);
    if (it == ids.end())
      throw std::invalid_argument("transition to an unknown state '" + name + "'");
    return it->second;
  };
  std::string out = "stateDiagram-v2\n";
  for (const auto& s : def.at("states")) {
    const std::string name = s.at("name").get<std::string>();
    out += "  state \"" + mermaid_text(state_label(name, marks)) + "\" as " + id_of(name) + "\n";
    if (s.value("initial", false)) out += "  [*] --> " + id_of(name) + "\n";
  }
  for (const auto& s : def.at("states")) {
    const std::string src = s.at("name").get<std::string>();
    for (const auto& t : s.at("transitions")) {
      const std::string dest = t.at("dest").get<std::string>();
      std::string label = label_of(t);
      if (marks.taken.count({src, dest})) label += " (taken)";
      out += "  " + id_of(src) + " --> " + id_of(dest);
      if (!label.empty()) out += " : " + mermaid_text(label);
      out += "\n";
    }
  }
  if (!marks.current.empty() && ids.count(marks.current)) {
    out += "  classDef current fill:#fde68a,stroke:#92400e,stroke-width:2px\n";
    out += "  class " + ids[marks.current] + " current\n";
  }
  return out;
}

}  // namespace

std::optional<diagram_format> parse_diagram_format(std::string_view text) {
  if (text == "dot") return diagram_format::dot;
  if (text == "mermaid") return diagram_format::mermaid;
  return std::nullopt;
}

std::string render_diagram(const json& definition, diagram_format format,
                           const diagram_marks& marks) {
  if (!definition.is_object() || !definition.contains("states") ||
      !definition.at("states").is_array())
    throw std::invalid_argument("not an agent definition: it has no 'states' array");
  try {
    return format == diagram_format::dot ? render_dot(definition, marks)
                                         : render_mermaid(definition, marks);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("not an agent definition: ") + e.what());
  }
}

json agent::definition() const {
  json states = json::array();
  for (const auto& s : states_) {
    json transitions = json::array();
    for (const auto& t : s.transitions())
      transitions.push_back({{"dest", t.dest().name()},
                             {"kind", t.kind_name()},
                             {"event", t.describe_event()},
                             {"condition", t.describe_condition()}});
    states.push_back(
        {{"name", s.name()}, {"initial", s.initial()}, {"transitions", std::move(transitions)}});
  }
  json intents = json::array();
  for (const auto& i : intents_)
    intents.push_back({{"name", i.name()}, {"description", i.description()}});
  return {{"agent", name_}, {"states", std::move(states)}, {"intents", std::move(intents)}};
}

std::string agent::diagram(diagram_format format) const {
  return render_diagram(definition(), format);
}

}  // namespace parley
