#include "a2a_server.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <parley/agent.hpp>
#include <parley/log.hpp>

#include "ws_protocol.hpp"

namespace parley::platforms::detail::a2a {

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

rpc_error params_error(std::string m) { return {error_code::invalid_params, std::move(m)}; }

std::string required_id(const json& params) {
  auto it = params.find("id");
  if (it == params.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    throw params_error("params.id (the task's id) is required");
  return it->get<std::string>();
}

std::optional<std::size_t> history_length(const json& params) {
  auto it = params.find("historyLength");
  if (it == params.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0)
    throw params_error("params.historyLength must be a non-negative integer");
  return static_cast<std::size_t>(it->get<std::int64_t>());
}

json skills_of(const parley::agent& a, const a2a_options& o) {
  json skills = json::array();
  const auto slug = [](std::string s) {
    for (auto& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-';
    return s;
  };
  for (const auto& entry : o.skills) {
    const auto colon = entry.find(':');
    std::string name = entry.substr(0, colon);
    std::string desc = colon == std::string::npos ? name : entry.substr(colon + 1);
    while (!desc.empty() && desc.front() == ' ') desc.erase(0, 1);
    skills.push_back({{"id", slug(name)}, {"name", name}, {"description", desc}, {"tags", json::array({"configured"})}});
  }
  if (!o.skills.empty()) return skills;
  for (const auto& i : a.intents()) {
    json ex = json::array();
    for (std::size_t k = 0; k < i.training_sentences().size() && k < 3; ++k) ex.push_back(i.training_sentences()[k]);
    skills.push_back({{"id", i.name()}, {"name", i.name()},
                      {"description", i.description().empty() ? "understands '" + i.name() + "'" : i.description()},
                      {"tags", json::array({"intent"})}, {"examples", std::move(ex)}});
  }
  if (skills.empty())
    skills.push_back({{"id", "chat"}, {"name", "chat"}, {"description", o.description}, {"tags", json::array({"chat"})}});
  return skills;
}

// A blocking SendMessage: answered once, by the task's end or by wait_timeout, whichever comes
// first.
struct waiter {
  waiter(std::shared_ptr<exchange> ex, json rpc_id)
      : x(std::move(ex)), id(std::move(rpc_id)), timer(x->executor()) {}
  std::shared_ptr<exchange> x;
  json id;
  net::steady_timer timer;
  std::atomic<bool> answered{false};
  std::uint64_t listener = 0;
  std::string task_id;
};

}  // namespace

server::server(parley::agent& owner, parley::platform* plat, a2a_options opts, bool needs_token,
               std::size_t max_file_size)
    : agent_(owner), tasks_(std::make_shared<task_store>(owner, plat, std::move(opts))),
      needs_token_(needs_token), max_file_size_(max_file_size) {}

std::string server::card(std::string_view scheme, std::string_view host) const {
  const auto& o = options();
  const std::string url = !o.url.empty() ? o.url : std::string(scheme) + "://" + std::string(host) + o.path;
  json card = {
      {"name", o.name.empty() ? agent_.name() : o.name},
      {"description", o.description},
      {"version", o.version},
      {"supportedInterfaces", json::array({{{"url", url}, {"protocolBinding", "JSONRPC"},
                                            {"protocolVersion", protocol_version}}})},
      {"capabilities", {{"streaming", true}, {"pushNotifications", false}, {"extendedAgentCard", false}}},
      {"defaultInputModes", json::array({"text/plain", "application/json"})},
      {"defaultOutputModes", json::array({"text/plain", "text/markdown", "text/html", "application/json"})},
      {"skills", skills_of(agent_, o)},
  };
  if (needs_token_) {
    card["securitySchemes"] = {{"bearer", {{"httpAuthSecurityScheme", {{"scheme", "Bearer"}}}}}};
    card["securityRequirements"] = json::array({{{"schemes", {{"bearer", {{"list", json::array()}}}}}}});
  }
  return dump(card);
}

void server::handle(const rpc_request& r, const std::shared_ptr<exchange>& x) {
  json id = nullptr;
  try {
    const auto& ct = r.content_type;
    if (!ct.empty() && ct.find("json") == std::string::npos)
      throw rpc_error{error_code::content_type_not_supported,
                      "Content-Type '" + ct + "' is not supported; send application/json"};
    if (nests_too_deep(r.body))
      throw rpc_error{error_code::parse_error, "the request nests JSON more than 64 levels deep"};
    const json req = json::parse(r.body, nullptr, false);
    if (req.is_discarded())
      throw rpc_error{error_code::parse_error, "Invalid JSON payload: the body is not JSON"};
    if (!req.is_object())
      throw rpc_error{error_code::invalid_request,
                      req.is_array() ? "batch requests are not supported; send one request object"
                                     : "the request must be a JSON-RPC 2.0 object"};
    if (auto it = req.find("id"); it != req.end()) {
      if (!it->is_string() && !it->is_number_integer() && !it->is_null())
        throw rpc_error{error_code::invalid_request, "'id' must be a string, an integer or null"};
      id = *it;
    }
    if (req.value("jsonrpc", json()) != "2.0")
      throw rpc_error{error_code::invalid_request, "'jsonrpc' must be \"2.0\""};
    auto m = req.find("method");
    if (m == req.end() || !m->is_string())
      throw rpc_error{error_code::invalid_request, "'method' must be a string"};
    // An absent header means 0.3 (spec §3.6.2).
    std::string version = r.version.value_or("");
    while (!version.empty() && version.back() == ' ') version.pop_back();
    while (!version.empty() && version.front() == ' ') version.erase(0, 1);
    if (version.empty()) version = "0.3";
    if (version != protocol_version)
      throw rpc_error{error_code::version_not_supported,
                      "The requested A2A protocol version '" + version +
                          "' is not supported. Supported versions: 1.0 (send the header "
                          "A2A-Version: 1.0)"};
    const json params = req.value("params", json::object());
    if (!params.is_object()) throw params_error("'params' must be an object");
    const std::string& method = m->get_ref<const std::string&>();
    if (method == "SendMessage") return send_message(id, params, false, x);
    if (method == "SendStreamingMessage") return send_message(id, params, true, x);
    if (method == "SubscribeToTask") return subscribe(id, params, x);
    if (method == "GetTask")
      return x->respond(dump(result_response(id, tasks_->get(required_id(params), history_length(params)))));
    if (method == "CancelTask")
      return x->respond(dump(result_response(id, tasks_->cancel(required_id(params)))));
    if (method == "ListTasks") return x->respond(dump(result_response(id, tasks_->list(params))));
    if (method.find("PushNotificationConfig") != std::string::npos)
      throw rpc_error{error_code::push_notification_not_supported,
                      "push notifications are not supported; use SendStreamingMessage or "
                      "SubscribeToTask"};
    if (method == "GetExtendedAgentCard")
      throw rpc_error{error_code::extended_card_not_configured, "this agent has no extended card"};
    throw rpc_error{error_code::method_not_found,
                    "Method not found: '" + method + "' (A2A v1.0 names: SendMessage, "
                    "SendStreamingMessage, GetTask, CancelTask, ListTasks, SubscribeToTask)"};
  } catch (const rpc_error& e) {
    x->respond(dump(error_response(id, e)));
  } catch (const std::exception& e) {
    PARLEY_LOG(warn, "a2a: request failed: " << e.what());
    x->respond(dump(error_response(id, {error_code::internal_error, e.what()})));
  }
}

void server::send_message(const json& id, const json& params, bool stream,
                          const std::shared_ptr<exchange>& x) {
  const json message = params.value("message", json());
  incoming_message in = read_message(message, max_file_size_);
  bool immediately = false;
  if (auto c = params.find("configuration"); c != params.end() && c->is_object())
    immediately = c->value("returnImmediately", false);
  if (stream) {
    tasks_->send(std::move(in), message, [x, id](const json& ev, const json* final_task) {
      x->event(dump(result_response(id, ev)), final_task != nullptr);
    });
    return;
  }
  if (immediately) {
    const json t = tasks_->send(std::move(in), message);
    return x->respond(dump(result_response(id, {{"task", t}})));
  }
  auto w = std::make_shared<waiter>(x, id);
  const json t = tasks_->send(
      std::move(in), message,
      [w](const json&, const json* final_task) {
        if (!final_task || w->answered.exchange(true)) return;
        w->x->respond(dump(result_response(w->id, {{"task", *final_task}})));
        net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
      },
      &w->listener);
  w->task_id = t.value("id", "");
  w->timer.expires_after(options().wait_timeout);
  w->timer.async_wait([w, store = tasks_](boost::system::error_code ec) {
    if (ec || w->answered.exchange(true)) return;
    store->unsubscribe(w->task_id, w->listener);
    json now;
    try {
      now = store->get(w->task_id);
    } catch (const rpc_error& e) {
      return w->x->respond(dump(error_response(w->id, e)));
    }
    w->x->respond(dump(result_response(w->id, {{"task", std::move(now)}})));
  });
}

void server::subscribe(const json& id, const json& params, const std::shared_ptr<exchange>& x) {
  tasks_->subscribe(required_id(params), [x, id](const json& ev, const json* final_task) {
    x->event(dump(result_response(id, ev)), final_task != nullptr);
  });
}

}  // namespace parley::platforms::detail::a2a
