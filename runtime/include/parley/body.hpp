#pragma once
/// A body: what a state does on entry (or on fallback). Either an ordinary callable
/// `void(session&)` or a coroutine `net::awaitable<void>(session&)`. While a coroutine body is
/// suspended its session processes nothing else; every other session carries on.
#include <functional>
#include <type_traits>
#include <utility>

#include <parley/net.hpp>

namespace parley {

class session;

class body {
 public:
  using sync_fn = std::function<void(session&)>;
  using async_fn = std::function<net::awaitable<void>(session&)>;

  body() = default;
  template <class F>
    requires std::is_invocable_v<F&, session&>
  body(F f) {  // NOLINT(google-explicit-constructor): bodies are passed as lambdas
    if constexpr (std::is_same_v<std::invoke_result_t<F&, session&>, net::awaitable<void>>)
      async_ = std::move(f);
    else
      sync_ = std::move(f);
  }

  explicit operator bool() const { return sync_ || async_; }
  bool is_coroutine() const { return static_cast<bool>(async_); }
  const sync_fn& sync() const { return sync_; }
  const async_fn& async() const { return async_; }

 private:
  sync_fn sync_;
  async_fn async_;
};

}  // namespace parley
