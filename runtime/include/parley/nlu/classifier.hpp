#pragma once
/// Parley's default intent classifier: TF-IDF weighted word and character n-grams, a
/// multinomial logistic regression per state trained by seeded SGD, calibrated scores with
/// an implicit "none of these" class, and entity extraction for intent parameters.
/// See runtime/src/nlu/README.md for why this method.
#include <memory>
#include <string>

#include <parley/nlu/features.hpp>
#include <parley/nlu/text_model.hpp>

namespace parley {

class intent_classifier;

namespace nlu {

/// Everything the default classifier can be tuned with. The defaults are what bench/README.md
/// measures ("Intent classification"); most bots never change them.
struct classifier_options {
  /// Snowball stemmer language ("english", "french", "en", ... or "none" for no stemming).
  /// Empty: the agent's "nlp.language" (BAF's key; default "en").
  std::string language;
  feature_options features;
  train_options training;
};

/// The options measured in bench/README.md ("Intent classification").
classifier_options default_classifier_options();

}  // namespace nlu

/// The default intent classifier (thread-safe; `train` may run for several states at once).
/// Its name, recorded with every prediction, is "parley-ngram-logreg".
std::shared_ptr<intent_classifier> make_default_classifier(
    nlu::classifier_options options = nlu::default_classifier_options());

}  // namespace parley
