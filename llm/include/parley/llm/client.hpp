#pragma once
/// An OpenAI-compatible chat completions client (`POST {base_url}/chat/completions`) over
/// HTTP/1.1 or TLS, asynchronous on the caller's io_context: while one session waits on the
/// model every other session runs. Keeps a few idle connections per host for reuse, limits
/// each exchange in time, retries 408/409/429/5xx (honouring retry-after-ms / retry-after),
/// reads SSE streams and plain answers, and can be cancelled.
///
///   llm::client model(agent.io_context().get_executor(), llm::client_options::from(cfg));
///   state.set_body([&](session& s) -> net::awaitable<void> {
///     auto r = co_await model.chat({.messages = {{{"role", "user"}, {"content", "hi"}}}});
///     s.reply(r.text);
///   });
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <parley/config.hpp>
#include <parley/llm/chat.hpp>
#include <parley/net.hpp>

namespace parley::llm {

struct client_options {
  std::string base_url = "http://127.0.0.1:8080/v1";  ///< http:// or https://, with the /v1
  std::string model;
  /// The NAME of the environment variable that holds the API key; empty = send no key. The
  /// key is read once, at construction, and never logged.
  std::string api_key_env;
  std::chrono::milliseconds timeout{120'000};  ///< per HTTP exchange
  int max_retries = 2;
  /// A server asking to wait longer than this (retry-after) is not retried.
  std::chrono::milliseconds max_retry_wait{120'000};
  std::chrono::milliseconds initial_backoff{500};  ///< doubles per retry, with jitter
  std::chrono::milliseconds max_backoff{8'000};
  std::size_t max_idle_connections = 8;  ///< kept per host for reuse
  bool tls_verify = true;                ///< check the server's certificate and name
  /// A PEM file of certificates to trust besides the system's (a local server's self-signed
  /// certificate); empty = the system's only.
  std::string tls_ca_file;

  /// Reads llm.* from `cfg` (declare_config first). @throws config_error for a wrong type.
  static client_options from(const config& cfg);
};

/// Cancels one or more in-flight chats (a session reset or close). Copies share the state.
/// Any thread. A chat given a handle that is already cancelled fails at once.
class cancel_handle {
 public:
  cancel_handle();
  void cancel() const;
  bool cancelled() const;

  struct state;
  const std::shared_ptr<state>& get() const { return state_; }

 private:
  std::shared_ptr<state> state_;
};

namespace detail {
class client_impl;
}

class client {
 public:
  /// @throws config_error when base_url is not an http(s) URL or api_key_env names an unset
  /// variable (the message names the key and the fix).
  client(net::any_io_executor executor, client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// One chat completion. Resumes on the awaiting coroutine's executor (a session body's
  /// strand). Ends with error_kind::cancelled when `cancel` fires or when a cancellation slot
  /// bound to the awaiting coroutine (net::bind_cancellation_slot) emits. @throws llm::error.
  /// Any thread; calls run concurrently (their I/O on the client's strand).
  net::awaitable<chat_result> chat(chat_request request, cancel_handle cancel = cancel_handle());

  using handler = std::function<void(std::exception_ptr, chat_result)>;
  /// The callback form: `done` runs once, on the client's strand, with a null exception_ptr
  /// and the result, or with an llm::error. Any thread.
  void async_chat(chat_request request, handler done, cancel_handle cancel = cancel_handle());

  const client_options& options() const;

 private:
  std::shared_ptr<detail::client_impl> impl_;
};

}  // namespace parley::llm
