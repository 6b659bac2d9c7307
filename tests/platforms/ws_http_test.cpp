// The HTTP side of the WebSocket platform without sockets: the session ids the server makes,
// and the tags that stand for session ids in logs.
#include "ws_http.hpp"

#include <regex>
#include <set>

#include <doctest/doctest.h>

#include <parley/log.hpp>

using parley::platforms::detail::fresh_session_id;

TEST_SUITE("websocket session ids") {

TEST_CASE("a fresh session id is 128 bits as 8-4-4-4-12 lowercase hex digits") {
  const std::regex form("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  for (int i = 0; i < 100; ++i) {
    const auto id = fresh_session_id();
    CAPTURE(id);
    CHECK(std::regex_match(id, form));
  }
}

TEST_CASE("fresh session ids are unique and every digit varies") {
  constexpr int n = 20000;
  std::set<std::string> ids;
  // For each of the 32 digits, the values seen: with 128 random bits every digit takes all 16
  // (a digit fixed by a format, or a generator with few seeds, would not).
  std::vector<std::set<char>> seen(36);
  for (int i = 0; i < n; ++i) {
    const auto id = fresh_session_id();
    ids.insert(id);
    for (std::size_t k = 0; k < id.size(); ++k) seen[k].insert(id[k]);
  }
  CHECK(ids.size() == static_cast<std::size_t>(n));
  for (std::size_t k = 0; k < 36; ++k) {
    CAPTURE(k);
    if (k == 8 || k == 13 || k == 18 || k == 23)
      CHECK(seen[k] == std::set<char>{'-'});
    else
      CHECK(seen[k].size() == 16);
  }
}

TEST_CASE("identify makes a fresh id only when the client names none") {
  using namespace parley::platforms::detail;
  request named{http::verb::get, "/?session_id=mine", 11};
  CHECK(identify(named).session_id == "mine");
  request none{http::verb::get, "/", 11};
  const auto a = identify(none).session_id, b = identify(none).session_id;
  CHECK(a.size() == 36);
  CHECK(a != b);
}

}  // TEST_SUITE

TEST_SUITE("session tags in logs") {

TEST_CASE("?since= is a whole number >= 0 or absent, and anything else names the parameter") {
  using parley::platforms::detail::parse_since;
  std::string why;
  CHECK_FALSE(parse_since("/?session_id=a", why).has_value());
  CHECK(parse_since("/?since=0", why) == 0);
  CHECK(parse_since("/?session_id=a&since=17", why) == 17);
  CHECK(parse_since("/?since=%31%32", why) == 12);  // percent-decoded
  for (const char* bad : {"/?since=-1", "/?since=x", "/?since=", "/?since", "/?since=1e3",
                          "/?since=+1", "/?since=1234567890123456789"}) {
    CAPTURE(bad);
    why.clear();
    CHECK(parse_since(bad, why) == -1);
    CHECK(why.find("'since'") != std::string::npos);
  }
}

TEST_CASE("a session tag is short, stable, and does not show the id") {
  const std::string id = "3f2a9c1e-77b0-4d2e-9a41-0c5e8f6d2b17";
  const auto tag = parley::session_tag(id);
  CHECK(tag.size() == 9);
  CHECK(tag[0] == '#');
  CHECK(tag == parley::session_tag(id));
  CHECK(tag != parley::session_tag("3f2a9c1e-77b0-4d2e-9a41-0c5e8f6d2b18"));
  CHECK(id.find(tag.substr(1)) == std::string::npos);
  CHECK(parley::session_tag("t1").find("t1") == std::string::npos);
}

}  // TEST_SUITE
