#include "otlp_receiver.hpp"

namespace test {

using parley::json;

namespace {

bool is_hex(const json& v, std::size_t digits) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  return s.size() == digits && s.find_first_not_of("0123456789abcdef") == std::string::npos &&
         s != std::string(digits, '0');
}

// An AnyValue, decoded; `err` gets what breaks the JSON encoding's rules.
json decode_value(const json& v, std::string& err) {
  if (v.contains("stringValue")) return v["stringValue"];
  if (v.contains("intValue")) {
    // 64-bit integers travel as decimal strings.
    if (!v["intValue"].is_string()) err = "intValue is not a string: " + v.dump();
    return v["intValue"].is_string() ? json(std::stoll(v["intValue"].get<std::string>()))
                                     : v["intValue"];
  }
  if (v.contains("doubleValue")) return v["doubleValue"];
  if (v.contains("boolValue")) return v["boolValue"];
  if (v.contains("arrayValue")) {
    json out = json::array();
    for (const auto& x : v["arrayValue"].value("values", json::array()))
      out.push_back(decode_value(x, err));
    return out;
  }
  err = "unknown AnyValue: " + v.dump();
  return nullptr;
}

}  // namespace

otlp_receiver::otlp_receiver(mode m) {
  server_.respond_with([this, m](const received& r) {
    take(r);
    if (m == mode::hang) return exchange::hang();
    if (m == mode::reject_one)
      return exchange::json_body(
          {{"partialSuccess", {{"rejectedSpans", "1"}, {"errorMessage", "one too many"}}}});
    return exchange::json_body(json::object());
  });
}

std::string otlp_receiver::endpoint() const {
  std::string u = server_.base_url();
  return u.substr(0, u.size() - 3);  // without "/v1"
}

void otlp_receiver::take(const received& r) {
  std::vector<otlp_span> got;
  std::vector<std::string> errs;
  const json body = json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("resourceSpans")) {
    errs.push_back("not an ExportTraceServiceRequest: " + r.body.substr(0, 200));
  } else {
    for (const auto& rs : body["resourceSpans"]) {
      std::string service;
      for (const auto& a : rs["resource"].value("attributes", json::array()))
        if (a["key"] == "service.name") service = a["value"].value("stringValue", "");
      for (const auto& ss : rs["scopeSpans"])
        for (const auto& s : ss["spans"]) {
          otlp_span o;
          o.service = service;
          std::string err;
          if (!is_hex(s["traceId"], 32)) errs.push_back("traceId: " + s["traceId"].dump());
          if (!is_hex(s["spanId"], 16)) errs.push_back("spanId: " + s["spanId"].dump());
          if (s.contains("parentSpanId") && !is_hex(s["parentSpanId"], 16))
            errs.push_back("parentSpanId: " + s["parentSpanId"].dump());
          if (!s["kind"].is_number_integer()) errs.push_back("kind: " + s["kind"].dump());
          for (const char* k : {"startTimeUnixNano", "endTimeUnixNano"})
            if (!s[k].is_string()) errs.push_back(std::string(k) + " is not a string");
          o.trace_id = s.value("traceId", "");
          o.span_id = s.value("spanId", "");
          o.parent_span_id = s.value("parentSpanId", "");
          o.name = s.value("name", "");
          o.kind = s.value("kind", 0);
          o.start_ns = std::stoll(s.value("startTimeUnixNano", "0"));
          o.end_ns = std::stoll(s.value("endTimeUnixNano", "0"));
          for (const auto& a : s.value("attributes", json::array()))
            o.attributes[a["key"].get<std::string>()] = decode_value(a["value"], err);
          if (!err.empty()) errs.push_back(err);
          o.status = s["status"].value("code", 0);
          o.status_message = s["status"].value("message", "");
          got.push_back(std::move(o));
        }
    }
  }
  {
    std::lock_guard l(m_);
    bodies_.push_back(r.body);
    targets_.push_back(r.target);
    for (auto& e : errs) errors_.push_back(std::move(e));
    for (auto& s : got) spans_.push_back(std::move(s));
  }
  cv_.notify_all();
}

bool otlp_receiver::wait(const std::function<bool(const std::vector<otlp_span>&)>& pred,
                         std::chrono::milliseconds limit) {
  std::unique_lock l(m_);
  return cv_.wait_for(l, limit, [&] { return pred(spans_); });
}

std::vector<otlp_span> otlp_receiver::spans() const {
  std::lock_guard l(m_);
  return spans_;
}
std::vector<std::string> otlp_receiver::bodies() const {
  std::lock_guard l(m_);
  return bodies_;
}
std::vector<std::string> otlp_receiver::targets() const {
  std::lock_guard l(m_);
  return targets_;
}
std::vector<std::string> otlp_receiver::format_errors() const {
  std::lock_guard l(m_);
  return errors_;
}

}  // namespace test
