#pragma once
/// Text normalisation for intent recognition, for any language written in Unicode:
/// compatibility normalisation (NFKC), case folding, accent removal, punctuation as word
/// boundaries, and optional Snowball stemming. Built on utf8proc and libstemmer.
#include <string>
#include <string_view>
#include <vector>

namespace parley::nlu {

/// One word of a message. `folded` keeps accents (case folded, NFKC); `plain` has them
/// removed; `stem` is the stemmed `plain` form (equal to `plain` without a stemmer).
/// `begin`/`end` are byte offsets of the word in the original text.
struct token {
  std::string folded;
  std::string plain;
  std::string stem;
  std::size_t begin = 0;
  std::size_t end = 0;
};

/// Splits and normalises text. Cheap to copy; thread-safe (stemmers are per thread).
class normalizer {
 public:
  /// `language`: a Snowball algorithm name or ISO code ("english", "en", "french", ...),
  /// or "" / "none" for no stemming. An unknown language means no stemming.
  explicit normalizer(std::string language = "english");

  const std::string& language() const { return language_; }
  bool stems() const { return stems_; }

  /// The words of `text`, in order. Letters, digits and combining marks make words;
  /// everything else separates them, except apostrophes inside a word, which are dropped
  /// ("don't" -> "dont"). Invalid UTF-8 bytes are treated as separators.
  std::vector<token> tokenize(std::string_view text) const;
  /// As tokenize, appending to `out` (reused buffers: no allocation once warm).
  void tokenize(std::string_view text, std::vector<token>& out) const;

  /// The normalised form of `text`: plain (accent-free, case-folded) words joined by single
  /// spaces. "  Héllo, WORLD!! " -> "hello world".
  std::string fold(std::string_view text) const;

  /// The stem of one plain word (the word itself without a stemmer).
  std::string stem(std::string_view word) const;

 private:
  std::string language_;
  bool stems_ = false;
};

/// Case-folds and removes accents from `text`, keeping everything else. No stemming.
std::string fold_case_and_accents(std::string_view text);

/// Edit distance (Damerau: insert, delete, substitute, swap adjacent) between two UTF-8
/// strings, counted in code points, stopping early above `limit` (returns limit + 1).
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit);

}  // namespace parley::nlu
