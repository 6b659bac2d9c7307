#include "gen_ai_spans.hpp"

#include <parley/agent.hpp>
#include <parley/log.hpp>

namespace parley::llm::detail {

namespace {

// server.address and server.port of a base URL, without credentials or path.
void set_server(span& sp, const std::string& base_url) {
  std::string_view rest = base_url;
  const bool tls = rest.rfind("https://", 0) == 0;
  if (const auto scheme = rest.find("://"); scheme != std::string_view::npos)
    rest = rest.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string_view host = rest;
  std::int64_t port = tls ? 443 : 80;
  const auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(']', colon) == std::string_view::npos) {
    host = rest.substr(0, colon);
    try {
      port = std::stoll(std::string(rest.substr(colon + 1)));
    } catch (const std::exception&) {
    }
  }
  sp.set("server.address", std::string(host));
  sp.set("server.port", port);
}

}  // namespace

std::optional<span> start_chat_span(const session& s, const client& model, const chat_request& req) {
  const span* turn = s.turn_span();
  if (!turn) return std::nullopt;
  const std::string& name = req.model.empty() ? model.options().model : req.model;
  std::optional<span> sp = turn->child(name.empty() ? "chat" : "chat " + name, span_kind::client);
  sp->set("gen_ai.operation.name", "chat");
  sp->set("gen_ai.provider.name", "openai");  // the protocol spoken: OpenAI's chat completions
  if (!name.empty()) sp->set("gen_ai.request.model", name);
  sp->set("gen_ai.conversation.id", session_tag(s.id()));
  sp->set("gen_ai.agent.name", s.agent().name());
  if (req.stream) sp->set("gen_ai.request.stream", true);
  set_server(*sp, model.options().base_url);
  if (s.trace_content())  // text from users and models: bad UTF-8 is replaced, never thrown on
    sp->set("gen_ai.input.messages", req.messages.dump(-1, ' ', false, json::error_handler_t::replace));
  return sp;
}

void end_chat_span(const session& s, std::optional<span>& sp, const chat_result& res) {
  if (!sp) return;
  if (!res.model.empty()) sp->set("gen_ai.response.model", res.model);
  if (res.usage) {
    sp->set("gen_ai.usage.input_tokens", res.usage->prompt_tokens);
    sp->set("gen_ai.usage.output_tokens", res.usage->completion_tokens);
  }
  if (!res.finish_reason.empty())
    sp->set("gen_ai.response.finish_reasons", std::vector<std::string>{res.finish_reason});
  sp->set("parley.llm.latency_ms", static_cast<std::int64_t>(res.latency.count()));
  sp->set("parley.llm.attempts", res.attempts);
  sp->set("parley.llm.tool_calls", res.tool_calls.size());
  if (s.trace_content() && !res.text.empty()) sp->set("gen_ai.output.messages", res.text);
  s.export_span(std::move(*sp));
  sp.reset();
}

void fail_chat_span(const session& s, std::optional<span>& sp, const error& e) {
  if (!sp) return;
  // The error's text names the URL, never the key; its kind is the low-cardinality type.
  sp->fail(std::string(to_string(e.kind())), e.what());
  if (e.status() != 0) sp->set("http.response.status_code", e.status());
  s.export_span(std::move(*sp));
  sp.reset();
}

void trace_tool_call(const session& s, const tool_trace& t) {
  const span* turn = s.turn_span();
  if (!turn) return;
  span sp = turn->child("execute_tool " + t.call.name);
  sp.start = t.started;
  sp.end = t.started + std::chrono::duration_cast<wall_clock::duration>(
                           std::chrono::duration<double, std::milli>(t.latency_ms));
  sp.set("gen_ai.operation.name", "execute_tool");
  sp.set("gen_ai.tool.name", t.call.name);
  sp.set("gen_ai.tool.call.id", t.call.id);
  sp.set("gen_ai.tool.type", "function");
  sp.set("gen_ai.conversation.id", session_tag(s.id()));
  if (!t.error_type.empty()) sp.fail(t.error_type);
  if (s.trace_content()) {
    sp.set("gen_ai.tool.call.arguments", t.call.arguments);
    sp.set("gen_ai.tool.call.result", t.result);
  }
  s.export_span(std::move(sp));
}

}  // namespace parley::llm::detail
