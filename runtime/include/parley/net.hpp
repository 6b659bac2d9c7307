#pragma once
/// Namespace aliases used across Parley. Include this, never `using namespace` in headers.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

namespace parley {
namespace net = boost::asio;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using wall_clock = std::chrono::system_clock;
using strand_type = net::strand<net::io_context::executor_type>;
}  // namespace parley
