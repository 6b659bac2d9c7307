// Typed tools without a model: the derived JSON Schema, the argument check and its messages,
// and plain, void and coroutine callables run through llm::tool::run.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/llm/typed_tool.hpp>

using namespace std::chrono_literals;
using parley::json;
namespace net = boost::asio;
namespace llm = parley::llm;

namespace {

// Runs one call of `t` to its end on a private io_context.
json call(const llm::tool& t, json args) {
  net::io_context io;
  json out;
  std::exception_ptr error;
  net::co_spawn(io, t.run(std::move(args)), [&](std::exception_ptr ep, json r) {
    error = ep;
    out = std::move(r);
  });
  io.run_for(5s);
  if (error) std::rethrow_exception(error);
  return out;
}

llm::tool weather() {
  return llm::make_tool(
      "weather", "The weather in a city.",
      {llm::param::string("city", "the city"),
       llm::param::enumeration("unit", "temperature unit", {"c", "f"}).optional(),
       llm::param::integer("days", "days ahead").optional(),
       llm::param::array("hours", "hours of the day", llm::param::integer("h", "")).optional(),
       llm::param::boolean("wind", "include the wind").optional(),
       llm::param::number("lat", "latitude").optional(),
       llm::param::any_json("extra", "anything").optional()},
      [](const llm::tool_args& a) {
        return a.get<std::string>("city") + " " + a.get_or<std::string>("unit", "c");
      });
}

}  // namespace

TEST_CASE("a typed tool derives its JSON Schema from its parameters") {
  const auto t = weather();
  CHECK(t.name == "weather");
  CHECK(t.description == "The weather in a city.");
  const json& p = t.parameters;
  CHECK(p["type"] == "object");
  CHECK(p["additionalProperties"] == false);
  CHECK(p["required"] == json::array({"city"}));
  CHECK(p["properties"]["city"] == json{{"type", "string"}, {"description", "the city"}});
  CHECK(p["properties"]["unit"]["enum"] == json::array({"c", "f"}));
  CHECK(p["properties"]["days"]["type"] == "integer");
  CHECK(p["properties"]["hours"]["items"] == json{{"type", "integer"}});
  CHECK(p["properties"]["wind"]["type"] == "boolean");
  CHECK(p["properties"]["lat"]["type"] == "number");
  CHECK_FALSE(p["properties"]["extra"].contains("type"));
  CHECK_FALSE(t.needs_approval);
}

TEST_CASE("arguments are checked against the schema, naming the argument and the type") {
  const auto s = weather().parameters;
  CHECK(llm::validate_arguments(s, {{"city", "Paris"}}).empty());
  CHECK(llm::validate_arguments(s, {{"city", "Paris"}, {"days", 2.0}, {"hours", {1, 2}}, {"extra", {1}}})
            .empty());
  CHECK(llm::validate_arguments(s, json::object()) ==
        "missing required argument 'city' (a string)");
  CHECK(llm::validate_arguments(s, {{"city", 3}}) == "argument 'city' must be a string, got 3");
  CHECK(llm::validate_arguments(s, {{"city", "P"}, {"days", "two"}}) ==
        "argument 'days' must be an integer, got \"two\"");
  CHECK(llm::validate_arguments(s, {{"city", "P"}, {"days", 1.5}}) ==
        "argument 'days' must be an integer, got 1.5");
  CHECK(llm::validate_arguments(s, {{"city", "P"}, {"unit", "k"}}) ==
        "argument 'unit' must be one of [\"c\",\"f\"], got \"k\"");
  CHECK(llm::validate_arguments(s, {{"city", "P"}, {"hours", {1, "x"}}}) ==
        "argument 'hours'[1] must be an integer, got \"x\"");
  CHECK(llm::validate_arguments(s, {{"city", "P"}, {"wind", "yes"}}) ==
        "argument 'wind' must be a boolean (true or false), got \"yes\"");
  CHECK(llm::validate_arguments(s, {{"city", "P"}, {"town", "x"}}).find("unknown argument 'town'") == 0);
  CHECK(llm::validate_arguments(s, json::array()).find("must be a JSON object") != std::string::npos);
  // A schema that allows other properties (an MCP server's, say) lets them through.
  CHECK(llm::validate_arguments({{"type", "object"}, {"properties", json::object()}}, {{"x", 1}})
            .empty());
}

TEST_CASE("plain, void and coroutine callables run and give JSON results") {
  CHECK(call(weather(), {{"city", "Oslo"}}) == "Oslo c");
  auto add = llm::make_tool("add", "Adds.", {llm::param::integer("a", ""), llm::param::integer("b", "")},
                            [](const llm::tool_args& a) { return a.get<int>("a") + a.get<int>("b"); });
  CHECK(call(add, {{"a", 2}, {"b", 3}}) == 5);
  int hits = 0;
  auto poke = llm::make_tool("poke", "Pokes.", {}, [&hits](const llm::tool_args&) { ++hits; });
  CHECK(call(poke, json::object()) == "OK");
  CHECK(hits == 1);
  auto later = llm::make_tool(
      "later", "Answers after a timer.", {llm::param::string("word", "")},
      [](const llm::tool_args& a) -> net::awaitable<std::string> {
        net::steady_timer t(co_await net::this_coro::executor, 1ms);
        co_await t.async_wait(net::use_awaitable);
        co_return "later " + a.get<std::string>("word");
      },
      {.needs_approval = true, .timeout = 2s});
  CHECK(later.needs_approval);
  CHECK(later.timeout == 2s);
  CHECK(call(later, {{"word", "hi"}}) == "later hi");
  auto js = llm::make_tool("js", "JSON.", {},
                           [](const llm::tool_args&) -> net::awaitable<json> { co_return json{{"k", 1}}; });
  CHECK(call(js, json::object()) == json{{"k", 1}});
  auto boom = llm::make_tool("boom", "Throws.", {}, [](const llm::tool_args&) -> int {
    throw std::runtime_error("kaput");
  });
  CHECK_THROWS_WITH(call(boom, json::object()), "kaput");
}

TEST_CASE("names the OpenAI format forbids and duplicate parameters are refused") {
  auto f = [](const llm::tool_args&) { return 1; };
  CHECK_THROWS_AS(llm::make_tool("has space", "", {}, f), std::invalid_argument);
  CHECK_THROWS_AS(llm::make_tool("", "", {}, f), std::invalid_argument);
  CHECK_THROWS_AS(llm::make_tool(std::string(65, 'a'), "", {}, f), std::invalid_argument);
  CHECK_THROWS_AS(llm::make_tool("dup", "", {llm::param::string("a", ""), llm::param::integer("a", "")}, f),
                  std::invalid_argument);
  CHECK_NOTHROW(llm::make_tool("ok_name-2", "", {}, f));
}
