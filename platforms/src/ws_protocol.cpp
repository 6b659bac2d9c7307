#include "ws_protocol.hpp"

#include <ctime>

namespace parley::platforms::detail {

namespace {

json frame(std::string_view action, json message, bool history,
           std::optional<wall_clock::time_point> ts) {
  json f = json::object();
  f["action"] = action;
  f["message"] = std::move(message);
  f["history"] = history;
  f["timestamp"] = ts ? json(format_timestamp(*ts)) : json(nullptr);
  return f;
}

std::string dump(const json& j) {
  // Replace invalid UTF-8 (a body may reply with raw bytes): the frame must stay valid text.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

constexpr const char* too_deep_message =
    "the frame nests JSON more than 64 levels deep; send flatter data";

client_input parse_file(const json& message, std::size_t max_file_size) {
  json f = message;
  if (f.is_string()) {  // BAF sends the file as a JSON string
    if (nests_too_deep(f.get_ref<const std::string&>())) return input_error{too_deep_message};
    f = json::parse(f.get_ref<const std::string&>(), nullptr, false);
    if (f.is_discarded())
      return input_error{"user_file: 'message' is a string but not JSON; send "
                         "{\"name\",\"type\",\"base64\"} as an object or a JSON string"};
  }
  if (!f.is_object())
    return input_error{"user_file: 'message' must be {\"name\",\"type\",\"base64\"}, got " +
                       type_name(f)};
  for (const char* k : {"name", "type", "base64"}) {
    auto it = f.find(k);
    if (it == f.end() || !it->is_string())
      return input_error{std::string("user_file: '") + k +
                         "' is missing or not a string; send {\"name\",\"type\",\"base64\"}"};
  }
  file_data fd{f["name"].get<std::string>(), f["type"].get<std::string>(),
               f["base64"].get<std::string>()};
  const auto size = base64_decoded_size(fd.base64);
  if (size == std::string::npos)
    return input_error{"user_file: 'base64' is not valid base64"};
  if (size > max_file_size)
    return input_error{"user_file: '" + fd.name + "' is " + std::to_string(size) +
                       " bytes; the limit is " + std::to_string(max_file_size) +
                       " (platforms.websocket.max_file_size)"};
  return input_event{event::file(std::move(fd), true)};
}

// The common frame, {"action":"user_message","message":"text",...}, read without building a
// JSON tree (SAX). Anything else, and anything in doubt, is left to the general path.
class common_frame {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  std::string action, message;
  bool got_action = false, got_message = false;
  bool got_lineage = false;  // an "id" key: an agent's frame with lineage (general path)

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(number_integer_t) { return scalar(); }
  bool number_unsigned(number_unsigned_t) { return scalar(); }
  bool number_float(number_float_t, const string_t&) { return scalar(); }
  bool binary(binary_t&) { return false; }
  bool string(string_t& v) {
    if (depth_ == 1 && field_ == field::action) {
      action = std::move(v);
      got_action = true;
    } else if (depth_ == 1 && field_ == field::message) {
      message = std::move(v);
      got_message = true;
    }
    return true;
  }
  bool start_object(std::size_t) { return open(); }
  bool start_array(std::size_t) { return depth_ > 0 && open(); }
  bool end_object() { return --depth_, true; }
  bool end_array() { return --depth_, true; }
  bool key(string_t& k) {
    if (depth_ == 1) {
      field_ = k == "action" ? field::action : k == "message" ? field::message : field::other;
      if (k == "id") got_lineage = true;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  enum class field { none, action, message, other };
  bool ours() const { return depth_ == 1 && (field_ == field::action || field_ == field::message); }
  bool scalar() const { return !ours(); }  // a non-string action or message: general path
  bool open() {
    if (ours()) return false;  // an object message (a JSON event) and the like: general path
    ++depth_;
    return true;
  }
  int depth_ = 0;
  field field_ = field::none;
};

}  // namespace

// JSON nested deeper than max_json_nesting is refused before a tree is built: nlohmann's copy
// and dump recurse once per level, and a 200 kB frame of '[' overflowed an 8 MB thread stack.
bool nests_too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_json_nesting) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

std::size_t base64_decoded_size(std::string_view b64) {
  std::size_t n = 0, pad = 0;
  for (char c : b64) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
        c == '/' || c == '-' || c == '_') {
      if (pad) return std::string::npos;  // data after padding
      ++n;
    } else if (c == '=') {
      if (++pad > 2) return std::string::npos;
    } else if (c == '\n' || c == '\r' || c == ' ') {
      continue;
    } else {
      return std::string::npos;
    }
  }
  if ((n + pad) % 4 == 1) return std::string::npos;
  return n * 3 / 4;
}

client_input parse_client_frame(std::string_view text, std::size_t max_file_size) {
  {
    common_frame c;
    if (json::sax_parse(text, &c) && c.got_action && c.got_message) {
      if (c.action == "user_message") return input_event{event::text(std::move(c.message), true)};
      if (c.action == "agent_reply_str" && !c.got_lineage)
        return input_event{event::text(std::move(c.message), false)};
    }
  }
  if (nests_too_deep(text)) return input_error{too_deep_message};
  json f = json::parse(text, nullptr, false);
  if (f.is_discarded())
    return input_error{"the frame is not JSON; send {\"action\": ..., \"message\": ...}"};
  if (!f.is_object())
    return input_error{"the frame is " + type_name(f) +
                       ", not an object; send {\"action\": ..., \"message\": ...}"};
  auto a = f.find("action");
  if (a == f.end()) return input_error{"the frame has no 'action'; e.g. \"user_message\""};
  if (!a->is_string()) return input_error{"'action' must be a string, got " + type_name(*a)};
  const auto& action = a->get_ref<const std::string&>();
  static const json none;
  const auto m = f.find("message");
  const json& message = m != f.end() ? *m : none;

  if (action == "user_message") {
    if (message.is_string()) return input_event{event::text(message.get<std::string>(), true)};
    if (message.is_object()) return input_event{event::json_payload(message, true)};
    return input_error{"user_message: 'message' must be a string or an object, got " +
                       type_name(message)};
  }
  if (action == "user_file") return parse_file(message, max_file_size);
  if (action == "agent_reply_str") {  // another agent: a non-human event
    if (message.is_null())
      return input_error{"agent_reply_str: 'message' is missing; send a string or an object"};
    event e = message.is_string() ? event::text(message.get<std::string>(), false)
                                  : event::json_payload(message, false);
    if (lineage::present_in(f)) {
      // Parley's extra fields (BAF sends none). A client may forge them: wrong types are
      // refused; the depth is taken as sent (clamped to 0..1e6), so a peer can make a message
      // look deeper, never shallower than 0, and the guard still stops at max_agent_depth.
      std::string why;
      auto l = lineage::from_json(f, &why);
      if (!l)
        return input_error{"agent_reply_str: " + why +
                           "; send Parley's lineage fields with their types, or none (as BAF)"};
      std::string sender = l->sender_agent.empty() ? std::string("agent") : l->sender_agent;
      e.from_agent(std::move(sender), std::move(*l), "websocket", /*inbound=*/true);
    }
    return input_event{std::move(e)};
  }
  if (action == "reset") return input_reset{};
  if (action == "user_set_variable") {
    json v = message;
    if (v.is_string()) {
      if (nests_too_deep(v.get_ref<const std::string&>())) return input_error{too_deep_message};
      v = json::parse(v.get_ref<const std::string&>(), nullptr, false);
    }
    if (!v.is_object())
      return input_error{"user_set_variable: 'message' must be an object {\"name\": value}, got " +
                         (v.is_discarded() ? std::string("a string that is not JSON")
                                           : type_name(v))};
    return input_set_variables{std::move(v)};
  }
  if (action == "fetch_user_messages") return input_fetch_history{};
  if (action == "user_update_ui") return input_ignored{action};
  if (action == "user_voice")
    return input_error{"user_voice is not supported (Parley has no speech-to-text); send "
                       "the text as user_message"};
  return input_error{"unknown action '" + action +
                     "'; use user_message, user_file, agent_reply_str, reset, "
                     "user_set_variable or fetch_user_messages"};
}

std::string format_timestamp(wall_clock::time_point t) {
  // Every reply carries one; replies come in bursts within a second: remember the last one.
  thread_local std::time_t last = -1;
  thread_local std::string text;
  const std::time_t tt = wall_clock::to_time_t(t);
  if (tt != last) {
    std::tm tm{};
    localtime_r(&tt, &tm);
    char buf[32];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    text.assign(buf, n);
    last = tt;
  }
  return text;
}

namespace {

// Options as BAF sends them: a JSON string of {"0":"A","1":"B"}, keys in order (as Python's
// json.dumps of an enumerate()).
std::string options_message(const json& data) {
  if (!data.is_array()) return dump(data.is_object() ? data : json::object());
  std::string o = "{";
  std::size_t i = 0;
  for (const auto& x : data) {
    if (i) o += ',';
    o += '"';
    o += std::to_string(i++);
    o += "\":";
    o += dump(x.is_string() ? x : json(x.dump()));
  }
  o += '}';
  return o;
}

json reply_frame(reply_kind kind, const std::string& text, const json& data, bool history,
                 wall_clock::time_point ts) {
  switch (kind) {
    case reply_kind::text: return frame("agent_reply_str", text, history, ts);
    case reply_kind::markdown: return frame("agent_reply_markdown", text, history, ts);
    case reply_kind::html: return frame("agent_reply_html", text, history, ts);
    case reply_kind::options:
      return frame("agent_reply_options", options_message(data), history, ts);
    case reply_kind::json: return frame("agent_reply_json", data, history, ts);
    case reply_kind::file: return frame("agent_reply_file", data, history, ts);
    case reply_kind::image: {
      // BAF sends the image as a bare base64 string; Parley adds its name and MIME type.
      json f = frame("agent_reply_image", data.value("base64", std::string()), history, ts);
      f["name"] = data.value("name", std::string());
      f["type"] = data.value("type", std::string("image/jpeg"));
      return f;
    }
    case reply_kind::location: return frame("agent_reply_location", data, history, ts);
    case reply_kind::reasoning_step:
      return frame("agent_reply_reasoning_step", data, history, ts);
    case reply_kind::task_list_update:
      return frame("agent_reply_task_list_update", data, history, ts);
  }
  return frame("agent_reply_str", text, history, ts);
}

}  // namespace

std::string encode_reply(const reply& r, bool history) {
  if (r.lineage) {
    // An answer to another agent: BAF's frame plus the reply's lineage (BAF clients ignore it).
    json f = reply_frame(r.kind, r.text, r.data, history, r.timestamp);
    f.update(r.lineage->to_json());
    if (r.seq > 0) f["seq"] = r.seq;
    return dump(f);
  }
  // Written directly, no JSON object built: the same bytes as dump() of reply_frame() (keys in
  // order: action, history, message, seq, timestamp). The image frame has two more keys.
  if (r.kind == reply_kind::image) {
    json f = reply_frame(r.kind, r.text, r.data, history, r.timestamp);
    if (r.seq > 0) f["seq"] = r.seq;
    return dump(f);
  }
  const char* action = "agent_reply_str";
  std::string message;
  switch (r.kind) {
    case reply_kind::text: message = dump(json(r.text)); break;
    case reply_kind::markdown:
      action = "agent_reply_markdown";
      message = dump(json(r.text));
      break;
    case reply_kind::html:
      action = "agent_reply_html";
      message = dump(json(r.text));
      break;
    case reply_kind::options:
      action = "agent_reply_options";
      message = dump(json(options_message(r.data)));
      break;
    case reply_kind::json: action = "agent_reply_json"; break;
    case reply_kind::file: action = "agent_reply_file"; break;
    case reply_kind::location: action = "agent_reply_location"; break;
    case reply_kind::reasoning_step: action = "agent_reply_reasoning_step"; break;
    case reply_kind::task_list_update: action = "agent_reply_task_list_update"; break;
    case reply_kind::image: break;
  }
  if (message.empty()) message = dump(r.data);
  std::string out;
  out.reserve(message.size() + 112);
  out += R"({"action":")";
  out += action;
  out += R"(","history":)";
  out += history ? "true" : "false";
  out += R"(,"message":)";
  out += message;
  if (r.seq > 0) {
    // Parley's extra field (BAF clients ignore it): the reply's number, a client's cursor.
    out += R"(,"seq":)";
    out += std::to_string(r.seq);
  }
  out += R"(,"timestamp":")";
  out += format_timestamp(r.timestamp);
  out += "\"}";
  return out;
}

std::string encode_history(const chat_message& m, bool history) {
  // Stored rows carry the reply kind's name ("str" or "text", "markdown", ...) and the
  // content as text (structured kinds serialised as JSON).
  static const std::pair<std::string_view, reply_kind> kinds[] = {
      {"str", reply_kind::text},
      {"text", reply_kind::text},
      {"markdown", reply_kind::markdown},
      {"html", reply_kind::html},
      {"options", reply_kind::options},
      {"json", reply_kind::json},
      {"file", reply_kind::file},
      {"image", reply_kind::image},
      {"location", reply_kind::location},
      {"reasoning_step", reply_kind::reasoning_step},
      {"task_list_update", reply_kind::task_list_update},
  };
  reply_kind kind = reply_kind::text;
  for (const auto& [name, k] : kinds)
    if (m.type == name) kind = k;
  const bool structured =
      kind != reply_kind::text && kind != reply_kind::markdown && kind != reply_kind::html;
  json data;
  if (structured) {
    // Rows written by older versions or other tools may nest deeper than frames may: as text.
    data = nests_too_deep(m.content) ? json(json::value_t::discarded)
                                     : json::parse(m.content, nullptr, false);
    if (data.is_discarded()) data = m.content;
  }
  if (m.is_user) {
    // The user's own messages: text as sent; a JSON or file message as its data.
    json message = structured ? data : json(m.content);
    if (kind == reply_kind::json && data.is_object() && data.contains("message") &&
        data["message"].is_string())
      message = data["message"];
    return dump(frame(kind == reply_kind::file ? "user_file" : "user_message", std::move(message),
                      true, m.timestamp));
  }
  json f = reply_frame(kind, m.content, data, history, m.timestamp);
  if (m.seq > 0) f["seq"] = m.seq;
  return dump(f);
}

std::string encode_error(std::string_view message) {
  return dump(frame("error", message, false, wall_clock::now()));
}

}  // namespace parley::platforms::detail
