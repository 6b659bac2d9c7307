#include <parley/event.hpp>

#include <parley/db_handler.hpp>

namespace parley {

std::string_view to_string(event_kind kind) {
  switch (kind) {
    case event_kind::text: return "text";
    case event_kind::json: return "json";
    case event_kind::file: return "file";
    case event_kind::timeout: return "timeout";
    case event_kind::custom: return "custom";
  }
  return "?";
}

event event::text(std::string message, bool human) {
  event e;
  e.kind_ = event_kind::text;
  e.human_ = human;
  e.text_ = std::move(message);
  return e;
}

event event::json_payload(json payload, bool human) {
  event e;
  e.kind_ = event_kind::json;
  e.human_ = human;
  if (payload.is_object()) {
    auto it = payload.find("message");
    if (it != payload.end() && it->is_string()) e.text_ = it->get<std::string>();
  }
  e.payload_ = std::move(payload);
  return e;
}

event event::file(file_data file, bool human) {
  event e;
  e.kind_ = event_kind::file;
  e.human_ = human;
  e.file_ = std::make_shared<const file_data>(std::move(file));
  return e;
}

event event::custom(std::string name, json payload) {
  event e;
  e.kind_ = event_kind::custom;
  e.name_ = std::move(name);
  e.payload_ = std::move(payload);
  return e;
}

event event::timeout(std::uint64_t generation, clock::duration after) {
  event e;
  e.kind_ = event_kind::timeout;
  e.generation_ = generation;
  e.after_ = after;
  return e;
}

event event::agent_error(std::string url, std::string reason, std::string message_id) {
  event e = custom(std::string(agent_error_event),
                   {{"url", url}, {"reason", std::move(reason)}, {"message_id", message_id}});
  e.origin_ = std::make_shared<const agent_origin>(agent_origin{std::move(url), {}, {}, false});
  return e;
}

event& event::from_agent(std::string sender, parley::lineage l, std::string protocol,
                         bool inbound) {
  origin_ = std::make_shared<const agent_origin>(
      agent_origin{std::move(sender), std::move(l), std::move(protocol), inbound});
  return *this;
}

const std::string& event::sender() const {
  static const std::string none;
  return origin_ ? origin_->sender : none;
}

const std::string& event::agent_protocol() const {
  static const std::string none;
  return origin_ ? origin_->protocol : none;
}

std::string_view event::name() const {
  switch (kind_) {
    case event_kind::text: return "receive_message_text";
    case event_kind::json: return "receive_message_json";
    case event_kind::file: return "receive_file";
    case event_kind::timeout: return "timeout";
    case event_kind::custom: return name_;
  }
  return name_;
}

void event::set_prediction(intent_prediction p) {
  prediction_ = std::make_shared<const intent_prediction>(std::move(p));
}

const std::string& event::intent_name() const {
  static const std::string empty;
  return prediction_ ? prediction_->intent_name : empty;
}

const intent_parameter* event::parameter(std::string_view name) const {
  if (!prediction_) return nullptr;
  for (const auto& p : prediction_->parameters)
    if (p.name == name) return &p;
  return nullptr;
}

std::string event::describe() const {
  auto clip = [](const std::string& s) {
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
  };
  switch (kind_) {
    case event_kind::text: return std::string(human_ ? "text '" : "agent text '") + clip(text_) + "'";
    case event_kind::json: return "json " + clip(payload_.dump());
    case event_kind::file: return "file " + (file_ ? file_->name + " (" + file_->type + ")" : "");
    case event_kind::timeout:
      return "timeout after " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(after_).count()) +
             "ms";
    case event_kind::custom: return "event " + name_;
  }
  return "event";
}

json event_to_json(const event& e) {
  json j{{"kind", to_string(e.kind())}, {"human", e.human()}};
  if (!e.sender().empty() || e.lineage()) {
    j["sender"] = e.sender();
    j["protocol"] = e.agent_protocol();
    j["inbound"] = e.inbound_agent_message();
    if (const auto* l = e.lineage()) j["lineage"] = l->to_json();
  }
  switch (e.kind()) {
    case event_kind::text: j["text"] = e.text(); break;
    case event_kind::json: j["payload"] = e.payload(); break;
    case event_kind::file:
      if (const auto* f = e.file())
        j["file"] = {{"name", f->name}, {"type", f->type}, {"base64", f->base64}};
      break;
    case event_kind::timeout:
      j["generation"] = e.generation();
      j["after_ns"] = e.timeout_after().count();
      break;
    case event_kind::custom:
      j["name"] = std::string(e.name());
      j["payload"] = e.payload();
      break;
  }
  return j;
}

namespace {
event event_from_json_kind(const json& j);
}  // namespace

event event_from_json(const json& j) {
  event e = event_from_json_kind(j);
  auto s = j.find("sender");
  if (s != j.end() && s->is_string()) {
    parley::lineage l;
    if (auto lj = j.find("lineage"); lj != j.end())
      if (auto parsed = lineage::from_json(*lj)) l = std::move(*parsed);
    e.from_agent(s->get<std::string>(), std::move(l), j.value("protocol", std::string()),
                 j.value("inbound", false));
  }
  return e;
}

namespace {
event event_from_json_kind(const json& j) {
  const auto kind = j.value("kind", std::string("custom"));
  const bool human = j.value("human", false);
  if (kind == "text") return event::text(j.value("text", std::string()), human);
  if (kind == "json") return event::json_payload(j.value("payload", json()), human);
  if (kind == "file") {
    const auto& f = j.at("file");
    return event::file({f.value("name", ""), f.value("type", ""), f.value("base64", "")}, human);
  }
  if (kind == "timeout")
    return event::timeout(j.value("generation", std::uint64_t{0}),
                          clock::duration(j.value("after_ns", std::int64_t{0})));
  return event::custom(j.value("name", std::string()), j.value("payload", json()));
}
}  // namespace

}  // namespace parley
