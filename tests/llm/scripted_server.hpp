#pragma once
// A scripted OpenAI-compatible HTTP server for tests: real Beast HTTP on 127.0.0.1:0, on its
// own thread. Each request gets the next scripted exchange: a plain answer, an SSE stream, a
// hang (the socket stays open, nothing is sent), or a stream cut off mid-way.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <parley/net.hpp>

namespace test {

struct exchange {
  enum class kind { respond, sse, hang, close_mid_stream, held };
  kind what = kind::respond;
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;                 // respond
  std::vector<std::string> events;  // sse / close_mid_stream: each sent as "data: <e>\n\n"
  bool close_after_answer = false;  // respond: then close without saying so (a stale keep-alive)
  std::chrono::milliseconds delay{0};  // respond / sse: wait this long before answering

  static exchange json_body(const parley::json& j, unsigned status = 200);
  static exchange text(std::string body, unsigned status = 200);
  static exchange sse(std::vector<std::string> events);
  static exchange hang();
  static exchange close_after(std::vector<std::string> events);
  // Answers `j` once release() is called.
  static exchange held(const parley::json& j);
  exchange& header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

struct received {
  std::string target;
  std::string authorization;
  std::string body;
};

class scripted_server {
 public:
  // With a PEM certificate and key it speaks https (base_url names localhost).
  explicit scripted_server(const std::string& cert = {}, const std::string& key = {});
  ~scripted_server();
  void push(exchange e);
  std::string base_url() const;  // http://127.0.0.1:PORT/v1
  int accepted() const;          // connections accepted so far
  std::vector<received> requests() const;
  std::size_t request_count() const;
  void release();  // lets held exchanges answer (now and later)
  // Answers requests the script has no exchange for (instead of a 500). Called on the server's
  // thread; set it before the first request.
  void respond_with(std::function<exchange(const received&)> fn);
  // Whether to keep every request for requests() (on by default; benchmarks turn it off).
  void keep_requests(bool keep);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// A chat completion body with `text` as the assistant's answer.
parley::json completion(const std::string& text);

}  // namespace test
