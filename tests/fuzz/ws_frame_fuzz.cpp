// Fuzzes the WebSocket platform's frame reader: any text frame a client can send goes through
// parse_client_frame (the SAX fast path for the common frame, then the general path), and
// what comes out is encoded back the way the server answers. Checks, besides the sanitizers:
// it never throws; the fast path agrees with a plain tree parse on the common frame; every
// frame the server would send back is valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "ws_protocol.hpp"

namespace {

using namespace parley::platforms::detail;
using parley::json;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "ws_frame fuzz: %s\n", what);
    std::abort();
  }
}

// What the common frame must give: {"action": "user_message" | "agent_reply_str",
// "message": "<string>"} as any JSON parser reads it.
struct expected_text {
  bool common = false;
  bool human = false;
  std::string text;
};
expected_text expect(std::string_view frame) {
  expected_text e;
  json j = json::parse(frame, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return e;
  auto a = j.find("action");
  auto m = j.find("message");
  if (a == j.end() || m == j.end() || !a->is_string() || !m->is_string()) return e;
  const auto& action = a->get_ref<const std::string&>();
  if (action != "user_message" && action != "agent_reply_str") return e;
  e.common = true;
  e.human = action == "user_message";
  e.text = m->get<std::string>();
  return e;
}

void check_frame_out(const std::string& frame) {
  check(json::accept(frame), "an outgoing frame is not valid JSON");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  client_input in = parse_client_frame(text, 4096);  // documented: never throws

  const expected_text want = expect(text);
  if (want.common) {
    const auto* ev = std::get_if<input_event>(&in);
    check(ev != nullptr, "a common frame did not give an event");
    check(ev->ev.kind() == parley::event_kind::text, "a common frame did not give a text event");
    check(ev->ev.text() == want.text, "the fast path read another message than the tree");
    check(ev->ev.human() == want.human, "the fast path read another action than the tree");
  }

  // What the server does next with each kind of input, as far as it is pure.
  if (const auto* ev = std::get_if<input_event>(&in)) {
    parley::reply r;
    r.text = ev->ev.text();
    check_frame_out(encode_reply(r));
    if (ev->ev.kind() == parley::event_kind::json) {
      r.kind = parley::reply_kind::json;
      r.data = ev->ev.payload();
      check_frame_out(encode_reply(r));
    }
    parley::chat_message row;
    row.type = ev->ev.kind() == parley::event_kind::json ? "json" : "text";
    row.content = ev->ev.kind() == parley::event_kind::json
                      ? ev->ev.payload().dump(-1, ' ', false, json::error_handler_t::replace)
                      : ev->ev.text();
    row.is_user = true;
    check_frame_out(encode_history(row));
  } else if (const auto* err = std::get_if<input_error>(&in)) {
    check(!err->message.empty(), "an error without a message");
    check_frame_out(encode_error(err->message));
  } else if (const auto* vars = std::get_if<input_set_variables>(&in)) {
    check(vars->values.is_object(), "user_set_variable gave something other than an object");
  }
  // Stored rows come back as history frames whatever their content.
  parley::chat_message stored;
  stored.type = size > 0 && (data[0] & 1) ? "options" : "json";
  stored.content = std::string(text);
  check_frame_out(encode_history(stored));
  return 0;
}
