#include <parley/nlu/features.hpp>

#include <algorithm>
#include <string_view>

#include <parley/fnv.hpp>

namespace parley::nlu {
namespace {

// FNV-1a, 64 bits: stable across platforms and runs (std::hash is neither), so the same
// training data always gives the same features and the same model.
std::uint64_t mix(std::uint64_t h, std::string_view s) { return fnv1a(s, h); }
std::uint64_t mix(std::uint64_t h, unsigned char c) { return (h ^ c) * fnv1a_prime; }

// Byte offsets of UTF-8 code point starts in `s`, plus s.size() at the end.
void code_point_starts(std::string_view s, std::vector<std::size_t>& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) out.push_back(i);
  out.push_back(s.size());
}

}  // namespace

void feature_extractor::extract(const std::vector<token>& tokens,
                                std::vector<raw_feature>& out) const {
  out.clear();
  const auto& o = options_;
  auto add = [&](std::uint64_t h, float w) { out.push_back({h | 1u, 1.0f, w}); };

  if (o.word_unigrams)
    for (const auto& t : tokens) add(mix(mix(fnv1a_offset, 'w'), t.stem), o.word_weight);
  if (o.word_bigrams && tokens.size() > 1)
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      auto h = mix(mix(mix(fnv1a_offset, 'b'), tokens[i].stem), ' ');
      add(mix(h, tokens[i + 1].stem), o.bigram_weight);
    }
  if (o.char_min > 0 && o.char_max >= o.char_min) {
    thread_local std::vector<std::size_t> starts;
    for (const auto& t : tokens) {
      // The word with boundary marks: "<word>" as code points; n-grams never cross words.
      code_point_starts(t.plain, starts);
      const std::size_t len = starts.size() - 1 + 2;  // code points incl. both marks
      for (int n = o.char_min; n <= o.char_max; ++n) {
        const auto un = static_cast<std::size_t>(n);
        if (un > len) break;
        for (std::size_t i = 0; i + un <= len; ++i) {
          std::uint64_t h = mix(mix(fnv1a_offset, 'c'), static_cast<unsigned char>(n));
          for (std::size_t k = i; k < i + un; ++k) {
            if (k == 0) {
              h = mix(h, '<');
            } else if (k == len - 1) {
              h = mix(h, '>');
            } else {
              h = mix(h, std::string_view(t.plain).substr(starts[k - 1], starts[k] - starts[k - 1]));
            }
          }
          add(h, o.char_weight);
        }
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const raw_feature& a, const raw_feature& b) {
    return a.hash < b.hash;
  });
  std::size_t w = 0;
  for (std::size_t r = 0; r < out.size(); ++r) {
    if (w > 0 && out[w - 1].hash == out[r].hash) {
      out[w - 1].count += 1.0f;
    } else {
      out[w++] = out[r];
    }
  }
  out.resize(w);
}

}  // namespace parley::nlu
