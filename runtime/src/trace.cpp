#include <parley/trace.hpp>

#include <random>

namespace parley {

namespace {

// Trace and span ids need to be unique, not secret (they name no resource and grant
// nothing): a per-thread generator seeded once from the kernel is enough, and costs no
// system call per span.
std::string random_hex(std::size_t digits) {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  static const char* hex = "0123456789abcdef";
  std::string id(digits, '0');
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) {
      do v = gen();
      while (v == 0);  // an all-zero id is invalid in OTLP
    }
    id[i] = hex[v & 15];
    v >>= 4;
  }
  return id;
}

}  // namespace

span span::root(std::string name, span_kind kind) {
  span s;
  s.trace_id = random_hex(32);
  s.span_id = random_hex(16);
  s.name = std::move(name);
  s.kind = kind;
  s.start = wall_clock::now();
  return s;
}

span span::child(std::string child_name, span_kind child_kind) const {
  span s;
  s.trace_id = trace_id;
  s.span_id = random_hex(16);
  s.parent_span_id = span_id;
  s.name = std::move(child_name);
  s.kind = child_kind;
  s.start = wall_clock::now();
  return s;
}

span& span::put(std::string key, attribute_value value) {
  for (auto& a : attributes)
    if (a.key == key) {
      a.value = std::move(value);
      return *this;
    }
  attributes.push_back({std::move(key), std::move(value)});
  return *this;
}

const attribute_value* span::find(std::string_view key) const {
  for (const auto& a : attributes)
    if (a.key == key) return &a.value;
  return nullptr;
}

span& span::fail(std::string type, std::string message) {
  status = span_status::error;
  status_message = std::move(message);
  return set("error.type", std::move(type));
}

span& span::finish() {
  if (end == wall_clock::time_point{}) end = wall_clock::now();
  return *this;
}

}  // namespace parley
