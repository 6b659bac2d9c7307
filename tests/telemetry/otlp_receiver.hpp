#pragma once
// A small OTLP/HTTP receiver for tests: a real HTTP server on 127.0.0.1:0 (the scripted
// server of tests/llm) that takes POST /v1/traces bodies (ExportTraceServiceRequest JSON),
// checks their encoding strictly and keeps the spans; or it never answers (a hung collector),
// or answers that it rejected one span of each request (a partial success).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <parley/net.hpp>

#include "../llm/scripted_server.hpp"

namespace test {

using namespace std::chrono_literals;

struct otlp_span {
  std::string service;  // the resource's service.name
  std::string trace_id, span_id, parent_span_id, name;
  int kind = 0;
  long long start_ns = 0, end_ns = 0;
  parley::json attributes = parley::json::object();  // key -> decoded value
  int status = 0;
  std::string status_message;
  // An attribute's value, or null.
  parley::json attr(const std::string& key) const { return attributes.value(key, parley::json()); }
};

class otlp_receiver {
 public:
  enum class mode { accept, hang, reject_one };
  explicit otlp_receiver(mode m = mode::accept);
  std::string endpoint() const;  // http://127.0.0.1:PORT
  // Waits until `pred` holds for the spans received so far (limit: `limit`).
  bool wait(const std::function<bool(const std::vector<otlp_span>&)>& pred,
            std::chrono::milliseconds limit = 10s);
  std::vector<otlp_span> spans() const;
  std::vector<std::string> bodies() const;
  std::vector<std::string> targets() const;
  // What did not follow the OTLP JSON encoding (empty when everything did).
  std::vector<std::string> format_errors() const;
  std::size_t requests() const { return server_.request_count(); }

 private:
  void take(const received& r);
  scripted_server server_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::vector<otlp_span> spans_;
  std::vector<std::string> bodies_, targets_, errors_;
};

}  // namespace test
