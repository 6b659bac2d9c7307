#include "a2a_model.hpp"

#include <array>
#include <cstdio>
#include <ctime>

#include "ws_http.hpp"
#include "ws_protocol.hpp"

namespace parley::platforms::detail::a2a {

namespace {

std::string_view reason(error_code c) {
  switch (c) {
    case error_code::task_not_found: return "TASK_NOT_FOUND";
    case error_code::task_not_cancelable: return "TASK_NOT_CANCELABLE";
    case error_code::push_notification_not_supported: return "PUSH_NOTIFICATION_NOT_SUPPORTED";
    case error_code::unsupported_operation: return "UNSUPPORTED_OPERATION";
    case error_code::content_type_not_supported: return "CONTENT_TYPE_NOT_SUPPORTED";
    case error_code::invalid_agent_response: return "INVALID_AGENT_RESPONSE";
    case error_code::extended_card_not_configured: return "EXTENDED_AGENT_CARD_NOT_CONFIGURED";
    case error_code::version_not_supported: return "VERSION_NOT_SUPPORTED";
    default: return {};
  }
}

constexpr std::array<std::pair<task_state, std::string_view>, 8> state_names{{
    {task_state::submitted, "TASK_STATE_SUBMITTED"},
    {task_state::working, "TASK_STATE_WORKING"},
    {task_state::input_required, "TASK_STATE_INPUT_REQUIRED"},
    {task_state::completed, "TASK_STATE_COMPLETED"},
    {task_state::failed, "TASK_STATE_FAILED"},
    {task_state::canceled, "TASK_STATE_CANCELED"},
    {task_state::rejected, "TASK_STATE_REJECTED"},
    {task_state::auth_required, "TASK_STATE_AUTH_REQUIRED"},
}};

rpc_error bad(std::string message) { return {error_code::invalid_params, std::move(message)}; }

const json* field(const json& o, const char* name) {
  auto it = o.find(name);
  return it == o.end() || it->is_null() ? nullptr : &*it;
}

std::string optional_string(const json& o, const char* name, const std::string& where) {
  const json* f = field(o, name);
  if (!f) return {};
  if (!f->is_string()) throw bad(where + "." + name + " must be a string");
  return f->get<std::string>();
}

parley::event read_part(const json& p, const std::string& where, bool human,
                        std::size_t max_file_size) {
  if (!p.is_object()) throw bad(where + " must be an object with one of text, data, raw, url");
  const std::string media = optional_string(p, "mediaType", where);
  const std::string filename = optional_string(p, "filename", where);
  int kinds = 0;
  for (const char* k : {"text", "data", "raw", "url"}) kinds += field(p, k) ? 1 : 0;
  if (kinds != 1)
    throw bad(where + " must have exactly one of text, data, raw, url (A2A v1.0 Part; the v0.3 "
                      "'kind' parts are not accepted)");
  if (const json* t = field(p, "text")) {
    if (!t->is_string()) throw bad(where + ".text must be a string");
    return parley::event::text(t->get<std::string>(), human);
  }
  if (const json* d = field(p, "data")) return parley::event::json_payload(*d, human);
  if (const json* r = field(p, "raw")) {
    if (!r->is_string()) throw bad(where + ".raw must be a base64 string");
    const auto size = base64_decoded_size(r->get_ref<const std::string&>());
    if (size == std::string::npos) throw bad(where + ".raw is not valid base64");
    if (size > max_file_size)
      throw bad(where + ".raw is " + std::to_string(size) + " bytes; the limit is " +
                std::to_string(max_file_size) + " (platforms.websocket.max_file_size)");
    return parley::event::file({filename, media.empty() ? "application/octet-stream" : media,
                                r->get<std::string>()},
                               human);
  }
  const json& u = *field(p, "url");
  if (!u.is_string()) throw bad(where + ".url must be a string");
  return parley::event::json_payload({{"url", u}, {"mediaType", media}, {"filename", filename}},
                                     human);
}

json reply_part_content(const reply& r) {
  switch (r.kind) {
    case reply_kind::text: return {{"text", r.text}, {"mediaType", "text/plain"}};
    case reply_kind::markdown: return {{"text", r.text}, {"mediaType", "text/markdown"}};
    case reply_kind::html: return {{"text", r.text}, {"mediaType", "text/html"}};
    case reply_kind::json: return {{"data", r.data}, {"mediaType", "application/json"}};
    case reply_kind::file:
    case reply_kind::image: {
      json p = {{"raw", r.data.value("base64", "")},
                {"mediaType", r.data.value("type", "application/octet-stream")}};
      if (auto name = r.data.value("name", ""); !name.empty()) p["filename"] = name;
      return p;
    }
    default:
      return {{"data", r.data},
              {"mediaType", "application/json"},
              {"metadata", {{"parley.reply", std::string(to_string(r.kind))}}}};
  }
}

}  // namespace

json error_response(const json& id, const rpc_error& e) {
  json err = {{"code", static_cast<int>(e.code)}, {"message", e.message}};
  if (auto r = reason(e.code); !r.empty())
    err["data"] = json::array({{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                                {"reason", r},
                                {"domain", "a2a-protocol.org"}}});
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

json result_response(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

std::string_view to_string(task_state s) {
  for (const auto& [k, v] : state_names)
    if (k == s) return v;
  return "TASK_STATE_UNSPECIFIED";
}

std::optional<task_state> task_state_from(std::string_view s) {
  for (const auto& [k, v] : state_names)
    if (v == s) return k;
  return std::nullopt;
}

bool terminal(task_state s) {
  return s == task_state::completed || s == task_state::failed || s == task_state::canceled ||
         s == task_state::rejected;
}

bool interrupted(task_state s) {
  return s == task_state::input_required || s == task_state::auth_required;
}

std::string timestamp(wall_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

json reply_part(const reply& r) {
  json p = reply_part_content(r);
  // A reply to another agent's message carries its own lineage (caused by that message).
  if (r.lineage) p["metadata"][lineage_key] = r.lineage->to_json();
  return p;
}

incoming_message read_message(const json& message, std::size_t max_file_size) {
  if (!message.is_object())
    throw bad("params.message is required: {messageId, role: \"ROLE_USER\", parts: [...]}");
  incoming_message in;
  in.message_id = optional_string(message, "messageId", "message");
  if (in.message_id.empty()) throw bad("message.messageId is required (the sender makes it)");
  in.context_id = optional_string(message, "contextId", "message");
  in.task_id = optional_string(message, "taskId", "message");
  const std::string role = optional_string(message, "role", "message");
  if (role != "ROLE_USER")
    throw bad(role.empty() ? "message.role is required: \"ROLE_USER\""
                           : "message.role must be \"ROLE_USER\" (a client's message), got \"" +
                                 role + "\"");
  if (const json* md = field(message, "metadata")) {
    if (!md->is_object()) throw bad("message.metadata must be an object");
    auto it = md->find(lineage_key);
    if (it != md->end() && !it->is_null()) {
      std::string why;
      in.lineage = parley::lineage::from_json(*it, &why);
      if (!in.lineage)
        throw bad("message.metadata[\"" + std::string(lineage_key) + "\"]: " + why);
    }
  }
  const json* parts = field(message, "parts");
  if (!parts || !parts->is_array() || parts->empty())
    throw bad("message.parts must be a non-empty array of parts, e.g. [{\"text\": \"hi\"}]");
  const bool human = !in.lineage;
  for (std::size_t i = 0; i < parts->size(); ++i) {
    auto e = read_part((*parts)[i], "message.parts[" + std::to_string(i) + "]", human, max_file_size);
    if (in.lineage) {
      // One lineage per message: each further part gets its own id, caused by the same message.
      parley::lineage l = *in.lineage;
      if (i > 0) l.id += "#" + std::to_string(i);
      e.from_agent(l.sender_agent.empty() ? std::string("a2a peer") : l.sender_agent, l, "a2a",
                   /*inbound=*/true);
    }
    in.events.push_back(std::move(e));
  }
  return in;
}

std::string make_task_id(const std::string& context_id) { return fresh_session_id() + ":" + context_id; }

std::string context_of_task(std::string_view task_id) {
  constexpr std::size_t uuid = 36;  // 8-4-4-4-12, as fresh_session_id writes it
  if (task_id.size() <= uuid + 1 || task_id[uuid] != ':') return {};
  return std::string(task_id.substr(uuid + 1));
}

}  // namespace parley::platforms::detail::a2a
