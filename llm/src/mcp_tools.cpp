#include <parley/llm/mcp_tools.hpp>

#include <cstdio>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <parley/fnv.hpp>
#include <parley/log.hpp>

namespace parley::llm {

namespace {

constexpr std::size_t max_name = 64;

bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string hash8(std::string_view server, std::string_view tool) {
  // FNV-1a 64 over "server\0tool": stable across runs and builds, so names do not move. (Its
  // basis is not FNV's offset, a digit short; kept, as names already given depend on it.)
  const std::uint64_t h = fnv1a_pair(server, tool, 1469598103934665603ull);
  char out[9];
  std::snprintf(out, sizeof out, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return out;
}

// `base` cut so that "_" + hash fits in 64.
std::string with_hash(std::string base, std::string_view server, std::string_view tool) {
  if (base.size() > max_name - 9) base.resize(max_name - 9);
  return base + "_" + hash8(server, tool);
}

std::string describe_bytes(const json& block, const char* field) {
  auto data = block.find(field);
  std::size_t n = data != block.end() && data->is_string() ? data->get_ref<const std::string&>().size() * 3 / 4 : 0;
  return std::to_string(n) + " bytes";
}

// A free coroutine whose parameters live in its frame (GCC 12 mishandles lambda coroutines'
// captures).
net::awaitable<json> call_mcp_tool(std::shared_ptr<mcp_client> server, std::string name,
                                   json arguments) {
  json r = co_await server->call_tool(std::move(name), std::move(arguments));
  std::string text = mcp_result_text(r);
  if (r.value("isError", false))
    throw mcp_tool_error(text.empty() ? "the tool failed and said nothing" : text);
  co_return json(std::move(text));
}

net::awaitable<std::vector<mcp_tool_info>> start_and_list(std::shared_ptr<mcp_client> c) {
  co_await c->start();
  co_return co_await c->list_tools();
}

}  // namespace

std::string mcp_tool_name(std::string_view server, std::string_view tool) {
  std::string name;
  name.reserve(server.size() + 2 + tool.size());
  for (char c : server) name += allowed(c) ? c : '_';
  name += "__";
  for (char c : tool) name += allowed(c) ? c : '_';
  if (name.size() > max_name) return with_hash(std::move(name), server, tool);
  return name;
}

std::string mcp_result_text(const json& result) {
  std::string out;
  bool any_text = false;
  auto add = [&](const std::string& s) {
    if (!out.empty()) out += "\n";
    out += s;
  };
  if (auto content = result.find("content"); content != result.end() && content->is_array()) {
    for (const auto& b : *content) {
      if (!b.is_object()) continue;
      const std::string type = b.value("type", "");
      if (type == "text") {
        add(b.value("text", ""));
        any_text = true;
      } else if (type == "image" || type == "audio") {
        add("[" + type + " " + b.value("mimeType", "?") + ", " + describe_bytes(b, "data") +
            ", not shown]");
      } else if (type == "resource_link") {
        std::string s = "[resource link " + b.value("name", "") + ": " + b.value("uri", "");
        if (auto d = b.value("description", ""); !d.empty()) s += " - " + d;
        add(s + "]");
      } else if (type == "resource") {
        const json r = b.value("resource", json::object());
        std::string head = "[resource " + r.value("uri", "");
        if (auto m = r.value("mimeType", ""); !m.empty()) head += " (" + m + ")";
        if (r.contains("text") && r["text"].is_string()) {
          add(head + "]\n" + r["text"].get<std::string>());
          any_text = true;
        } else {
          add(head + ", " + describe_bytes(r, "blob") + " of binary data, not shown]");
        }
      } else {
        add("[" + (type.empty() ? std::string("unknown") : type) + " content, not shown]");
      }
    }
  }
  if (auto sc = result.find("structuredContent"); sc != result.end() && !sc->is_null() && !any_text)
    add(sc->dump(-1, ' ', false, json::error_handler_t::replace));
  return out;
}

const mcp_tool_binding* mcp_toolset::find(std::string_view llm_name) const {
  for (const auto& b : bindings)
    if (b.llm_name == llm_name) return &b;
  return nullptr;
}

void mcp_toolset::add(std::shared_ptr<mcp_client> server, const std::vector<mcp_tool_info>& listed) {
  const std::string& sname = server->options().name;
  std::set<std::string> taken;
  for (const auto& b : bindings) taken.insert(b.llm_name);
  for (const auto& info : listed) {
    std::string name = mcp_tool_name(sname, info.name);
    // Two tools that sanitise alike ("a.b", "a_b"): the later one gets the hash suffix.
    if (taken.count(name)) name = with_hash(name, sname, info.name);
    for (int salt = 0; taken.count(name); ++salt)  // a hash clash: vanishingly rare
      name = with_hash(name, sname, info.name + std::to_string(salt));
    taken.insert(name);

    tool t;
    t.name = name;
    t.description = info.description.empty() ? info.title : info.description;
    // The schema as the server gave it, less "$schema" (metadata some model servers refuse),
    // with the "type" and "properties" strict OpenAI-compatible servers expect.
    t.parameters = info.input_schema;
    t.parameters.erase("$schema");
    if (!t.parameters.contains("type")) t.parameters["type"] = "object";
    if (t.parameters["type"] == "object" && !t.parameters.contains("properties"))
      t.parameters["properties"] = json::object();
    t.timeout = server->options().timeout;
    t.run = [server, mcp_name = info.name](json arguments) {
      return call_mcp_tool(server, mcp_name, std::move(arguments));
    };
    tools.push_back(std::move(t));
    bindings.push_back({name, sname, info.name});
  }
  servers.push_back(std::move(server));
}

void mcp_toolset::shutdown() {
  for (auto& s : servers) s->shutdown();
}

net::awaitable<void> mcp_toolset::close() {
  shutdown();
  for (auto& s : servers) co_await s->wait_exited();
}

net::awaitable<mcp_toolset> tools_of(std::shared_ptr<mcp_client> server) {
  auto listed = co_await server->list_tools();
  mcp_toolset set;
  set.add(std::move(server), listed);
  co_return set;
}

// ---- configuration ---------------------------------------------------------------------------

std::vector<mcp_server_options> mcp_servers_from(config& cfg) {
  const std::string prefix = "mcp.servers.";
  // Keys nobody declared are kept with their values and listed as "key (source)".
  std::map<std::string, std::vector<std::string>> found;  // server -> keys
  for (const auto& entry : cfg.unknown_keys()) {
    std::string key = entry.substr(0, entry.find(' '));
    if (key.rfind(prefix, 0) != 0) continue;
    std::string rest = key.substr(prefix.size());
    auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0)
      throw config_error("config key '" + key + "' names no setting: use mcp.servers.NAME.command "
                         "(and .args, .env, .pass_env, .timeout)");
    found[rest.substr(0, dot)].push_back(key);
  }
  // Servers declared before (a second call) are read again.
  for (const auto& [key, k] : cfg.declared())
    if (key.rfind(prefix, 0) == 0) {
      std::string rest = key.substr(prefix.size());
      found[rest.substr(0, rest.find('.'))];
    }

  std::vector<mcp_server_options> out;
  for (auto& [name, keys] : found) {
    const std::string base = prefix + name + ".";
    for (const auto& key : keys) {
      std::string setting = key.substr(base.size());
      const json* set = cfg.find_set_value(key);
      const json raw = set ? *set : json();
      if (setting == "command") {
        cfg.declare(key, config_type::string, "", "MCP server command (a path or a program on PATH)");
      } else if (setting == "args") {
        cfg.declare(key, config_type::string_list, json::array(), "MCP server arguments");
        if (raw.is_string()) cfg.set_text(key, raw.get<std::string>(), "config");
      } else if (setting == "pass_env") {
        cfg.declare(key, config_type::string_list, json::array(),
                    "names of our environment variables the MCP server also gets");
        if (raw.is_string()) cfg.set_text(key, raw.get<std::string>(), "config");
      } else if (setting == "timeout") {
        cfg.declare(key, config_type::number, 60.0, "seconds an MCP request may take");
      } else if (setting.rfind("env.", 0) == 0 && setting.size() > 4) {
        if (raw.is_number() || raw.is_boolean()) cfg.set(key, raw.dump(), "config");
        cfg.declare(key, config_type::string, "", "environment variable for the MCP server");
      } else {
        throw config_error("config key '" + key + "': '" + setting +
                           "' is not an MCP server setting: use command, args, env.VAR, pass_env or timeout");
      }
    }
    mcp_server_options o;
    o.name = name;
    if (cfg.contains(base + "command")) o.command = cfg.get_string(base + "command");
    if (o.command.empty())
      throw config_error("MCP server '" + name + "' has no command: set " + base +
                         "command (e.g. mcp-server-filesystem)");
    if (cfg.contains(base + "args")) o.args = cfg.get_strings(base + "args");
    if (cfg.contains(base + "pass_env")) o.pass_env = cfg.get_strings(base + "pass_env");
    if (cfg.contains(base + "timeout")) {
      double s = cfg.get_double(base + "timeout");
      if (!(s > 0))
        throw config_error(base + "timeout must be above 0 seconds, got " + std::to_string(s));
      o.timeout = std::chrono::milliseconds(static_cast<long long>(s * 1000));
    }
    for (const auto& [key, k] : cfg.declared())
      if (key.rfind(base + "env.", 0) == 0) o.env[key.substr(base.size() + 4)] = cfg.get_string(key);
    out.push_back(std::move(o));
  }
  return out;
}

net::awaitable<mcp_toolset> start_mcp_servers(net::any_io_executor executor,
                                              std::vector<mcp_server_options> servers) {
  // Every server starts at once; the results are gathered on a strand of their own.
  struct gather {
    static net::awaitable<void> wait(std::shared_ptr<gather> g) {
      if (g->left > 0) co_await g->done.async_wait(net::as_tuple(net::use_awaitable));
    }
    explicit gather(net::any_io_executor ex) : strand(net::make_strand(ex)), done(strand) {
      done.expires_at(clock::time_point::max());
    }
    net::strand<net::any_io_executor> strand;
    net::steady_timer done;
    std::size_t left = 0;
    std::vector<std::shared_ptr<mcp_client>> clients;
    std::vector<std::vector<mcp_tool_info>> listed;
    std::exception_ptr first_error;
  };
  auto g = std::make_shared<gather>(executor);
  g->left = servers.size();
  g->listed.resize(servers.size());
  for (auto& o : servers) g->clients.push_back(std::make_shared<mcp_client>(executor, std::move(o)));
  if (g->clients.empty()) co_return mcp_toolset{};
  for (std::size_t i = 0; i < g->clients.size(); ++i) {
    auto c = g->clients[i];
    net::co_spawn(
        executor, start_and_list(c),
        net::bind_executor(g->strand,
                           [g, i](std::exception_ptr e, std::vector<mcp_tool_info> tools) {
                             if (e && !g->first_error) g->first_error = e;
                             g->listed[i] = std::move(tools);
                             if (--g->left == 0) g->done.cancel();
                           }));
  }
  co_await net::co_spawn(g->strand, gather::wait(g), net::use_awaitable);
  if (g->first_error) {
    for (auto& c : g->clients) c->shutdown();
    for (auto& c : g->clients) co_await c->wait_exited();
    std::rethrow_exception(g->first_error);
  }
  mcp_toolset set;
  for (std::size_t i = 0; i < g->clients.size(); ++i) set.add(g->clients[i], g->listed[i]);
  PARLEY_LOG(info, "mcp: " << set.servers.size() << " server(s), " << set.tools.size() << " tool(s)");
  co_return set;
}

}  // namespace parley::llm
