// parley-inspect serve: the WebSocket platform's listener and HTTP sessions with no agent, so
// the port serves only the inspector (and /health).
#include <parley/platforms/inspector.hpp>

#include <chrono>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <parley/log.hpp>

#include "ws_hub.hpp"

namespace parley::platforms {

struct inspector_server::impl {
  net::io_context io{1};
  std::shared_ptr<detail::ws_hub> hub = std::make_shared<detail::ws_hub>();
  std::shared_ptr<detail::ws_server> server;
  std::thread thread;
};

inspector_server::inspector_server(inspector_options options)
    : options_(std::move(options)), impl_(std::make_unique<impl>()) {}

inspector_server::~inspector_server() { stop(); }

void inspector_server::start() {
  auto& hub = *impl_->hub;
  hub.opts.host = options_.host;
  hub.opts.port = options_.port;
  hub.opts.token = options_.token;
  hub.opts.inspector = true;
  hub.opts.inspector_db = options_.db;
  hub.inspector = detail::start_inspector(options_.db, options_.token);
  impl_->server = detail::start_ws_server(impl_->io, impl_->hub);
  impl_->thread = std::thread([this] {
    name_this_thread("parley-io-0");
    auto work = net::make_work_guard(impl_->io);
    impl_->io.run();
  });
}

void inspector_server::stop() {
  if (!impl_->thread.joinable()) return;
  auto& hub = *impl_->hub;
  hub.stopping = true;
  impl_->server->stop();
  for (auto& c : hub.all_connections()) c->shutdown();
  hub.wait_all_closed(clock::now() + std::chrono::seconds(2));
  detail::stop_inspector(*hub.inspector);
  impl_->io.stop();
  impl_->thread.join();
  impl_->server.reset();
}

std::uint16_t inspector_server::port() const { return impl_->hub->port; }

std::string inspector_server::url() const {
  std::string host = options_.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "localhost";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port()) + "/inspect";
}

}  // namespace parley::platforms
