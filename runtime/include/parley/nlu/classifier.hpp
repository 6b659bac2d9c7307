#pragma once
/// Parley's default intent classifier: TF-IDF weighted word and character n-grams, a
/// multinomial logistic regression per state trained by seeded SGD, calibrated scores with
/// an implicit "none of these" class, and entity extraction for intent parameters.
/// See runtime/src/nlu/README.md for why this method.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <parley/nlu/features.hpp>
#include <parley/nlu/text_model.hpp>

namespace parley {

class agent;
class intent;
class intent_classifier;
class intent_model;

namespace nlu {

/// Everything the default classifier can be tuned with. The defaults are what bench/NLU.md
/// measures; most bots never change them.
struct classifier_options {
  /// Snowball stemmer language ("english", "french", "en", ... or "none"). When the agent's
  /// config declares "nlp.language", that value is used instead.
  std::string language = "english";
  feature_options features;
  train_options training;
  /// Entity values may differ from the message by this many edits per 4 characters, at most
  /// 2 (so "pariss" still matches "paris", "rome" does not match "home").
  bool fuzzy_entities = true;
};

/// The options measured in bench/NLU.md.
classifier_options default_classifier_options();

}  // namespace nlu

/// The default intent classifier (thread-safe; `train` may run for several states at once).
/// Its name, recorded with every prediction, is "parley-ngram-logreg".
std::shared_ptr<intent_classifier> make_default_classifier(
    nlu::classifier_options options = nlu::default_classifier_options());

/// Trains one model per entry of `per_state` (the intents competing in one state) on
/// `threads` threads (0: all cores), largest states first. The result is in the order of
/// `per_state` and does not depend on the number of threads.
/// @throws what `classifier.train` throws (for the first failing state, in state order).
std::vector<std::unique_ptr<intent_model>> train_models(
    const intent_classifier& classifier, std::span<const std::vector<const intent*>> per_state,
    const agent& owner, unsigned threads = 0);

}  // namespace parley
