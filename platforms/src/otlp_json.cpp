// The OTLP/HTTP JSON encoding of spans (opentelemetry-proto's "JSON Protobuf Encoding"):
// lowerCamelCase keys, trace and span ids as hex strings (not base64), enums as integers,
// 64-bit integers (times, intValue) as decimal strings.
#include <parley/platforms/otlp_exporter.hpp>

#include <cmath>
#include <type_traits>

namespace parley::platforms {

namespace {

json any_value(const attribute_value& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return {{"stringValue", x}};
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return {{"intValue", std::to_string(x)}};
        } else if constexpr (std::is_same_v<T, double>) {
          // JSON has no NaN or infinity; protobuf's JSON mapping writes them as strings.
          if (std::isnan(x)) return {{"doubleValue", "NaN"}};
          if (std::isinf(x)) return {{"doubleValue", x > 0 ? "Infinity" : "-Infinity"}};
          return {{"doubleValue", x}};
        } else if constexpr (std::is_same_v<T, bool>) {
          return {{"boolValue", x}};
        } else {
          json values = json::array();
          for (const auto& s : x) values.push_back({{"stringValue", s}});
          return {{"arrayValue", {{"values", std::move(values)}}}};
        }
      },
      v);
}

std::string unix_nanos(wall_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

json attribute(const std::string& key, const attribute_value& v) {
  return {{"key", key}, {"value", any_value(v)}};
}

}  // namespace

std::string encode_otlp_traces(const std::vector<span>& spans, const std::string& service_name) {
  json out = json::array();
  for (const auto& s : spans) {
    json attrs = json::array();
    for (const auto& a : s.attributes) attrs.push_back(attribute(a.key, a.value));
    json j = {{"traceId", s.trace_id},
              {"spanId", s.span_id},
              {"name", s.name},
              {"kind", static_cast<int>(s.kind)},
              {"startTimeUnixNano", unix_nanos(s.start)},
              {"endTimeUnixNano", unix_nanos(s.end == wall_clock::time_point{} ? s.start : s.end)},
              {"attributes", std::move(attrs)},
              {"status", {{"code", static_cast<int>(s.status)}}}};
    if (!s.parent_span_id.empty()) j["parentSpanId"] = s.parent_span_id;
    if (!s.status_message.empty()) j["status"]["message"] = s.status_message;
    out.push_back(std::move(j));
  }
  const json resource = {
      {"attributes", json::array({attribute("service.name", service_name),
                                  attribute("telemetry.sdk.name", std::string("parley")),
                                  attribute("telemetry.sdk.language", std::string("cpp"))})}};
  const json body = {
      {"resourceSpans",
       json::array({{{"resource", resource},
                     {"scopeSpans",
                      json::array({{{"scope", {{"name", "parley"}}}, {"spans", std::move(out)}}})}}})}};
  // Attribute text comes from users and models: bad UTF-8 is replaced, never thrown on.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace parley::platforms
