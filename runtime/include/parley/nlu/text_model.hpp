#pragma once
/// The learning engine behind Parley's intent classifier, independent of agents and intents:
/// multinomial logistic regression over hashed word and character n-gram features (TF-IDF
/// weighted, L2-normalised), trained by seeded stochastic gradient descent. Used by the
/// intent classifier and by bench/nlu_eval.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <parley/nlu/features.hpp>
#include <parley/nlu/text.hpp>

namespace parley::nlu {

/// How to train. Defaults are the settings measured in bench/README.md, "Intent classification".
struct train_options {
  int epochs = 12;
  /// Features found in fewer training examples than this are dropped (1 keeps all).
  std::size_t min_df = 1;
  /// Smaller data sets get more epochs, up to this many example updates in all.
  std::size_t min_steps = 10000;
  float learning_rate = 2.0f;    ///< initial step, decays linearly to 0
  float l2 = 1e-5f;              ///< L2 penalty on the weights
  std::uint64_t seed = 42;       ///< fixes the order of examples: same data, same model
  /// Logit of an implicit "none of these" class. Messages far from every intent then score
  /// low even when only two intents compete (plain softmax would give each about 0.5).
  float none_logit = 0.0f;
  bool use_none = true;
  /// Share of an example's features dropped at random at each step (dropout as a regulariser).
  float dropout = 0.5f;
  /// Softmax temperature applied to scores after training (1 = none). 0.8 minimises the
  /// negative log-likelihood on CLINC150's validation split (temperature scaling).
  float temperature = 0.8f;
  /// Threads used to extract features (0: all cores). Results do not depend on it.
  unsigned threads = 0;
};

/// One training example: a text and its class (0 .. classes-1), or `classes` for background
/// text that belongs to none of them (it teaches the model what "none of these" looks like).
struct labelled_text {
  std::string_view text;
  std::uint32_t label = 0;
};

/// A trained model. Immutable after training: `predict`/`scores` are const and thread-safe
/// (each thread uses its own scratch buffers, so a warm thread allocates nothing).
class text_model {
 public:
  text_model() = default;

  /// Trains on `examples` for `classes` classes. Deterministic: the same examples (in the same
  /// order) and options give the same model, bit for bit.
  /// @throws std::invalid_argument when a label is above `classes` or there are no examples.
  static text_model train(std::span<const labelled_text> examples, std::size_t classes,
                          const normalizer& norm, const feature_extractor& features,
                          const train_options& options = {});

  std::size_t classes() const { return classes_; }
  std::size_t feature_count() const { return idf_.size(); }

  /// Scores of every class for `text`, calibrated to 0..1 (they sum to at most 1; the rest
  /// is the "none" share). `out` is resized to classes().
  void scores(std::string_view text, std::vector<float>& out) const;

  /// The best class and its score; {classes(), 0} when the text has no words.
  std::pair<std::uint32_t, float> predict(std::string_view text) const;

  const normalizer& text_normalizer() const { return norm_; }

 private:
  struct entry {
    std::uint32_t index;
    float value;
  };
  // Hashed features of a text, mapped to rows, TF-IDF weighted and L2-normalised.
  bool vectorize(std::string_view text, std::vector<entry>& out) const;  // false: no words
  bool score_all(std::string_view text, std::vector<float>& out) const;
  void vectorize_raw(const std::vector<raw_feature>& raw, std::vector<entry>& out) const;
  std::uint32_t find(std::uint64_t hash) const;
  void logits(const std::vector<entry>& x, float* z) const;

  normalizer norm_{""};
  feature_extractor features_;
  train_options options_;
  std::size_t classes_ = 0;
  std::size_t outputs_ = 0;  // classes_, plus one when trained with background examples
  std::size_t stride_ = 0;  // classes rounded up for aligned rows
  // Open-addressing table: feature hash -> row (hash 0 = empty slot).
  std::vector<std::uint64_t> keys_;
  std::vector<std::uint32_t> rows_;
  std::vector<float> idf_;
  float unseen_idf_ = 1.0f;
  std::vector<float> weights_;  // rows of `stride_` floats, one per feature
  std::vector<float> bias_;
};

}  // namespace parley::nlu
