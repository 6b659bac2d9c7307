#pragma once
/// An intent classifier that asks the model which of a state's intents a message means, with
/// the intents' names, descriptions and example sentences in the prompt, and reads a strict
/// JSON answer ({"intent": "<name>" | "none", "confidence": 0..1, "parameters": {...}}). When
/// the model fails, times out or answers anything else, the local classifier decides. Every
/// prediction is recorded like a local one; its classifier name says which answered:
/// "llm:<model>" or "llm-fallback:<local classifier>". The model's confidence is the score,
/// so nlp.intent_threshold applies to it as to a local score.
///
///   auto model = std::make_shared<llm::client>(ex, llm::client_options::from(agent.config()));
///   agent.set_intent_classifier(llm::make_llm_classifier(ex, model));   // every state
///   hard_state.set_intent_classifier(llm::make_llm_classifier(ex, model));  // or one state
///
/// The session does not hold its strand while the model thinks: see docs/threading.md
/// ("Asynchronous intent models").
#include <chrono>
#include <memory>
#include <string>

#include <parley/intent.hpp>
#include <parley/llm/client.hpp>
#include <parley/net.hpp>

namespace parley::llm {

struct llm_classifier_options {
  /// Decides when the model cannot; null: make_default_classifier(). It is trained for every
  /// state too, so a failing model never leaves a state without intents.
  std::shared_ptr<intent_classifier> fallback;
  /// The whole question, retries included; past it the fallback answers.
  std::chrono::milliseconds timeout{10'000};
  std::size_t examples_per_intent = 8;  ///< training sentences shown per intent
  std::string model;                    ///< empty: the client's (llm.model)
};

/// @param executor where the time limit's timer runs (the agent's io_context).
/// @param model not kept alive by the classifier (the agent, which holds the classifier,
/// outlives its io_context's use; a client must not): keep the shared_ptr for as long as the
/// agent runs, and let it go before the agent. Once it is gone the local classifier answers.
std::shared_ptr<intent_classifier> make_llm_classifier(net::any_io_executor executor,
                                                       std::shared_ptr<client> model,
                                                       llm_classifier_options options = {});

/// The model's answer read strictly: a JSON object (alone, or alone in one ``` fence) whose
/// "intent" is one of `names` or "none" and whose "confidence" is a number in 0..1. Returns
/// false (and says why in `why`) otherwise. Pure; any thread. Exposed for tests.
struct llm_intent_answer {
  std::string intent;  ///< "" for none
  double confidence = 0;
  json parameters = json::object();
};
bool parse_intent_answer(std::string_view text, const std::vector<std::string>& names,
                         llm_intent_answer& out, std::string& why);

}  // namespace parley::llm
