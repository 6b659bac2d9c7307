#pragma once
/// Entities: what intent parameters are made of. A custom entity lists values with synonyms
/// (matched whatever the case and accents, and tolerant of small typos); `number` finds a
/// number written in digits or as an English word; `any` takes whatever words stand where the
/// parameter's fragment stands in the intent's training sentences.
///
///   auto& city = agent.new_entity("city", {{"paris", {"paname"}}, {"london", {}}});
///   agent.new_intent("weather", {"what is the weather in paris"}).parameter("city", "paris", city);
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

enum class entity_kind { custom, number, any };

/// One value of a custom entity and the other ways people write it.
struct entity_value {
  std::string value;
  std::vector<std::string> synonyms;
};

/// Where an entity was found in a message.
struct entity_match {
  std::string value;       ///< the canonical value ("paris"), or the number / words found
  std::string text;        ///< the text as written in the message ("Pariss")
  std::size_t begin = 0;   ///< byte offsets of `text` in the message
  std::size_t end = 0;
  std::size_t edits = 0;   ///< typos forgiven (0 for an exact match)
};

/// An entity. Immutable once made; `find` is const and thread-safe.
class entity {
 public:
  /// A custom entity. @throws definition_error when the name is empty or a value is.
  entity(std::string name, std::vector<entity_value> values, bool fuzzy = true);

  /// The built-in number entity (named "number").
  static const entity& number();
  /// The built-in any entity (named "any").
  static const entity& any();

  const std::string& name() const { return name_; }
  entity_kind kind() const { return kind_; }
  const std::vector<entity_value>& values() const { return values_; }
  bool fuzzy() const { return fuzzy_; }

  /// The best occurrence of this entity in `message`: exact matches before fuzzy ones, longer
  /// before shorter, earlier before later. For `any`, always nullopt (the classifier finds it
  /// from the training sentences). For `number`, digits ("42", "-3.5", "1,000") or English
  /// number words up to twenty and the tens ("twelve", "forty").
  std::optional<entity_match> find(std::string_view message) const;

  /// Every way of writing the value (value first, then synonyms), normalised.
  std::vector<std::string> forms(std::size_t value_index) const;

 private:
  entity(std::string name, entity_kind kind);
  struct form {
    std::size_t value;           // index into values_
    std::vector<std::string> words;  // normalised words
    std::size_t chars = 0;       // code points, without spaces
  };
  std::optional<entity_match> find_number(std::string_view message) const;

  std::string name_;
  entity_kind kind_ = entity_kind::custom;
  std::vector<entity_value> values_;
  std::vector<form> forms_;  // longest first
  bool fuzzy_ = true;
};

/// Typos forgiven when matching a word of `chars` code points: none up to 4, then one, then
/// two from 9 ("rome" never matches "home"; "pariss" matches "paris").
std::size_t allowed_edits(std::size_t chars);

}  // namespace parley
