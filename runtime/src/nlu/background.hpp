#pragma once
// Private to the classifier: synthetic "none of these" sentences for training.
#include <cstdint>
#include <string>
#include <vector>

#include <parley/nlu/text.hpp>

namespace parley::nlu::detail {

// Pseudo-sentences drawn from a letter-pair (bigram) model of `texts`: they share the
// sentences' common letter pairs and short n-grams but none of their words, which teaches the
// model that those carry no evidence for any intent. Without them a state whose intents see
// no other text (one intent, or an agent with one state) would count every familiar letter
// pair as evidence, and unrelated messages would pass the threshold. Deterministic: the same
// texts and seed give the same sentences.
std::vector<std::string> synthetic_background(const std::vector<std::string>& texts,
                                              std::size_t count, std::uint64_t seed,
                                              const normalizer& plain);

}  // namespace parley::nlu::detail
