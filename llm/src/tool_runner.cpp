// Tool calls with timeouts and cancellation, without awaitable operators: each call is
// co_spawned with its own cancellation signal, and the caller waits on one timer that the last
// call to end cancels (or that expires at the earliest deadline).
#include "tool_runner.hpp"

#include <algorithm>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace parley::llm::detail {

namespace {

using steady = std::chrono::steady_clock;

struct group {
  explicit group(const net::any_io_executor& ex) : wake(ex) {}
  net::steady_timer wake;
  std::size_t remaining = 0;
  std::vector<tool_outcome> out;
  std::vector<bool> done;
  std::vector<steady::time_point> started, deadline;
  std::vector<std::unique_ptr<net::cancellation_signal>> cancel;
};

double ms_since(steady::time_point t) {
  return std::chrono::duration<double, std::milli>(steady::now() - t).count();
}

void start(const std::shared_ptr<group>& g, std::size_t i, const tool_job& job,
           const net::any_io_executor& ex) {
  g->started[i] = steady::now();
  g->out[i].started = wall_clock::now();
  g->deadline[i] = g->started[i] + job.t->timeout;
  auto finish = [g, i, name = job.t->name](std::exception_ptr ep, json r) {
    if (g->done[i]) return;  // timed out or cancelled already: the late result is dropped
    g->done[i] = true;
    auto& o = g->out[i];
    o.latency_ms = ms_since(g->started[i]);
    if (ep) {
      o.is_error = true;
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& ex) {
        o.content = "ERROR: tool '" + name + "' failed: " + ex.what();
      } catch (...) {
        o.content = "ERROR: tool '" + name + "' failed";
      }
    } else {
      o.content = result_text(r);
      o.is_error = o.content.rfind("ERROR", 0) == 0;
    }
    if (--g->remaining == 0) g->wake.cancel();
  };
  net::awaitable<json> aw;
  try {
    if (!job.t->run) throw std::runtime_error("it has no run function");
    aw = job.t->run(job.arguments);
  } catch (...) {
    finish(std::current_exception(), json());
    return;
  }
  net::co_spawn(ex, std::move(aw), net::bind_cancellation_slot(g->cancel[i]->slot(), std::move(finish)));
}

// Ends every job still running past its deadline; returns the earliest deadline left.
steady::time_point expire(group& g, const std::vector<tool_job>& jobs, std::size_t upto) {
  auto next = steady::time_point::max();
  const auto now = steady::now();
  for (std::size_t i = 0; i < upto; ++i) {
    if (g.done[i]) continue;
    if (g.deadline[i] <= now) {
      g.done[i] = true;
      auto& o = g.out[i];
      o.content = "ERROR: tool '" + jobs[i].t->name + "' did not finish within " +
                  std::to_string(jobs[i].t->timeout.count()) + " ms";
      o.is_error = true;
      o.latency_ms = ms_since(g.started[i]);
      --g.remaining;
      g.cancel[i]->emit(net::cancellation_type::terminal);
    } else {
      next = std::min(next, g.deadline[i]);
    }
  }
  return next;
}

// Waits until jobs [0, upto) have all ended.
net::awaitable<void> wait_for(std::shared_ptr<group> g, const std::vector<tool_job>& jobs,
                              std::size_t upto) {
  while (true) {
    const auto next = expire(*g, jobs, upto);
    if (g->remaining == 0) co_return;
    g->wake.expires_at(next);
    bool aborted = false;
    try {
      // A coroutine already cancelled throws here instead of waiting.
      co_await g->wake.async_wait(net::as_tuple(net::use_awaitable));
    } catch (const boost::system::system_error&) {
      aborted = true;
    }
    auto cs = co_await net::this_coro::cancellation_state;
    if (aborted || cs.cancelled() != net::cancellation_type::none) {
      for (std::size_t i = 0; i < upto; ++i)
        if (!g->done[i]) {
          g->done[i] = true;
          g->cancel[i]->emit(net::cancellation_type::terminal);
        }
      throw boost::system::system_error(net::error::operation_aborted);
    }
  }
}

}  // namespace

std::string result_text(const json& r) {
  if (r.is_string()) return r.get<std::string>();
  if (r.is_null()) return "OK";
  return r.dump();
}

net::awaitable<std::vector<tool_outcome>> run_tools(std::vector<tool_job> jobs, bool parallel) {
  auto ex = co_await net::this_coro::executor;
  auto g = std::make_shared<group>(ex);
  const auto n = jobs.size();
  g->out.resize(n);
  g->done.assign(n, false);
  g->started.resize(n);
  g->deadline.resize(n);
  for (std::size_t i = 0; i < n; ++i) g->cancel.push_back(std::make_unique<net::cancellation_signal>());
  if (parallel) {
    g->remaining = n;
    for (std::size_t i = 0; i < n; ++i) start(g, i, jobs[i], ex);
    co_await wait_for(g, jobs, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      g->remaining = 1;
      start(g, i, jobs[i], ex);
      co_await wait_for(g, jobs, i + 1);
    }
  }
  co_return std::move(g->out);
}

}  // namespace parley::llm::detail
