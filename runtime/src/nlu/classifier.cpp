#include <parley/nlu/classifier.hpp>

#include <algorithm>
#include <unordered_map>
#include <stdexcept>

#include <parley/agent.hpp>
#include <parley/intent.hpp>
#include <parley/nlu/entity.hpp>

#include "background.hpp"

namespace parley {
namespace nlu {

classifier_options default_classifier_options() { return {}; }

namespace {

constexpr std::string_view classifier_name = "parley-ngram-logreg";
// How many other entity values are substituted into a training sentence that contains a
// parameter's fragment: enough for the model to learn the slot, few enough to stay fast.
constexpr std::size_t max_substitutions = 8;
constexpr std::size_t any_context_words = 3;
// Background sentences taken from the agent's other intents: as many as this state has
// training sentences, and at least this many when there are that many.
constexpr std::size_t max_background_min = 100;
// Synthetic background sentences (see background.hpp): as many as training sentences,
// within these bounds.
constexpr std::size_t synthetic_min = 20;
constexpr std::size_t synthetic_max = 200;

// Looks a custom entity up by name in the agent, once the agent keeps entities
// (agent::entities()); until then only entities given by reference are known.
template <class Agent>
const entity* agent_entity(const Agent& a, std::string_view name) {
  if constexpr (requires { a.entities(); }) {
    for (const auto& e : a.entities())
      if (e.name() == name) return &e;
  }
  return nullptr;
}

// Where a fragment stands in one training sentence: the words just before and after it.
struct any_context {
  std::vector<std::string> left;
  std::vector<std::string> right;
};

struct parameter_rule {
  std::string name;
  const entity* ent = nullptr;
  std::vector<any_context> contexts;  // for `any`
};

// The first occurrence of `words` in `tokens` (plain forms), or npos.
std::size_t find_words(const std::vector<token>& tokens, const std::vector<std::string>& words,
                       std::size_t from = 0) {
  if (words.empty() || words.size() > tokens.size()) return std::string::npos;
  for (std::size_t i = from; i + words.size() <= tokens.size(); ++i) {
    bool ok = true;
    for (std::size_t k = 0; k < words.size() && ok; ++k) ok = tokens[i + k].plain == words[k];
    if (ok) return i;
  }
  return std::string::npos;
}

std::vector<std::string> plain_words(const normalizer& plain, std::string_view text) {
  std::vector<std::string> out;
  for (auto& t : plain.tokenize(text)) out.push_back(std::move(t.plain));
  return out;
}

// Finds an `any` parameter: the words of the message standing where the fragment stood in a
// training sentence, located by the longest matching context before it (then after it).
std::optional<entity_match> find_any(std::string_view message, const std::vector<token>& tokens,
                                     const std::vector<any_context>& contexts) {
  std::optional<entity_match> best;
  std::size_t best_score = 0;
  for (const auto& c : contexts) {
    std::size_t begin = 0, score = 0;
    if (!c.left.empty()) {
      // Longest suffix of the left context found in the message.
      bool found = false;
      for (std::size_t len = c.left.size(); len > 0 && !found; --len) {
        std::vector<std::string> suffix(c.left.end() - static_cast<std::ptrdiff_t>(len), c.left.end());
        auto at = find_words(tokens, suffix);
        if (at != std::string::npos) {
          begin = at + len;
          score = 2 * len;
          found = true;
        }
      }
      if (!found) continue;
    }
    std::size_t end = tokens.size();
    if (!c.right.empty()) {
      auto at = find_words(tokens, {c.right.front()}, begin);
      if (at != std::string::npos) {
        end = at;
        score += 1;
      }
    }
    if (begin >= end) continue;
    if (!best || score > best_score) {
      entity_match m;
      m.begin = tokens[begin].begin;
      m.end = tokens[end - 1].end;
      m.text = std::string(message.substr(m.begin, m.end - m.begin));
      m.value = m.text;
      best = std::move(m);
      best_score = score;
    }
  }
  return best;
}

constexpr std::uint32_t ambiguous = 0xFFFFFFFFu;

class default_model final : public intent_model {
 public:
  default_model(text_model model, std::vector<const intent*> intents,
                std::vector<std::vector<parameter_rule>> rules,
                std::unordered_map<std::string, std::uint32_t> exact)
      : model_(std::move(model)),
        intents_(std::move(intents)),
        rules_(std::move(rules)),
        exact_(std::move(exact)) {}

  intent_prediction predict(std::string_view text) const override {
    intent_prediction p;
    p.classifier = std::string(classifier_name);
    auto [label, score] = model_.predict(text);
    if (label >= intents_.size()) return p;
    // A message that is one of the training sentences (after normalisation), of one intent
    // only, is that intent: people expect the examples they wrote to work.
    thread_local std::vector<token> tokens;
    thread_local std::string folded;
    plain_.tokenize(text, tokens);
    if (!exact_.empty()) {
      folded.clear();
      for (const auto& t : tokens) {
        if (!folded.empty()) folded += ' ';
        folded += t.plain;
      }
      if (auto it = exact_.find(folded); it != exact_.end() && it->second != ambiguous) {
        label = it->second;
        score = 1.0f;
      }
    }
    const intent* best = intents_[label];
    p.intent = best;
    p.intent_name = best->name();
    p.score = score;
    const auto& rules = rules_[label];
    if (rules.empty()) return p;
    for (const auto& r : rules) {
      std::optional<entity_match> m =
          r.ent->kind() == entity_kind::any ? find_any(text, tokens, r.contexts) : r.ent->find(text);
      if (!m) continue;
      json info = {{"entity", r.ent->name()}, {"text", m->text}, {"start", m->begin},
                   {"end", m->end}};
      if (m->edits) info["edits"] = m->edits;
      p.parameters.push_back({r.name, std::move(m->value), std::move(info)});
    }
    return p;
  }

 private:
  text_model model_;
  std::vector<const intent*> intents_;
  std::vector<std::vector<parameter_rule>> rules_;
  std::unordered_map<std::string, std::uint32_t> exact_;  // folded training sentence -> label
  normalizer plain_{""};
};

class default_classifier final : public intent_classifier {
 public:
  explicit default_classifier(classifier_options o) : options_(std::move(o)) {}

  std::string_view name() const override { return classifier_name; }

  std::unique_ptr<intent_model> train(std::span<const intent* const> competing,
                                      const agent& owner) const override {
    std::vector<const intent*> intents;
    for (const intent* i : competing)
      if (i && std::find(intents.begin(), intents.end(), i) == intents.end()) intents.push_back(i);
    if (intents.empty()) throw definition_error("intent classifier: no intents to train on");

    std::string language = options_.language;
    if (language.empty() && owner.config().declared().count("nlp.language"))
      language = owner.config().get_string("nlp.language");
    if (language.empty()) language = "english";
    const normalizer norm(language);
    const normalizer plain("");

    std::vector<std::string> texts;  // owns augmented sentences
    std::vector<std::uint32_t> labels;
    std::vector<std::vector<parameter_rule>> rules(intents.size());
    for (std::size_t k = 0; k < intents.size(); ++k) {
      const intent& in = *intents[k];
      if (in.training_sentences().empty())
        throw definition_error("intent '" + in.name() +
                                 "' has no training sentence; give it at least one");
      const auto label = static_cast<std::uint32_t>(k);
      for (const auto& s : in.training_sentences()) {
        texts.push_back(s);
        labels.push_back(label);
      }
      // A description is one more way of saying what the intent is about.
      if (!in.description().empty()) {
        texts.push_back(in.description());
        labels.push_back(label);
      }
      for (const auto& spec : in.parameters()) {
        parameter_rule r{spec.name, spec.entity_ref, {}};
        if (!r.ent) {
          if (spec.entity == "number") r.ent = &entity::number();
          else if (spec.entity == "any") r.ent = &entity::any();
          else r.ent = agent_entity(owner, spec.entity);
        }
        if (!r.ent)
          throw definition_error("intent '" + in.name() + "', parameter '" + spec.name +
                                   "': no entity named '" + spec.entity +
                                   "'; make it with agent.new_entity or pass the entity object");
        auto fragment = plain_words(plain, spec.fragment);
        for (const auto& s : in.training_sentences()) {
          auto toks = plain.tokenize(s);
          auto at = find_words(toks, fragment);
          if (fragment.empty() || at == std::string::npos) continue;
          const auto last = at + fragment.size() - 1;
          if (r.ent->kind() == entity_kind::any) {
            any_context c;
            for (std::size_t i = at > any_context_words ? at - any_context_words : 0; i < at; ++i)
              c.left.push_back(toks[i].plain);
            for (std::size_t i = last + 1; i < toks.size() && i <= last + any_context_words; ++i)
              c.right.push_back(toks[i].plain);
            r.contexts.push_back(std::move(c));
            continue;
          }
          // Teach the slot: the same sentence with other values in the fragment's place.
          std::vector<std::string> others;
          if (r.ent->kind() == entity_kind::number) others = {"2", "15", "three"};
          for (std::size_t v = 0; v < r.ent->values().size(); ++v) others.push_back(r.ent->values()[v].value);
          std::size_t added = 0;
          for (const auto& o : others) {
            if (added == max_substitutions) break;
            if (plain.fold(o) == plain.fold(spec.fragment)) continue;
            texts.push_back(s.substr(0, toks[at].begin) + o + s.substr(toks[last].end));
            labels.push_back(label);
            ++added;
          }
        }
        rules[k].push_back(std::move(r));
      }
    }
    // Background: sentences of the agent's intents that do not compete in this state mean
    // "none of these" here, so the model learns that from them (evenly spaced and capped, so
    // agents with many states stay fast). A lone intent in a state needs this most: without
    // negatives, every word it has seen would count for it.
    std::vector<const std::string*> others;
    for (const auto& other : owner.intents())
      if (std::find(intents.begin(), intents.end(), &other) == intents.end())
        for (const auto& s : other.training_sentences()) others.push_back(&s);
    const std::size_t cap = std::max<std::size_t>(max_background_min, texts.size());
    const std::size_t take = std::min(others.size(), cap);
    for (std::size_t k = 0; k < take; ++k) {
      texts.push_back(*others[k * others.size() / take]);
      labels.push_back(static_cast<std::uint32_t>(intents.size()));
    }

    // Synthetic background, for every state (see background.hpp).
    const std::size_t positives = texts.size() - take;
    for (auto& t : detail::synthetic_background(
             std::vector<std::string>(texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(positives)),
             std::clamp<std::size_t>(positives, synthetic_min, synthetic_max),
             options_.training.seed, plain)) {
      texts.push_back(std::move(t));
      labels.push_back(static_cast<std::uint32_t>(intents.size()));
    }

    std::vector<labelled_text> examples;
    examples.reserve(texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) examples.push_back({texts[i], labels[i]});
    auto model = text_model::train(examples, intents.size(), norm,
                                   feature_extractor(options_.features), options_.training);
    std::unordered_map<std::string, std::uint32_t> exact;
    for (std::size_t k = 0; k < intents.size(); ++k)
      for (const auto& s : intents[k]->training_sentences()) {
        auto [it, fresh] = exact.try_emplace(plain.fold(s), static_cast<std::uint32_t>(k));
        if (!fresh && it->second != k) it->second = ambiguous;
      }
    return std::make_unique<default_model>(std::move(model), std::move(intents), std::move(rules),
                                           std::move(exact));
  }

 private:
  classifier_options options_;
};

}  // namespace
}  // namespace nlu

std::shared_ptr<intent_classifier> make_default_classifier(nlu::classifier_options options) {
  return std::make_shared<nlu::default_classifier>(std::move(options));
}

}  // namespace parley
