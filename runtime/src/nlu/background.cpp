#include "background.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "splitmix64.hpp"

namespace parley::nlu::detail {
namespace {

using seeded_rng = splitmix64;

}  // namespace

std::vector<std::string> synthetic_background(const std::vector<std::string>& texts,
                                              std::size_t count, std::uint64_t seed,
                                              const normalizer& plain) {
  std::map<std::string, std::vector<std::string>> next;  // ordered: deterministic
  std::set<std::string> known;
  const std::string begin = "^", end = "$";
  // A letter-pair model needs few sentences: sample evenly, so big states stay fast.
  const std::size_t sample = std::min<std::size_t>(texts.size(), 2000);
  for (std::size_t k = 0; k < sample; ++k)
    for (const auto& tok : plain.tokenize(texts[k * texts.size() / sample])) {
      known.insert(tok.plain);
      std::string prev = begin;
      for (std::size_t i = 0; i < tok.plain.size();) {
        std::size_t j = i + 1;
        while (j < tok.plain.size() && (static_cast<unsigned char>(tok.plain[j]) & 0xC0) == 0x80) ++j;
        std::string cp = tok.plain.substr(i, j - i);
        next[prev].push_back(cp);
        prev = std::move(cp);
        i = j;
      }
      next[prev].push_back(end);
    }
  std::vector<std::string> out;
  if (next.empty()) return out;
  seeded_rng rng{seed};
  for (std::size_t attempts = 0; out.size() < count && attempts < count * 20; ++attempts) {
    std::string sentence;
    const std::size_t words = 2 + rng.below(6);
    for (std::size_t w = 0; w < words; ++w) {
      std::string word, prev = begin;
      for (std::size_t len = 0; len < 12; ++len) {
        auto it = next.find(prev);
        if (it == next.end()) break;
        const auto& choices = it->second;
        const auto& c = choices[rng.below(choices.size())];
        if (c == end) break;
        word += c;
        prev = c;
      }
      if (word.size() < 2 || known.count(word)) continue;
      if (!sentence.empty()) sentence += ' ';
      sentence += word;
    }
    if (!sentence.empty()) out.push_back(std::move(sentence));
  }
  return out;
}

}  // namespace parley::nlu::detail
