// Lineage on the wire, and the ids it is made of.
#include <parley/agent_link.hpp>

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace parley {

namespace {
// A depth beyond any configurable max_agent_depth: clamps forged depths without overflow.
constexpr std::int64_t max_wire_depth = 1'000'000;

std::string type_of(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a fractional number";
    default: return "a number";
  }
}

bool fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

bool read_string(const json& j, const char* key, std::string& out, std::string* error) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string())
    return fail(error, std::string("lineage field '") + key + "' must be a string, got " +
                           type_of(*it));
  out = it->get<std::string>();
  return true;
}
}  // namespace

json lineage::to_json() const {
  return {{"id", id},
          {"causation_id", causation_id},
          {"correlation_id", correlation_id},
          {"sender", {{"agent", sender_agent}, {"session", sender_session}}},
          {"depth", depth}};
}

std::optional<lineage> lineage::from_json(const json& j, std::string* error) {
  if (!j.is_object()) {
    fail(error, "lineage must be an object, got " + type_of(j));
    return std::nullopt;
  }
  lineage l;
  auto id = j.find("id");
  if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    fail(error, id == j.end() ? "lineage field 'id' is missing; send a unique string"
                              : "lineage field 'id' must be a non-empty string, got " +
                                    (id->is_string() ? std::string("\"\"") : type_of(*id)));
    return std::nullopt;
  }
  l.id = id->get<std::string>();
  if (!read_string(j, "causation_id", l.causation_id, error) ||
      !read_string(j, "correlation_id", l.correlation_id, error))
    return std::nullopt;
  if (auto s = j.find("sender"); s != j.end() && !s->is_null()) {
    if (!s->is_object()) {
      fail(error, "lineage field 'sender' must be an object {\"agent\",\"session\"}, got " +
                      type_of(*s));
      return std::nullopt;
    }
    if (!read_string(*s, "agent", l.sender_agent, error) ||
        !read_string(*s, "session", l.sender_session, error))
      return std::nullopt;
  }
  if (auto d = j.find("depth"); d != j.end() && !d->is_null()) {
    if (!d->is_number_integer()) {
      fail(error, "lineage field 'depth' must be an integer, got " + type_of(*d));
      return std::nullopt;
    }
    // Unsigned values above int64 come back as huge; a negative depth would let a forged
    // message hop forever: both are clamped into 0..max_wire_depth.
    const std::int64_t v = d->is_number_unsigned()
                               ? static_cast<std::int64_t>(std::min<std::uint64_t>(
                                     d->get<std::uint64_t>(), max_wire_depth))
                               : d->get<std::int64_t>();
    l.depth = static_cast<int>(std::clamp<std::int64_t>(v, 0, max_wire_depth));
  }
  return l;
}

std::string random_id() {
  // 128 bits from the kernel's CSPRNG (getrandom(2) blocks only until the pool is first seeded
  // at boot), never from a seeded PRNG: session ids made from it are bearer secrets.
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string id;
  id.reserve(36);
  for (std::size_t i = 0; i < sizeof bytes; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id += '-';
    id += hex[bytes[i] >> 4];
    id += hex[bytes[i] & 15];
  }
  return id;
}

std::string redact_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  const auto scheme = out.find("://");
  const auto host_from = scheme == std::string::npos ? 0 : scheme + 3;
  const auto at = out.find('@', host_from);
  const auto slash = out.find('/', host_from);
  if (at != std::string::npos && (slash == std::string::npos || at < slash))
    out.erase(host_from, at + 1 - host_from);
  return out;
}

}  // namespace parley
