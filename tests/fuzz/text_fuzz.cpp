// Fuzzes text normalisation (parley::nlu::normalizer and friends) on arbitrary bytes, as
// every user message reaches it. The first byte picks the stemmer language. Checks, besides
// the sanitizers: tokens are in order and inside the text; every string produced is valid
// UTF-8; edit_distance is 0 on equal strings, symmetric and within its limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <parley/nlu/text.hpp>
#include <utf8proc.h>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "text fuzz: %s\n", what);
    std::abort();
  }
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  auto len = static_cast<utf8proc_ssize_t>(s.size());
  while (len > 0) {
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(p, len, &cp);
    if (n <= 0) return false;
    p += n;
    len -= n;
  }
  return true;
}

const parley::nlu::normalizer& normalizer_for(std::uint8_t pick) {
  static const parley::nlu::normalizer english("english"), french("french"), german("de"),
      russian("russian"), none("none");
  switch (pick % 5) {
    case 0: return english;
    case 1: return french;
    case 2: return german;
    case 3: return russian;
    default: return none;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& norm = normalizer_for(data[0]);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const auto tokens = norm.tokenize(text);
  std::size_t last_end = 0;
  for (const auto& t : tokens) {
    check(t.begin >= last_end && t.begin < t.end && t.end <= text.size(),
          "a token outside the text or out of order");
    last_end = t.end;
    check(!t.plain.empty() && !t.folded.empty(), "an empty word");
    check(valid_utf8(t.folded) && valid_utf8(t.plain) && valid_utf8(t.stem),
          "a token is not valid UTF-8");
  }
  const std::string folded = norm.fold(text);
  check(valid_utf8(folded), "fold() is not valid UTF-8");
  check(valid_utf8(parley::nlu::fold_case_and_accents(text)),
        "fold_case_and_accents() is not valid UTF-8");
  if (!tokens.empty()) check(valid_utf8(norm.stem(tokens.front().plain)), "stem() is not UTF-8");

  // Edit distance between the two halves, both ways, and of each half with itself.
  const auto half = text.size() / 2;
  const auto a = text.substr(0, half), b = text.substr(half);
  const std::size_t limit = data[0] % 8;
  const auto ab = parley::nlu::edit_distance(a, b, limit);
  check(ab <= limit + 1, "edit_distance above limit + 1");
  check(ab == parley::nlu::edit_distance(b, a, limit), "edit_distance is not symmetric");
  check(parley::nlu::edit_distance(a, a, limit) == 0, "edit_distance(a, a) is not 0");
  return 0;
}
