#include "response.hpp"

#include <cstdlib>
#include <ctime>

namespace parley::llm::detail {
namespace {

std::string str(const json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::string excerpt(std::string_view s) {
  constexpr std::size_t limit = 200;
  return s.size() <= limit ? std::string(s) : std::string(s.substr(0, limit)) + "...";
}

// Arguments arrive as a string of JSON, or (Ollama's native shape leaking through proxies) as
// the object itself.
std::string arguments_text(const json& a) {
  if (a.is_string()) return a.get<std::string>();
  if (a.is_null()) return {};
  return a.dump();
}

std::optional<usage> read_usage(const json& j) {
  auto it = j.find("usage");
  if (it == j.end() || !it->is_object()) return std::nullopt;
  auto num = [&](const char* k) -> std::int64_t {
    auto f = it->find(k);
    return f != it->end() && f->is_number() ? f->get<std::int64_t>() : 0;
  };
  usage u{num("prompt_tokens"), num("completion_tokens"), num("total_tokens")};
  if (u.total_tokens == 0) u.total_tokens = u.prompt_tokens + u.completion_tokens;
  return u;
}

[[noreturn]] void throw_server_error(const json& j, std::string_view source) {
  const json& e = j.contains("error") ? j["error"] : j;
  std::string msg = e.is_string() ? e.get<std::string>() : str(e, "message");
  if (msg.empty()) msg = excerpt(e.dump());
  throw error(error_kind::server_error,
              "the model server at " + std::string(source) + " answered with an error: " + msg);
}

bool is_error_object(const json& j) {
  if (!j.is_object()) return false;
  if (j.contains("error") && !j["error"].is_null()) return true;
  return str(j, "object") == "error";  // old vLLM: unwrapped
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

void finish_tool_calls(std::vector<tool_call>& calls) {
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& c = calls[i];
    if (c.id.empty()) c.id = "call_" + std::to_string(i);
    auto raw = trim(c.arguments);
    if (raw.empty()) {
      c.arguments = "{}";
      c.parsed = json::object();
      continue;
    }
    json p = json::parse(raw, nullptr, false);
    if (!p.is_discarded() && p.is_string()) {  // doubly encoded: decode once
      json inner = json::parse(p.get<std::string>(), nullptr, false);
      if (!inner.is_discarded()) {
        c.arguments = p.get<std::string>();
        p = std::move(inner);
      }
    }
    if (p.is_discarded()) {
      c.parsed = nullptr;
      c.parse_error =
          "the arguments of tool call '" + c.name + "' are not valid JSON: " + excerpt(raw);
    } else {
      c.parsed = std::move(p);
    }
  }
}

std::optional<std::string> error_message(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  if (j.contains("error")) {
    const json& e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    auto m = str(e, "message");
    if (!m.empty()) return m;
  }
  auto m = str(j, "message");
  if (!m.empty()) return m;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> retry_after(std::string_view retry_after_ms,
                                                     std::string_view retry_after,
                                                     std::chrono::system_clock::time_point now) {
  auto number = [](std::string_view s) -> std::optional<double> {
    std::string t(trim(s));
    if (t.empty()) return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size() || !(v >= 0)) return std::nullopt;
    return v;
  };
  if (auto ms = number(retry_after_ms))
    return std::chrono::milliseconds(static_cast<long long>(*ms));
  if (auto s = number(retry_after))
    return std::chrono::milliseconds(static_cast<long long>(*s * 1000));
  std::string t(trim(retry_after));
  if (t.empty()) return std::nullopt;
  std::tm tm{};
  const char* end = strptime(t.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  return d.count() < 0 ? std::chrono::milliseconds(0) : d;
}

chat_result parse_completion(std::string_view body, std::string_view source) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw error(error_kind::malformed_response,
                "the model server at " + std::string(source) +
                    " sent a body that is not a JSON object: " + excerpt(body) +
                    " (is llm.base_url an OpenAI-compatible API root, ending in /v1?)");
  if (is_error_object(j)) throw_server_error(j, source);
  chat_result r;
  r.model = str(j, "model");
  r.usage = read_usage(j);
  auto ch = j.find("choices");
  if (ch == j.end() || !ch->is_array())
    throw error(error_kind::malformed_response, "the model server at " + std::string(source) +
                                                    " sent no choices: " + excerpt(body));
  if (!ch->empty()) {
    const json& c = (*ch)[0];
    r.finish_reason = str(c, "finish_reason");
    const json& m = c.contains("message") ? c["message"] : json::object();
    r.text = str(m, "content");
    r.reasoning = str(m, "reasoning_content");
    if (r.reasoning.empty()) r.reasoning = str(m, "reasoning");
    if (m.is_object() && m.contains("tool_calls") && m["tool_calls"].is_array()) {
      for (const auto& tc : m["tool_calls"]) {
        tool_call call;
        call.id = str(tc, "id");
        const json& f = tc.contains("function") ? tc["function"] : json::object();
        call.name = str(f, "name");
        if (f.is_object() && f.contains("arguments"))
          call.arguments = arguments_text(f["arguments"]);
        r.tool_calls.push_back(std::move(call));
      }
    }
  }
  finish_tool_calls(r.tool_calls);
  if (r.finish_reason == "tool") r.finish_reason = "tool_calls";  // old llama.cpp
  return r;
}

// ---- SSE -----------------------------------------------------------------------------------

void stream_reader::feed(std::string_view bytes) {
  pending_.append(bytes);
  std::size_t start = 0;
  while (true) {
    auto nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view l(pending_.data() + start, nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    line(l);
    start = nl + 1;
  }
  pending_.erase(0, start);
}

void stream_reader::line(std::string_view l) {
  if (l.empty()) return dispatch();
  if (l.front() == ':') return;  // comment / keep-alive
  auto colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view{} : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (!data_.empty()) data_ += '\n';
    data_.append(value);
  } else if (field == "event") {
    event_ = std::string(value);
  }
}

void stream_reader::dispatch() {
  std::string data = std::move(data_);
  std::string ev = std::move(event_);
  data_.clear();
  event_.clear();
  if (data.empty() || done_) return;
  if (data.rfind("[DONE]", 0) == 0) {
    done_ = true;
    return;
  }
  json j = json::parse(data, nullptr, false);
  if (j.is_discarded())
    throw error(error_kind::malformed_response,
                "the model server at " + source_ +
                    " sent a stream event that is not JSON: " + excerpt(data));
  if (ev == "error" || is_error_object(j)) throw_server_error(j, source_);
  ++chunks_;
  chunk(j);
}

tool_call& stream_reader::slot_for(const json& tc) {
  int index = -1;
  if (tc.contains("index") && tc["index"].is_number_integer()) index = tc["index"].get<int>();
  std::string id = str(tc, "id");
  // The latest call at this index (Ollama before 0.4.7 sent no index: then the latest call).
  int found = -1;
  for (int i = static_cast<int>(indexes_.size()) - 1; i >= 0; --i)
    if (index < 0 || indexes_[i] == index) {
      found = i;
      break;
    }
  // Ollama sends parallel calls all at index 0, told apart by id: a new id opens a new call.
  bool new_call = found < 0 || (!id.empty() && !result_.tool_calls[found].id.empty() &&
                                result_.tool_calls[found].id != id);
  // A whole call again at the same index (name and arguments in one piece) after a call that
  // is already complete: a new call, whatever its id (Ollama, and servers that send no ids).
  // A name repeated alone, or arguments continuing, stay with the current call.
  if (!new_call && tc.contains("function") && tc["function"].is_object()) {
    const auto& prev = result_.tool_calls[found];
    const json& f = tc["function"];
    bool whole = !str(f, "name").empty() && f.contains("arguments") &&
                 !(f["arguments"].is_string() && f["arguments"].get<std::string>().empty()) &&
                 !f["arguments"].is_null();
    if (whole && !prev.name.empty() && !prev.arguments.empty() && json::accept(prev.arguments))
      new_call = true;
  }
  if (new_call) {
    result_.tool_calls.emplace_back();
    indexes_.push_back(index < 0 ? static_cast<int>(indexes_.size()) : index);
    found = static_cast<int>(result_.tool_calls.size()) - 1;
  }
  auto& call = result_.tool_calls[found];
  if (!id.empty()) call.id = id;
  return call;
}

void stream_reader::chunk(const json& j) {
  if (auto m = str(j, "model"); !m.empty()) result_.model = m;
  if (auto u = read_usage(j)) result_.usage = u;
  auto ch = j.find("choices");
  if (ch == j.end() || !ch->is_array()) return;  // usage-only chunk
  for (const auto& c : *ch) {
    if (auto f = str(c, "finish_reason"); !f.empty()) result_.finish_reason = f;
    const json* d = nullptr;
    if (c.contains("delta") && c["delta"].is_object())
      d = &c["delta"];
    else if (c.contains("message") && c["message"].is_object())
      d = &c["message"];
    if (!d) continue;
    result_.text += str(*d, "content");
    auto r = str(*d, "reasoning_content");
    result_.reasoning += r.empty() ? str(*d, "reasoning") : r;
    auto tcs = d->find("tool_calls");
    if (tcs == d->end() || !tcs->is_array()) continue;
    for (const auto& tc : *tcs) {
      auto& call = slot_for(tc);
      if (!tc.contains("function") || !tc["function"].is_object()) continue;
      const json& f = tc["function"];
      if (auto name = str(f, "name"); !name.empty()) call.name = name;  // repeated: assign
      if (f.contains("arguments")) call.arguments += arguments_text(f["arguments"]);
    }
  }
}

chat_result stream_reader::finish() {
  if (!pending_.empty()) {
    std::string rest = std::move(pending_);
    pending_.clear();
    line(rest);
  }
  dispatch();
  chat_result r = std::move(result_);
  finish_tool_calls(r.tool_calls);
  if (r.finish_reason == "tool") r.finish_reason = "tool_calls";
  if (r.finish_reason.empty() && !r.tool_calls.empty()) r.finish_reason = "tool_calls";
  return r;
}

}  // namespace parley::llm::detail
