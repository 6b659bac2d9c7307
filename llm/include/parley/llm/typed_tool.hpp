#pragma once
/// C++ functions as tools the model may call: a name, a description, typed parameters (whose
/// JSON Schema is derived) and a callable, plain or a coroutine.
///
///   auto add = llm::make_tool("add", "Adds two integers.",
///       {llm::param::integer("a", "the first"), llm::param::integer("b", "the second")},
///       [](const llm::tool_args& a) { return a.get<int>("a") + a.get<int>("b"); });
///   auto fetch = llm::make_tool("lookup", "Looks a word up.",
///       {llm::param::string("word", "the word"),
///        llm::param::enumeration("lang", "language", {"en", "fr"}).optional()},
///       [&](const llm::tool_args& a) -> net::awaitable<json> { co_return co_await dict(a); });
///
/// The reasoning state checks the model's arguments against the schema before the call (a
/// mismatch goes back to the model as a tool error naming the argument and the expected type),
/// and turns exceptions and timeouts into tool errors. The callable returns anything JSON can
/// hold (a string is given to the model as it is), or nothing ("OK").
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <parley/llm/tool.hpp>
#include <parley/net.hpp>

namespace parley::llm {

/// One parameter: its name, what it means for the model, and its JSON Schema.
struct param {
  std::string name;
  std::string description;
  json schema;  ///< the parameter's own schema, without the description
  bool required = true;

  static param integer(std::string name, std::string description);
  static param number(std::string name, std::string description);
  static param boolean(std::string name, std::string description);
  static param string(std::string name, std::string description);
  /// A string, one of `values`.
  static param enumeration(std::string name, std::string description,
                           std::vector<std::string> values);
  /// An array whose items have `item`'s schema (its name and description are not used).
  static param array(std::string name, std::string description, const param& item);
  /// Any JSON value (an object, a list, ...), unchecked.
  static param any_json(std::string name, std::string description);
  /// The same parameter, which the model may leave out.
  param optional() && {
    required = false;
    return std::move(*this);
  }
  param optional() const& {
    param p = *this;
    p.required = false;
    return p;
  }
};

/// The JSON Schema of a tool taking `params`: an object with these properties, the required
/// ones listed, no others allowed.
json schema_of(const std::vector<param>& params);

/// The arguments of one call, already checked against the tool's schema.
class tool_args {
 public:
  explicit tool_args(json args) : args_(std::move(args)) {}
  /// The argument `name` as a T. @throws json::exception when it is missing or not a T.
  template <class T>
  T get(std::string_view name) const {
    return args_.at(std::string(name)).get<T>();
  }
  /// The argument `name`, or `fallback` when the model left it out (or sent null).
  template <class T>
  T get_or(std::string_view name, T fallback) const {
    auto it = args_.find(std::string(name));
    return it == args_.end() || it->is_null() ? std::move(fallback) : it->get<T>();
  }
  bool has(std::string_view name) const { return args_.contains(std::string(name)); }
  const json& all() const { return args_; }

 private:
  json args_;
};

/// Settings of a tool besides its parameters.
struct tool_settings {
  bool needs_approval = false;  ///< ask the user (Yes/No) before each call
  std::chrono::milliseconds timeout{30'000};
};

namespace detail {
using sync_tool_fn = std::function<json(const tool_args&)>;
using async_tool_fn = std::function<net::awaitable<json>(const tool_args&)>;
tool make_sync_tool(std::string name, std::string description, std::vector<param> params,
                    sync_tool_fn fn, tool_settings settings);
tool make_async_tool(std::string name, std::string description, std::vector<param> params,
                     async_tool_fn fn, tool_settings settings);

template <class T>
struct is_awaitable : std::false_type {};
template <class T>
struct is_awaitable<net::awaitable<T>> : std::true_type {};
template <class T>
struct awaitable_value {};
template <class T>
struct awaitable_value<net::awaitable<T>> {
  using type = T;
};
}  // namespace detail

/// Builds a tool from a callable taking `const tool_args&` and returning a value, nothing, or
/// a net::awaitable of either. @throws std::invalid_argument for a name the OpenAI format
/// forbids (^[a-zA-Z0-9_-]{1,64}$) or two parameters with one name.
template <class F>
  requires std::invocable<F&, const tool_args&>
tool make_tool(std::string name, std::string description, std::vector<param> params, F fn,
               tool_settings settings = {}) {
  using R = std::invoke_result_t<F&, const tool_args&>;
  if constexpr (detail::is_awaitable<R>::value) {
    using V = typename detail::awaitable_value<R>::type;
    if constexpr (std::is_same_v<V, json>) {
      return detail::make_async_tool(std::move(name), std::move(description), std::move(params),
                                     std::move(fn), settings);
    } else {
      // Wraps the user's coroutine in one that converts its value: the user's callable is
      // kept alive by the shared_ptr the wrapper coroutine holds.
      auto f = std::make_shared<F>(std::move(fn));
      return detail::make_async_tool(
          std::move(name), std::move(description), std::move(params),
          [f](const tool_args& a) -> net::awaitable<json> {
            auto keep = f;  // the frame owns a reference, not the std::function
            if constexpr (std::is_void_v<V>) {
              co_await (*keep)(a);
              co_return json("OK");
            } else {
              co_return json(co_await (*keep)(a));
            }
          },
          settings);
    }
  } else {
    return detail::make_sync_tool(
        std::move(name), std::move(description), std::move(params),
        [f = std::move(fn)](const tool_args& a) mutable -> json {
          if constexpr (std::is_void_v<R>) {
            f(a);
            return json("OK");
          } else {
            return json(f(a));
          }
        },
        settings);
  }
}

/// Checks `args` against the JSON Schema `schema` (the subset tools use: type, properties,
/// required, additionalProperties, enum, items). Returns "" when they match, else what is
/// wrong, naming the argument and the expected type ("argument 'n' must be an integer, got
/// \"five\""). Any thread.
std::string validate_arguments(const json& schema, const json& args);

}  // namespace parley::llm
