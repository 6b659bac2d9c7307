#pragma once
/// Exports an agent's traces (parley/trace.hpp) to an OpenTelemetry collector over OTLP/HTTP
/// with the JSON encoding: `POST {endpoint}/v1/traces`, an ExportTraceServiceRequest per
/// batch. Spans wait in a bounded queue; the exporter's own thread (`parley-otlp`) sends them
/// in batches (when batch_size are queued, or every batch_interval), one request at a time,
/// each limited by export_timeout. Serving never waits for export: when the queue is full, or
/// the collector is slow, down or answers an error, spans are dropped and counted (stats(),
/// shown by /health), and a log line says so at most once per 10 s. On stop() what is queued
/// is sent within shutdown_timeout.
///
///   platforms::use_otlp_exporter(agent, agent.config());  // telemetry.* keys; off when empty
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <parley/agent.hpp>
#include <parley/config.hpp>
#include <parley/trace.hpp>

namespace parley::platforms {

struct otlp_options {
  /// The collector: http://host:port or https://host:port, with an optional path prefix;
  /// "/v1/traces" is appended unless the path already ends with it. A ?token= in it is sent
  /// as a bearer token (and never logged).
  std::string endpoint;
  std::string service_name;  ///< resource attribute service.name; empty: the agent's name
  std::size_t queue_capacity = 4096;  ///< spans waiting; beyond it new spans are dropped
  std::size_t batch_size = 512;       ///< spans per request at most
  std::chrono::milliseconds batch_interval{1000};  ///< queued spans leave at least this often
  std::chrono::milliseconds export_timeout{5000};  ///< per request (connect, send, answer)
  std::chrono::milliseconds shutdown_timeout{2000};  ///< for the last requests, on stop()
  /// Message text, tool arguments and results in spans (may be personal data).
  bool capture_content = false;

  /// Reads the telemetry.* keys (declare_config first). @throws config_error for a value out
  /// of range or an endpoint that is not an http(s) URL, naming the key and the fix.
  static otlp_options from_config(const config& cfg);
};

/// The OTLP/HTTP JSON body (ExportTraceServiceRequest) for `spans`: one resource (service.name)
/// and one scope ("parley"); ids as hex, times as decimal strings of Unix nanoseconds, enums
/// as integers, 64-bit integers as strings. Invalid UTF-8 is replaced, never thrown on.
std::string encode_otlp_traces(const std::vector<span>& spans, const std::string& service_name);

/// The trace sink that exports over OTLP/HTTP. Methods are safe from any thread.
class otlp_exporter final : public trace_sink {
 public:
  /// @throws config_error when the endpoint is not an http(s) URL.
  explicit otlp_exporter(otlp_options options);
  ~otlp_exporter() override;
  otlp_exporter(const otlp_exporter&) = delete;
  otlp_exporter& operator=(const otlp_exporter&) = delete;

  /// Starts the exporter's thread (the agent calls it; a second call does nothing).
  void start(const agent& owner) override;
  /// Queues `s`, or drops it (counted) when the queue is full or the exporter is stopped.
  void export_span(span s) override;
  /// Sends what is queued within shutdown_timeout (the rest is dropped), then ends the thread.
  void stop() override;
  bool capture_content() const override;
  /// {"endpoint", "exported", "dropped", "queued", "failed_requests", "last_error"}.
  json stats() const override;

  struct counters {
    std::uint64_t exported = 0;  ///< spans the collector accepted
    std::uint64_t dropped = 0;   ///< spans lost: queue full, request failed, or rejected
    std::uint64_t queued = 0;    ///< spans waiting now
    std::uint64_t failed_requests = 0;
  };
  counters counts() const;
  /// The endpoint requests go to, without credentials (what logs and /health show).
  const std::string& endpoint() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

/// Any thread, before the agent starts: with telemetry.otlp_endpoint set in `cfg`, makes an
/// exporter from the telemetry.* keys and sets it as `a`'s trace sink; returns it (null when
/// the endpoint is empty). @throws config_error as otlp_options::from_config.
std::shared_ptr<otlp_exporter> use_otlp_exporter(agent& a, const config& cfg);

}  // namespace parley::platforms
