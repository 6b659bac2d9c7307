#pragma once
// One JSON-RPC POST to an A2A server's /a2a on loopback (A2A-Version 1.0, 10 s limit); the
// response body, whole (an SSE stream included: the server ends the chunked body after the
// last event).
#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <parley/net.hpp>

namespace test {

inline std::string a2a_post(std::uint16_t port, const parley::json& body) {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::beast::tcp_stream s(io);
  s.expires_after(std::chrono::seconds(10));
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{http::verb::post, "/a2a", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.set("A2A-Version", "1.0");
  req.body() = body.dump();
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return res.body();
}

}  // namespace test
