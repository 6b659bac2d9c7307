// The OTLP/HTTP exporter: a bounded queue filled from session strands, drained by one
// coroutine on the exporter's own io_context and thread (`parley-otlp`), one request at a time.
#include <parley/platforms/otlp_exporter.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/log.hpp>

#include "a2a_http.hpp"
#include "a2a_pool.hpp"
#include "beast.hpp"

namespace parley::platforms {

namespace {

constexpr auto log_every = std::chrono::seconds(10);  // at most one drop line per period
constexpr std::size_t max_answer = 64 * 1024;

}  // namespace

otlp_options otlp_options::from_config(const config& cfg) {
  otlp_options o;
  o.endpoint = cfg.get_string("telemetry.otlp_endpoint");
  o.service_name = cfg.get_string("telemetry.service_name");
  auto count = [&](const std::string& key, std::int64_t hi) {
    const auto v = cfg.get_int(key);
    if (v < 1 || v > hi)
      throw config_error(key + " must be between 1 and " + std::to_string(hi) + ", got " +
                         std::to_string(v));
    return static_cast<std::size_t>(v);
  };
  auto seconds = [&](const std::string& key) {
    const double s = cfg.get_double(key);
    if (!(s > 0) || s > 3600)
      throw config_error(key + " must be a number of seconds above 0 (at most 3600), got " +
                         std::to_string(s));
    return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(s * 1000)));
  };
  o.queue_capacity = count("telemetry.queue_capacity", 10'000'000);
  o.batch_size = count("telemetry.batch_size", 100'000);
  o.batch_interval = seconds("telemetry.batch_interval");
  o.export_timeout = seconds("telemetry.export_timeout");
  o.shutdown_timeout = seconds("telemetry.shutdown_timeout");
  o.capture_content = cfg.get_bool("telemetry.capture_content");
  return o;
}

struct otlp_exporter::impl {
  explicit impl(otlp_options opts) : o(std::move(opts)) {
    std::string why;
    auto u = detail::a2a::parse_url(o.endpoint, &why);
    if (!u)
      throw config_error("telemetry.otlp_endpoint: " + why +
                         "; give the collector's OTLP/HTTP address, e.g. http://127.0.0.1:4318");
    // OTLP/HTTP's path is {endpoint}/v1/traces; an endpoint naming it already is kept. The
    // query goes: a ?token= in it travels as a bearer token (url.token), never in the line.
    std::string path = u->target.substr(0, u->target.find('?'));
    while (!path.empty() && path.back() == '/') path.pop_back();
    constexpr std::string_view suffix = "/v1/traces";
    if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
      path += suffix;
    u->target = path;
    url = std::move(*u);
    shown = url.origin() + url.target;
    service = o.service_name;
  }

  otlp_options o;
  detail::a2a::url_parts url;
  std::string shown;    // the endpoint without credentials
  std::string service;  // set before the thread starts

  // Made by start(), destroyed by stop() once the thread has ended (with whatever it still
  // held, e.g. a request to a collector that never answered). Replaced under `m`.
  std::unique_ptr<net::io_context> io;
  std::unique_ptr<net::steady_timer> timer;
  // One keep-alive connection to the collector, reused from batch to batch (on `io`).
  std::shared_ptr<detail::a2a::connection_pool> pool;
  std::thread thread;
  std::mutex life;  // start and stop

  mutable std::mutex m;  // everything below, but the atomics
  std::vector<span> queue;
  bool running = false;
  bool stopping = false;
  bool finished = false;
  std::condition_variable finished_cv;
  clock::time_point shutdown_deadline{};
  std::string last_error;
  clock::time_point last_log{};
  std::uint64_t unlogged = 0;
  std::atomic<std::uint64_t> exported{0}, dropped{0}, failed{0};

  // With `m` held: counts `n` lost spans; returns the log line to write (outside the lock)
  // when none was written in the last log_every.
  std::optional<std::string> drop_locked(std::size_t n, const std::string& why, bool count = true) {
    if (count) dropped.fetch_add(n, std::memory_order_relaxed);
    unlogged += n;
    last_error = why;
    const auto now = clock::now();
    if (last_log != clock::time_point{} && now - last_log < log_every) return std::nullopt;
    last_log = now;
    std::string line = "telemetry: " + std::to_string(unlogged) + " span(s) dropped exporting to " +
                       shown + ": " + why;
    unlogged = 0;
    return line;
  }

  void drop(std::size_t n, const std::string& why) {
    std::optional<std::string> line;
    {
      std::lock_guard l(m);
      line = drop_locked(n, why, /*count=*/false);
    }
    if (line) PARLEY_LOG(warn, *line);
    // Counted once the line is out: whoever sees the count sees the warning too.
    dropped.fetch_add(n, std::memory_order_relaxed);
  }

  net::awaitable<void> send(std::vector<span> batch) {
    auto deadline = clock::now() + o.export_timeout;
    {
      std::lock_guard l(m);
      if (stopping) deadline = std::min(deadline, shutdown_deadline);
    }
    std::string why;
    try {
      const auto a = co_await pool->exchange(url, encode_otlp_traces(batch, service), deadline,
                                             max_answer, nullptr, /*a2a=*/false);
      if (a.status >= 200 && a.status < 300) {
        // A partial success names the spans the collector refused.
        std::size_t rejected = 0;
        const json j = json::parse(a.body, nullptr, false);
        if (j.is_object() && j.contains("partialSuccess") && j["partialSuccess"].is_object()) {
          // An int64 in OTLP's JSON: a decimal string, though some send a number.
          const json r = j["partialSuccess"].value("rejectedSpans", json(0));
          if (r.is_number_unsigned()) rejected = r.get<std::size_t>();
          if (r.is_string()) rejected = std::strtoull(r.get<std::string>().c_str(), nullptr, 10);
          rejected = std::min(rejected, batch.size());
        }
        exported.fetch_add(batch.size() - rejected, std::memory_order_relaxed);
        if (rejected) drop(rejected, "the collector rejected them (partialSuccess)");
        co_return;
      }
      why = "the collector answered HTTP " + std::to_string(a.status);
    } catch (const boost::system::system_error& e) {
      why = e.code() == detail::beast::error::timeout
                ? "no answer within the time limit (telemetry.export_timeout)"
                : e.code().message();
    } catch (const std::exception& e) {
      why = e.what();
    }
    failed.fetch_add(1, std::memory_order_relaxed);
    drop(batch.size(), why);
  }

  // Waits for a full batch, the interval or stop(); sends; until stopped and empty.
  net::awaitable<void> loop() {
    for (;;) {
      bool wait = false;
      {
        std::lock_guard l(m);
        wait = !stopping && queue.size() < o.batch_size;
      }
      if (wait) {
        timer->expires_after(o.batch_interval);
        co_await timer->async_wait(net::as_tuple(net::use_awaitable));
      }
      std::vector<span> batch;
      {
        std::lock_guard l(m);
        if (stopping && clock::now() >= shutdown_deadline) {
          if (!queue.empty()) {
            auto line = drop_locked(queue.size(), "stopping: not sent within telemetry.shutdown_timeout");
            queue.clear();
            if (line) PARLEY_LOG(warn, *line);
          }
          break;
        }
        const auto n = std::min(o.batch_size, queue.size());
        if (n == queue.size()) {
          batch.swap(queue);
        } else {
          batch.assign(std::make_move_iterator(queue.begin()),
                       std::make_move_iterator(queue.begin() + static_cast<std::ptrdiff_t>(n)));
          queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
        }
      }
      if (!batch.empty()) co_await send(std::move(batch));
      std::lock_guard l(m);
      if (stopping && queue.empty()) break;
    }
  }
};

otlp_exporter::otlp_exporter(otlp_options options)
    : impl_(std::make_shared<impl>(std::move(options))) {}

otlp_exporter::~otlp_exporter() { stop(); }

void otlp_exporter::start(const agent& owner) {
  std::lock_guard life(impl_->life);
  auto& i = *impl_;
  {
    std::lock_guard l(i.m);
    if (i.running) return;
    i.running = true;
    i.stopping = false;
    i.finished = false;
    i.io = std::make_unique<net::io_context>(1);
    i.timer = std::make_unique<net::steady_timer>(*i.io);
    i.pool = std::make_shared<detail::a2a::connection_pool>(i.io->get_executor(), 1,
                                                            std::chrono::seconds(30));
  }
  if (i.service.empty()) i.service = owner.name();
  net::co_spawn(*i.io, i.loop(), [p = impl_.get()](std::exception_ptr ep) {
    if (ep) PARLEY_LOG(error, "telemetry: the exporter stopped on an error");
    std::lock_guard l(p->m);
    p->finished = true;
    p->finished_cv.notify_all();
  });
  i.thread = std::thread([p = impl_.get()] {
    name_this_thread("parley-otlp");
    p->io->run();
  });
  PARLEY_LOG(info, "telemetry: exporting traces to " << i.shown << " (OTLP/HTTP JSON)");
}

void otlp_exporter::export_span(span s) {
  auto& i = *impl_;
  std::optional<std::string> line;
  {
    std::lock_guard l(i.m);
    if (!i.running || i.queue.size() >= i.o.queue_capacity) {
      line = i.drop_locked(1, i.running ? "the queue is full (telemetry.queue_capacity = " +
                                              std::to_string(i.o.queue_capacity) +
                                              "): the collector is slow or down"
                                        : "the exporter is not running");
    } else {
      i.queue.push_back(std::move(s));
      // A full batch leaves at once. The handler only touches the timer, on the exporter's
      // thread; posted under the lock, so the io_context is not replaced meanwhile.
      if (i.queue.size() == i.o.batch_size)
        net::post(*i.io, [p = impl_.get()] { p->timer->cancel(); });
    }
  }
  if (line) PARLEY_LOG(warn, *line);
}

void otlp_exporter::stop() {
  std::lock_guard life(impl_->life);
  auto& i = *impl_;
  {
    std::lock_guard l(i.m);
    if (!i.running || i.stopping) return;
    i.stopping = true;
    i.shutdown_deadline = clock::now() + i.o.shutdown_timeout;
    net::post(*i.io, [p = impl_.get()] { p->timer->cancel(); });
  }
  {
    // Requests that start now end by the shutdown deadline; one already in flight, or a name
    // lookup, may not: the io_context is stopped shortly after it.
    std::unique_lock l(i.m);
    i.finished_cv.wait_until(l, i.shutdown_deadline + std::chrono::milliseconds(500),
                             [&] { return i.finished; });
    // Also once finished: the pool's idle connection and its sweep timer would keep it running.
    i.io->stop();
  }
  if (i.thread.joinable()) i.thread.join();
  std::unique_ptr<net::io_context> io;
  std::unique_ptr<net::steady_timer> timer;
  std::shared_ptr<detail::a2a::connection_pool> pool;
  {
    std::lock_guard l(i.m);
    i.running = false;
    if (!i.queue.empty()) {
      // Left behind by a request that outlived the deadline.
      i.dropped.fetch_add(i.queue.size(), std::memory_order_relaxed);
      i.queue.clear();
    }
    timer = std::move(i.timer);
    pool = std::move(i.pool);
    io = std::move(i.io);
  }
  // Outside the lock: this ends what the stopped io_context still held.
  pool.reset();
  timer.reset();
  io.reset();
  PARLEY_LOG(info, "telemetry: stopped; " << i.exported.load() << " span(s) exported, "
                                          << i.dropped.load() << " dropped");
}

bool otlp_exporter::capture_content() const { return impl_->o.capture_content; }

otlp_exporter::counters otlp_exporter::counts() const {
  std::lock_guard l(impl_->m);
  return {impl_->exported.load(), impl_->dropped.load(), impl_->queue.size(), impl_->failed.load()};
}

const std::string& otlp_exporter::endpoint() const { return impl_->shown; }

json otlp_exporter::stats() const {
  const auto c = counts();
  std::string last_error;
  {
    std::lock_guard l(impl_->m);
    last_error = impl_->last_error;
  }
  return {{"endpoint", impl_->shown},   {"exported", c.exported}, {"dropped", c.dropped},
          {"queued", c.queued},         {"failed_requests", c.failed_requests},
          {"last_error", last_error}};
}

std::shared_ptr<otlp_exporter> use_otlp_exporter(agent& a, const config& cfg) {
  if (cfg.get_string("telemetry.otlp_endpoint").empty()) return nullptr;
  auto e = std::make_shared<otlp_exporter>(otlp_options::from_config(cfg));
  a.set_trace_sink(e);
  return e;
}

}  // namespace parley::platforms
