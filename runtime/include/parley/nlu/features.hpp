#pragma once
/// Feature extraction: word unigrams and bigrams (stemmed) and character n-grams of each
/// word (accent-free, with word-boundary marks), each identified by a 64-bit hash of its
/// text so no vocabulary string is ever stored or allocated at prediction time.
#include <cstdint>
#include <vector>

#include <parley/nlu/text.hpp>

namespace parley::nlu {

/// What to extract. The defaults are the ones measured in bench/README.md, "Intent classification".
struct feature_options {
  bool word_unigrams = true;
  bool word_bigrams = true;
  int char_min = 2;  ///< shortest character n-gram (0 disables character n-grams)
  int char_max = 5;  ///< longest character n-gram
  float word_weight = 1.0f;
  float bigram_weight = 1.0f;
  float char_weight = 1.0f;
};

/// One feature of a text: its hash, its group weight and how often it occurs.
struct raw_feature {
  std::uint64_t hash = 0;
  float count = 0;
  float group_weight = 1;
};

/// Turns tokens into hashed features. Stateless apart from its options; thread-safe.
class feature_extractor {
 public:
  explicit feature_extractor(feature_options options = {}) : options_(options) {}
  const feature_options& options() const { return options_; }

  /// Replaces `out` with the features of `tokens`, sorted by hash, duplicates merged.
  void extract(const std::vector<token>& tokens, std::vector<raw_feature>& out) const;

 private:
  feature_options options_;
};

}  // namespace parley::nlu
