#include <parley/nlu/entity.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>

#include <parley/errors.hpp>
#include <parley/nlu/text.hpp>

namespace parley {
namespace {

const nlu::normalizer& plain_normalizer() {
  static const nlu::normalizer n("");
  return n;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

struct number_word {
  std::string_view word;
  int value;
};
constexpr std::array<number_word, 29> number_words{{
    {"zero", 0},     {"one", 1},        {"two", 2},       {"three", 3},     {"four", 4},
    {"five", 5},     {"six", 6},        {"seven", 7},     {"eight", 8},     {"nine", 9},
    {"ten", 10},     {"eleven", 11},    {"twelve", 12},   {"thirteen", 13}, {"fourteen", 14},
    {"fifteen", 15}, {"sixteen", 16},   {"seventeen", 17}, {"eighteen", 18}, {"nineteen", 19},
    {"twenty", 20},  {"thirty", 30},    {"forty", 40},    {"fifty", 50},    {"sixty", 60},
    {"seventy", 70}, {"eighty", 80},    {"ninety", 90},   {"hundred", 100},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum_ascii(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

std::size_t allowed_edits(std::size_t chars) { return chars <= 4 ? 0 : chars <= 8 ? 1 : 2; }

entity::entity(std::string name, entity_kind kind) : name_(std::move(name)), kind_(kind) {}

entity::entity(std::string name, std::vector<entity_value> values, bool fuzzy)
    : name_(std::move(name)), kind_(entity_kind::custom), values_(std::move(values)), fuzzy_(fuzzy) {
  if (name_.empty()) throw definition_error("entity: the name is empty; give it a name");
  const auto& norm = plain_normalizer();
  for (std::size_t v = 0; v < values_.size(); ++v) {
    if (plain_normalizer().fold(values_[v].value).empty())
      throw definition_error("entity '" + name_ + "': value " + std::to_string(v) +
                             " has no letters or digits; remove it");
    auto add = [&](const std::string& text) {
      form f{v, {}, 0};
      for (auto& t : norm.tokenize(text)) {
        f.chars += code_points(t.plain);
        f.words.push_back(std::move(t.plain));
      }
      if (!f.words.empty()) forms_.push_back(std::move(f));
    };
    add(values_[v].value);
    for (const auto& s : values_[v].synonyms) add(s);
  }
  std::stable_sort(forms_.begin(), forms_.end(), [](const form& a, const form& b) {
    return a.words.size() != b.words.size() ? a.words.size() > b.words.size() : a.chars > b.chars;
  });
}

const entity& entity::number() {
  static const entity e("number", entity_kind::number);
  return e;
}

const entity& entity::any() {
  static const entity e("any", entity_kind::any);
  return e;
}

std::vector<std::string> entity::forms(std::size_t value_index) const {
  std::vector<std::string> out;
  if (value_index >= values_.size()) return out;
  out.push_back(plain_normalizer().fold(values_[value_index].value));
  for (const auto& s : values_[value_index].synonyms) {
    auto f = plain_normalizer().fold(s);
    if (!f.empty()) out.push_back(std::move(f));
  }
  return out;
}

std::optional<entity_match> entity::find(std::string_view message) const {
  if (kind_ == entity_kind::any) return std::nullopt;
  if (kind_ == entity_kind::number) return find_number(message);

  thread_local std::vector<nlu::token> tokens;
  plain_normalizer().tokenize(message, tokens);
  struct best_t {
    const form* f = nullptr;
    std::size_t at = 0;
    std::size_t edits = 0;
  } best;
  auto better = [&](const form& f, std::size_t at, std::size_t edits) {
    if (!best.f) return true;
    if ((edits == 0) != (best.edits == 0)) return edits == 0;  // exact first
    if (f.words.size() != best.f->words.size()) return f.words.size() > best.f->words.size();
    if (edits != best.edits) return edits < best.edits;
    return at < best.at;
  };
  for (const auto& f : forms_) {
    const std::size_t k = f.words.size();
    if (k > tokens.size()) continue;
    const std::size_t limit = fuzzy_ ? allowed_edits(f.chars) : 0;
    for (std::size_t i = 0; i + k <= tokens.size(); ++i) {
      std::size_t edits = 0;
      for (std::size_t w = 0; w < k && edits <= limit; ++w) {
        const auto& a = f.words[w];
        const auto& b = tokens[i + w].plain;
        if (a == b) continue;
        edits += limit == 0 ? 1 : nlu::edit_distance(a, b, limit - edits);
      }
      if (edits <= limit && better(f, i, edits)) best = {&f, i, edits};
    }
  }
  if (!best.f) return std::nullopt;
  entity_match m;
  m.value = values_[best.f->value].value;
  m.begin = tokens[best.at].begin;
  m.end = tokens[best.at + best.f->words.size() - 1].end;
  m.text = std::string(message.substr(m.begin, m.end - m.begin));
  m.edits = best.edits;
  return m;
}

std::optional<entity_match> entity::find_number(std::string_view s) const {
  std::optional<entity_match> digits;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!is_digit(s[i]) || (i > 0 && (is_alnum_ascii(s[i - 1]) || is_digit(s[i - 1])))) continue;
    std::size_t begin = i;
    if (i > 0 && (s[i - 1] == '-' || s[i - 1] == '+') && (i < 2 || !is_alnum_ascii(s[i - 2])))
      begin = i - 1;
    std::size_t j = i;
    std::string value = s[begin] == '-' ? "-" : "";
    while (j < s.size() && is_digit(s[j])) value += s[j++];
    // Thousands groups "1,000,000" and one decimal part "3.5" (or "3,5").
    while (j + 3 < s.size() && s[j] == ',' && is_digit(s[j + 1]) && is_digit(s[j + 2]) &&
           is_digit(s[j + 3]) && (j + 4 >= s.size() || !is_digit(s[j + 4]))) {
      value.append(s.substr(j + 1, 3));
      j += 4;
    }
    if (j + 1 < s.size() && (s[j] == '.' || s[j] == ',') && is_digit(s[j + 1])) {
      value += '.';
      ++j;
      while (j < s.size() && is_digit(s[j])) value += s[j++];
    }
    digits = entity_match{value, std::string(s.substr(begin, j - begin)), begin, j, 0};
    break;
  }
  thread_local std::vector<nlu::token> tokens;
  plain_normalizer().tokenize(s, tokens);
  for (const auto& t : tokens) {
    if (digits && t.begin >= digits->begin) break;
    for (const auto& w : number_words)
      if (t.plain == w.word)
        return entity_match{std::to_string(w.value), std::string(s.substr(t.begin, t.end - t.begin)),
                            t.begin, t.end, 0};
  }
  return digits;
}

}  // namespace parley
