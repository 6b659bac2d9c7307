#pragma once
/// Intents and the classifier interface. The runtime asks an `intent_classifier` for one
/// `intent_model` per state that has intent transitions (only that state's intents compete),
/// trained once at start-up; predictions below `nlp.intent_threshold` mean "no intent".
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <parley/event.hpp>
#include <parley/nlu/entity.hpp>

namespace parley {

class agent;

/// An intent parameter: a name bound to an entity (e.g. {"city", "city_entity", "paris"}).
struct intent_parameter_spec {
  std::string name;
  std::string fragment;  ///< the word or words in training sentences that stand for it
  std::string entity;    ///< entity name ("number", "any", or a custom entity)
  /// The entity itself when given by reference (`parameter(name, fragment, entity)`); null
  /// when given by name. It must outlive the agent's run (agent-owned entities do).
  const parley::entity* entity_ref = nullptr;
};

/// A user's intention, learned from training sentences. Made by `agent::new_intent`.
/// Not copyable; referenced by address from transitions.
class intent {
 public:
  intent(parley::agent& owner, std::string name, std::vector<std::string> training_sentences,
         std::string description);
  intent(const intent&) = delete;
  intent& operator=(const intent&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<std::string>& training_sentences() const { return training_; }
  const std::string& description() const { return description_; }
  const std::vector<intent_parameter_spec>& parameters() const { return parameters_; }
  parley::agent& owner() const { return *agent_; }

  /// Adds a parameter: `fragment` in the training sentences stands for an `entity` value.
  intent& parameter(std::string name, std::string fragment, std::string entity);
  /// Adds a parameter bound to an entity object (custom, or `entity::number()` /
  /// `entity::any()`), e.g. `.parameter("city", "paris", city)`.
  intent& parameter(std::string name, std::string fragment, const parley::entity& e) {
    parameters_.push_back({std::move(name), std::move(fragment), e.name(), &e});
    return *this;
  }

 private:
  parley::agent* agent_;
  std::string name_;
  std::vector<std::string> training_;
  std::string description_;
  std::vector<intent_parameter_spec> parameters_;
};

/// A trained model for one state. `predict` is called on session strands, concurrently
/// from several threads: it must be const and thread-safe.
class intent_model {
 public:
  virtual ~intent_model() = default;
  /// Scores the competing intents for `text`; returns the best (score 0..1), or an empty
  /// prediction (intent == nullptr) when there is nothing to predict. The runtime applies
  /// the threshold.
  virtual intent_prediction predict(std::string_view text) const = 0;

  /// True for a model that answers through async_predict (one that asks an LLM): the session
  /// then waits for the answer without holding its strand, as it waits for a coroutine body
  /// (its later events queue, other sessions run). See docs/threading.md.
  virtual bool asynchronous() const { return false; }
  using prediction_handler = std::function<void(intent_prediction)>;
  /// Called instead of predict() when asynchronous(): calls `done` exactly once, from any
  /// thread, with the prediction (the runtime applies the threshold). Must not throw. Any
  /// thread; several calls may run at once.
  virtual void async_predict(std::string text, prediction_handler done) const {
    done(predict(text));
  }
};

/// Trains models. `train` may be called from several threads at once (one per state).
class intent_classifier {
 public:
  virtual ~intent_classifier() = default;
  virtual std::string_view name() const = 0;
  /// @throws definition_error (or any std::exception, which agent::start reports as a
  /// definition_error) when the training data cannot be used; the message names the intent.
  virtual std::unique_ptr<intent_model> train(std::span<const intent* const> intents,
                                              const agent& owner) const = 0;
};

/// The classifier used until a better one is set: normalised exact match on a training
/// sentence scores 1, otherwise the best share of a sentence's words found in the message.
std::shared_ptr<intent_classifier> make_simple_classifier();

}  // namespace parley
