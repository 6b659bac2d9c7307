#include <parley/intent.hpp>

#include <algorithm>
#include <cctype>
#include <unordered_set>

#include <parley/agent.hpp>

namespace parley {

intent::intent(parley::agent& owner, std::string name, std::vector<std::string> training_sentences,
               std::string description)
    : agent_(&owner),
      name_(std::move(name)),
      training_(std::move(training_sentences)),
      description_(std::move(description)) {}

intent& intent::parameter(std::string name, std::string fragment, std::string entity) {
  parameters_.push_back({std::move(name), std::move(fragment), std::move(entity)});
  return *this;
}

namespace {

// ASCII normalisation: lower case, punctuation to spaces, collapsed blanks. Good enough for
// the stand-in matcher; the real classifier normalises Unicode.
std::string normalise(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = true;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80) {
      out += static_cast<char>(std::tolower(c));
      space = false;
    } else if (!space) {
      out += ' ';
      space = true;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<std::string> words(const std::string& normalised) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < normalised.size()) {
    auto j = normalised.find(' ', i);
    if (j == std::string::npos) j = normalised.size();
    out.emplace_back(normalised.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

class simple_model final : public intent_model {
 public:
  struct sentence {
    const intent* owner;
    std::string text;
    std::vector<std::string> words;
  };
  explicit simple_model(std::vector<sentence> s) : sentences_(std::move(s)) {}

  intent_prediction predict(std::string_view text) const override {
    intent_prediction best;
    best.classifier = "simple";
    const auto norm = normalise(text);
    const auto msg = words(norm);
    std::unordered_set<std::string_view> msg_words(msg.begin(), msg.end());
    for (const auto& s : sentences_) {
      double score = 0;
      if (s.text == norm) {
        score = 1.0;
      } else if (!s.words.empty()) {
        std::size_t hit = 0;
        for (const auto& w : s.words) hit += msg_words.count(w);
        // Share of the sentence's words present, damped by extra words in the message.
        const double recall = double(hit) / double(s.words.size());
        const double precision = msg.empty() ? 0 : double(hit) / double(msg.size());
        score = 0.9 * (recall + precision) / 2.0;
      }
      if (score > best.score) {
        best.score = score;
        best.intent = s.owner;
        best.intent_name = s.owner->name();
      }
    }
    return best;
  }

 private:
  std::vector<sentence> sentences_;
};

class simple_classifier final : public intent_classifier {
 public:
  std::string_view name() const override { return "simple"; }
  std::unique_ptr<intent_model> train(std::span<const intent* const> intents,
                                      const agent&) const override {
    std::vector<simple_model::sentence> sentences;
    for (const intent* i : intents)
      for (const auto& t : i->training_sentences()) {
        auto n = normalise(t);
        auto w = words(n);
        sentences.push_back({i, std::move(n), std::move(w)});
      }
    return std::make_unique<simple_model>(std::move(sentences));
  }
};

}  // namespace

std::shared_ptr<intent_classifier> make_simple_classifier() {
  return std::make_shared<simple_classifier>();
}

}  // namespace parley
