// Typed tools: parameter schemas, the tool's schema, and the argument check the reasoning
// state runs before every call.
#include <parley/llm/typed_tool.hpp>

#include <set>
#include <stdexcept>

namespace parley::llm {

namespace {

param make(std::string name, std::string description, json schema) {
  return param{std::move(name), std::move(description), std::move(schema), true};
}

void check_name(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-") == std::string::npos;
  if (!ok)
    throw std::invalid_argument("tool name '" + name +
                                "' is not allowed: use 1 to 64 letters, digits, '_' or '-'");
}

tool base(std::string name, std::string description, const std::vector<param>& params,
          const tool_settings& settings) {
  check_name(name);
  tool t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.parameters = schema_of(params);
  t.needs_approval = settings.needs_approval;
  t.timeout = settings.timeout;
  return t;
}

net::awaitable<json> run_sync(std::shared_ptr<detail::sync_tool_fn> fn, json args) {
  tool_args a(std::move(args));
  co_return (*fn)(a);
}

net::awaitable<json> run_async(std::shared_ptr<detail::async_tool_fn> fn, json args) {
  tool_args a(std::move(args));  // lives in this frame while the user's coroutine runs
  co_return co_await (*fn)(a);
}

// "an integer", "a string", ... for error messages.
std::string describe_type(const json& schema) {
  if (!schema.is_object()) return "any value";
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array())
    return "one of " + e->dump();
  auto t = schema.find("type");
  if (t == schema.end()) return "any value";
  auto one = [](const std::string& n) -> std::string {
    if (n == "integer") return "an integer";
    if (n == "number") return "a number";
    if (n == "boolean") return "a boolean (true or false)";
    if (n == "string") return "a string";
    if (n == "array") return "an array";
    if (n == "object") return "an object";
    if (n == "null") return "null";
    return n;
  };
  if (t->is_string()) {
    auto s = one(t->get<std::string>());
    if (*t == "array")
      if (auto it = schema.find("items"); it != schema.end()) s += " of " + describe_type(*it);
    return s;
  }
  if (t->is_array()) {
    std::string s;
    for (const auto& x : *t) {
      if (!x.is_string()) continue;
      if (!s.empty()) s += " or ";
      s += one(x.get<std::string>());
    }
    return s;
  }
  return "any value";
}

bool has_type(const json& v, const std::string& t) {
  if (t == "integer")
    return v.is_number_integer() ||
           (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<long long>(v.get<double>())));
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "string") return v.is_string();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  if (t == "null") return v.is_null();
  return true;  // a type we do not know: let the tool judge
}

std::string shown(const json& v) {
  auto s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// "" when `v` matches `schema`, else why not; `where` names the value ("argument 'n'").
std::string check(const json& schema, const json& v, const std::string& where) {
  if (!schema.is_object()) return {};
  if (auto t = schema.find("type"); t != schema.end()) {
    bool ok = false;
    if (t->is_string())
      ok = has_type(v, t->get<std::string>());
    else if (t->is_array())
      for (const auto& x : *t) ok = ok || (x.is_string() && has_type(v, x.get<std::string>()));
    else
      ok = true;
    if (!ok) return where + " must be " + describe_type(schema) + ", got " + shown(v);
  }
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array()) {
    bool found = false;
    for (const auto& x : *e) found = found || x == v;
    if (!found) return where + " must be one of " + e->dump() + ", got " + shown(v);
  }
  if (v.is_array())
    if (auto items = schema.find("items"); items != schema.end())
      for (std::size_t i = 0; i < v.size(); ++i)
        if (auto err = check(*items, v[i], where + "[" + std::to_string(i) + "]"); !err.empty())
          return err;
  if (v.is_object() && schema.contains("properties")) {
    const json& props = schema["properties"];
    if (auto req = schema.find("required"); req != schema.end() && req->is_array())
      for (const auto& r : *req)
        if (r.is_string() && !v.contains(r.get<std::string>())) {
          std::string what = "missing required argument '" + r.get<std::string>() + "'";
          if (where != "the arguments") what += " in " + where;
          if (props.is_object() && props.contains(r.get<std::string>()))
            what += " (" + describe_type(props[r.get<std::string>()]) + ")";
          return what;
        }
    const bool closed = schema.value("additionalProperties", json(true)) == json(false);
    for (const auto& [k, x] : v.items()) {
      if (props.is_object() && props.contains(k)) {
        if (auto err = check(props[k], x, "argument '" + k + "'"); !err.empty()) return err;
      } else if (closed) {
        std::string known;
        if (props.is_object())
          for (const auto& [name, _] : props.items()) known += (known.empty() ? "" : ", ") + name;
        return "unknown argument '" + k + "'; the parameters are: " +
               (known.empty() ? std::string("none") : known);
      }
    }
  }
  return {};
}

}  // namespace

param param::integer(std::string n, std::string d) {
  return make(std::move(n), std::move(d), {{"type", "integer"}});
}
param param::number(std::string n, std::string d) {
  return make(std::move(n), std::move(d), {{"type", "number"}});
}
param param::boolean(std::string n, std::string d) {
  return make(std::move(n), std::move(d), {{"type", "boolean"}});
}
param param::string(std::string n, std::string d) {
  return make(std::move(n), std::move(d), {{"type", "string"}});
}
param param::enumeration(std::string n, std::string d, std::vector<std::string> values) {
  return make(std::move(n), std::move(d), {{"type", "string"}, {"enum", std::move(values)}});
}
param param::array(std::string n, std::string d, const param& item) {
  return make(std::move(n), std::move(d), {{"type", "array"}, {"items", item.schema}});
}
param param::any_json(std::string n, std::string d) {
  return make(std::move(n), std::move(d), json::object());
}

json schema_of(const std::vector<param>& params) {
  json props = json::object();
  json required = json::array();
  for (const auto& p : params) {
    if (props.contains(p.name))
      throw std::invalid_argument("parameter '" + p.name + "' is declared twice");
    json s = p.schema;
    if (!p.description.empty()) s["description"] = p.description;
    props[p.name] = std::move(s);
    if (p.required) required.push_back(p.name);
  }
  return {{"type", "object"},
          {"properties", std::move(props)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

std::string validate_arguments(const json& schema, const json& args) {
  if (!args.is_object())
    return "the arguments must be a JSON object of named parameters, got " + shown(args);
  return check(schema, args, "the arguments");
}

namespace detail {

tool make_sync_tool(std::string name, std::string description, std::vector<param> params,
                    sync_tool_fn fn, tool_settings settings) {
  tool t = base(std::move(name), std::move(description), params, settings);
  t.run = [f = std::make_shared<sync_tool_fn>(std::move(fn))](json args) {
    return run_sync(f, std::move(args));
  };
  return t;
}

tool make_async_tool(std::string name, std::string description, std::vector<param> params,
                     async_tool_fn fn, tool_settings settings) {
  tool t = base(std::move(name), std::move(description), params, settings);
  t.run = [f = std::make_shared<async_tool_fn>(std::move(fn))](json args) {
    return run_async(f, std::move(args));
  };
  return t;
}

}  // namespace detail
}  // namespace parley::llm
