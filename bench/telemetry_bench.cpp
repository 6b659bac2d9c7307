// What traces cost a turn: events per second through sessions (each event a real move, so a
// turn of two spans: invoke_agent and its transition) with no trace sink, with a sink that
// only counts spans (the cost of building them), and with the OTLP exporter sending to a
// local receiver (the tests' scripted HTTP server answering 200). Prints numbers; asserts
// nothing.
//   bench_telemetry [--sessions N] [--events N] [--threads N]
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <parley/platforms/otlp_exporter.hpp>

#include "../tests/llm/scripted_server.hpp"
#include "throughput.hpp"

namespace {

struct counting_sink final : parley::trace_sink {
  std::atomic<long> spans{0};
  void export_span(parley::span) override { spans.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace

int main(int argc, char** argv) {
  int sessions = 1000, events = 200, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int v = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--sessions")) sessions = v;
    else if (!std::strcmp(argv[i], "--events")) events = v;
    else if (!std::strcmp(argv[i], "--threads")) threads = v;
  }
  bench::throughput(sessions, events, threads, "no sink");
  auto counting = std::make_shared<counting_sink>();
  bench::throughput(sessions, events, threads, "counting sink", counting);
  std::printf("  %ld spans built\n", counting->spans.load());

  test::scripted_server collector;
  collector.keep_requests(false);
  collector.respond_with(
      [](const test::received&) { return test::exchange::json_body(parley::json::object()); });
  parley::platforms::otlp_options o;
  const std::string base = collector.base_url();
  o.endpoint = base.substr(0, base.size() - 3);  // without /v1
  o.queue_capacity = 1 << 20;  // large enough that nothing is dropped: the whole cost
  o.shutdown_timeout = std::chrono::seconds(60);
  auto exporter = std::make_shared<parley::platforms::otlp_exporter>(o);
  bench::throughput(sessions, events, threads, "otlp exporter", exporter);
  const auto c = exporter->counts();
  std::printf("  %llu spans exported in %zu requests, %llu dropped\n",
              static_cast<unsigned long long>(c.exported), collector.request_count(),
              static_cast<unsigned long long>(c.dropped));
}
