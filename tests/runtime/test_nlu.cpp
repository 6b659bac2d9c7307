// The intent classifier: Unicode normalisation, entities, determinism, calibrated scores
// against the threshold, parameters, and per-state competition inside a real agent.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <parley/agent.hpp>
#include <parley/intent.hpp>
#include <parley/nlu/classifier.hpp>
#include <parley/nlu/entity.hpp>
#include <parley/nlu/text.hpp>
#include <parley/nlu/text_model.hpp>

using parley::entity;
using parley::nlu::normalizer;

namespace {

// Bit-for-bit equality of two floats (determinism means the same bits, not "close").
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

const parley::intent_parameter* param(const parley::intent_prediction& p, std::string_view name) {
  for (const auto& x : p.parameters)
    if (x.name == name) return &x;
  return nullptr;
}

}  // namespace

TEST_CASE("normalisation folds case, accents, punctuation and compatibility forms") {
  normalizer n("none");
  CHECK(n.fold("  Héllo, WORLD!! ") == "hello world");
  CHECK(n.fold("Naïve CAFÉ crème-brûlée") == "naive cafe creme brulee");
  CHECK(n.fold("Straße") == "strasse");           // full case folding, not just lower case
  CHECK(n.fold("ＡＢＣ １２３") == "abc 123");      // full-width forms (NFKC)
  CHECK(n.fold("Καλημέρα κόσμε") == "καλημερα κοσμε");
  CHECK(n.fold("ПРИВЕТ, Ёлка") == "привет елка");
  CHECK(n.fold("don't  stop—it's fine") == "dont stop its fine");
  CHECK(n.fold("ab\xff" "cd") == "ab cd");         // invalid UTF-8 separates, never throws
  CHECK(n.fold("?!...") == "");
  // Devanagari vowel signs carry meaning: kept.
  CHECK(n.fold("नमस्ते") == "नमस्ते");
}

TEST_CASE("ASCII words, folded without utf8proc, fold as the general path folds them") {
  // "x?yé" takes the general path (the word holds a non-ASCII letter), "x?y" the ASCII one:
  // for every ASCII character in the middle, they must agree up to the final "e".
  normalizer n("none");
  normalizer en("english");
  for (int c = 0; c < 128; ++c) {
    const std::string mid(1, static_cast<char>(c));
    CAPTURE(c);
    CHECK(n.fold("x" + mid + "y\u00e9") == n.fold("x" + mid + "y") + "e");
    CHECK(n.fold("X" + mid + "Y") == n.fold("x" + mid + "y"));
  }
  // Stems of ASCII words come from the folded word, as before.
  std::vector<parley::nlu::token> a;
  en.tokenize("Running QUICKLY cats", a);
  REQUIRE(a.size() == 3);
  CHECK(a[0].stem == "run");
  CHECK(a[1].stem == "quick");
  CHECK(a[2].stem == "cat");
  CHECK(a[1].folded == "quickly");
}

TEST_CASE("tokens keep their offsets in the original text and their stems") {
  normalizer en("english");
  REQUIRE(en.stems());
  auto t = en.tokenize("Hi, Bob! I was RUNNING");
  REQUIRE(t.size() == 5);
  CHECK(t[1].plain == "bob");
  CHECK(t[1].begin == 4);
  CHECK(t[1].end == 7);
  CHECK(t[4].stem == "run");
  CHECK(t[4].folded == "running");
  normalizer fr("french");
  CHECK(fr.tokenize("Élèves")[0].plain == "eleves");
  CHECK_FALSE(normalizer("klingon").stems());  // unknown language: no stemming, no error
}

TEST_CASE("a lone combining mark that accent removal drops is no word (fuzzing regression)") {
  // Found by fuzzing (tests/fuzz/corpus/text/regress-lone-combining-mark): such a mark made an
  // empty token, and fold() a double space.
  const std::string acute = "\u0301", diaeresis = "\u0308", almost_equal = "\u034c";
  for (const char* language : {"none", "english", "greek"}) {
    CAPTURE(language);
    normalizer n(language);
    CHECK(n.fold("a " + acute + " b") == "a b");
    CHECK(n.fold(acute) == "");
    CHECK(n.fold(" " + acute + diaeresis + ", " + almost_equal + " ") == "");
    CHECK(n.fold("x " + acute + "! " + almost_equal + diaeresis + " y") == "x y");
    CHECK(n.fold("caf" + std::string("e") + acute) == "cafe");  // a mark on a letter still goes
    CHECK(n.tokenize(acute).empty());
    auto t = n.tokenize("a " + acute + " b " + diaeresis + almost_equal);
    REQUIRE(t.size() == 2);
    CHECK(t[0].plain == "a");
    CHECK(t[1].plain == "b");
    CHECK(t[1].begin == 2 + acute.size() + 1);
    // The fuzzer's input: Greek words with marks between them.
    const std::string found("\x00\xce\x9a\xce\xb1\xce\xbb\xce\xb7\xce\xab\xab\xab\xab\xab\xab\xab"
                            "\xab\xab\xab\xab\xab\xab\xab\xbc\xce\xad\xcf\x81\xce\xb1\x20\x9d\xce"
                            "\xcd\x8c\xcf\xc3\xce\xbc\xce\xb5\x20\xce\xa3\xce\x8a\xce\xa3", 49);
    const std::string folded = n.fold(found);
    CHECK(folded.find("  ") == std::string::npos);
    CHECK(folded.front() != ' ');
    CHECK(folded.back() != ' ');
    for (const auto& tok : n.tokenize(found)) {
      CHECK_FALSE(tok.plain.empty());
      CHECK_FALSE(tok.folded.empty());
      CHECK(tok.begin < tok.end);
    }
  }
  // Marks that are kept (Devanagari vowel signs carry meaning) still make a word.
  CHECK(normalizer("none").fold("\u093e") == "\u093e");
}

TEST_CASE("edit distance counts code points and adjacent swaps") {
  using parley::nlu::edit_distance;
  CHECK(edit_distance("paris", "paris", 2) == 0);
  CHECK(edit_distance("paris", "pairs", 2) == 1);
  CHECK(edit_distance("kitten", "sitting", 5) == 3);
  CHECK(edit_distance("münchen", "munchen", 2) == 1);
  CHECK(edit_distance("a", "abcdef", 2) == 3);  // stops early: limit + 1
}

TEST_CASE("custom entities match values and synonyms, ignoring case, accents and small typos") {
  entity city("city", {{"paris", {"paname"}}, {"new york", {"nyc", "big apple"}},
                       {"München", {}}, {"rome", {}}});
  auto m = city.find("I live in PARIS now");
  REQUIRE(m);
  CHECK(m->value == "paris");
  CHECK(m->text == "PARIS");
  CHECK(m->begin == 10);
  CHECK(m->edits == 0);

  m = city.find("take me to the Big Apple please");
  REQUIRE(m);
  CHECK(m->value == "new york");
  CHECK(m->text == "Big Apple");

  m = city.find("flights to pariss");
  REQUIRE(m);
  CHECK(m->value == "paris");
  CHECK(m->edits == 1);

  m = city.find("trains to munchen");
  REQUIRE(m);
  CHECK(m->value == "München");

  CHECK_FALSE(city.find("I am at home"));   // "home" is not "rome": short words must be exact
  CHECK_FALSE(city.find("nothing here"));
  CHECK_FALSE(entity("strict", {{"paris", {}}}, false).find("pariss"));
  CHECK_THROWS_AS(entity("", {{"x", {}}}), parley::definition_error);
  CHECK_THROWS_AS(entity("e", {{"!!", {}}}), parley::definition_error);
}

TEST_CASE("the number entity reads digits and number words") {
  const auto& num = entity::number();
  CHECK(num.kind() == parley::entity_kind::number);
  CHECK(num.find("I want 3 apples")->value == "3");
  CHECK(num.find("it costs -2.5 euros")->value == "-2.5");
  CHECK(num.find("1,000 people came")->value == "1000");
  CHECK(num.find("twelve of them")->value == "12");
  CHECK(num.find("between two and 7")->value == "2");
  CHECK_FALSE(num.find("room b12"));  // part of a word, not a number
  CHECK_FALSE(num.find("none at all"));
  CHECK_FALSE(entity::any().find("anything"));
}

TEST_CASE("text_model: same data, same bits, and scores are probabilities") {
  normalizer n("english");
  parley::nlu::feature_extractor fx;
  std::vector<parley::nlu::labelled_text> data = {
      {"hello there", 0}, {"hi", 0}, {"good morning", 0},
      {"bye", 1}, {"see you later", 1}, {"goodbye my friend", 1}};
  auto a = parley::nlu::text_model::train(data, 2, n, fx);
  auto b = parley::nlu::text_model::train(data, 2, n, fx);
  for (const char* q : {"hello", "bye bye", "see you", "what is this", "gOOd MoRnInG!"}) {
    auto [la, sa] = a.predict(q);
    auto [lb, sb] = b.predict(q);
    CHECK(la == lb);
    CHECK(same_bits(sa, sb));
    std::vector<float> p;
    a.scores(q, p);
    REQUIRE(p.size() == 2);
    CHECK(p[0] >= 0);
    CHECK(p[1] >= 0);
    CHECK(p[0] + p[1] <= 1.0f + 1e-6f);
  }
  CHECK(a.predict("good morning").first == 0);
  CHECK(a.predict("see you later").first == 1);
  CHECK(a.predict("").first == 2);   // no words: no class
  CHECK(a.predict("?!").second == 0.0f);
  CHECK_THROWS_AS(parley::nlu::text_model::train({}, 2, n, fx), std::invalid_argument);
  std::vector<parley::nlu::labelled_text> bad = {{"x", 5}};
  CHECK_THROWS_AS(parley::nlu::text_model::train(bad, 2, n, fx), std::invalid_argument);
}

namespace {

// A small bot: greetings, weather in a city, pizza orders with a number, and a name.
struct bot {
  parley::agent agent{"nlu-test"};
  parley::entity city{"city", {{"paris", {"paname"}}, {"london", {}}, {"new york", {"nyc"}}}};
  parley::intent& greet = agent.new_intent(
      "greet", {"hello", "hi there", "good morning", "hey, how are you", "hello bot"});
  parley::intent& weather = agent.new_intent(
      "weather", {"what is the weather in paris", "will it rain in paris tomorrow",
                  "weather forecast for paris", "is it sunny in paris", "how cold is it in paris"});
  parley::intent& pizza = agent.new_intent(
      "pizza", {"i want 2 pizzas", "order 2 pizzas please", "can i get 2 margheritas",
                "two pizzas for delivery", "i would like to order a pizza"});
  parley::intent& name = agent.new_intent(
      "name", {"my name is John", "call me John", "i am John", "you can call me John please"});
  bot() {
    weather.parameter("city", "paris", city);
    pizza.parameter("count", "2", "number");
    name.parameter("who", "John", entity::any());
  }
  std::vector<const parley::intent*> all() const { return {&greet, &weather, &pizza, &name}; }
};

}  // namespace

TEST_CASE("default classifier: intents, calibrated scores against the threshold, parameters") {
  bot b;
  auto c = parley::make_default_classifier();
  CHECK(c->name() == "parley-ngram-logreg");
  auto intents = b.all();
  auto m = c->train(intents, b.agent);
  const double threshold = 0.4;  // the runtime's default nlp.intent_threshold

  auto p = m->predict("Hello!! how are you?");
  CHECK(p.intent == &b.greet);
  CHECK(p.intent_name == "greet");
  CHECK(p.classifier == "parley-ngram-logreg");
  CHECK(p.score >= threshold);
  CHECK(p.score <= 1.0);

  // A training sentence, however it is written, is its intent with certainty.
  p = m->predict("  HI there!! ");
  CHECK(p.intent == &b.greet);
  CHECK(p.score == 1.0);

  p = m->predict("what's the weather like in Paname?");
  REQUIRE(p.intent == &b.weather);
  CHECK(p.score >= threshold);
  REQUIRE(param(p, "city"));
  CHECK(param(p, "city")->value == "paris");
  CHECK(param(p, "city")->info["text"] == "Paname");
  CHECK(param(p, "city")->info["entity"] == "city");

  p = m->predict("is it going to rain in London");
  REQUIRE(p.intent == &b.weather);
  CHECK(param(p, "city")->value == "london");

  p = m->predict("I'd like to order 3 pizzas");
  REQUIRE(p.intent == &b.pizza);
  REQUIRE(param(p, "count"));
  CHECK(param(p, "count")->value == "3");

  p = m->predict("my name is Ada Lovelace");
  REQUIRE(p.intent == &b.name);
  REQUIRE(param(p, "who"));
  CHECK(param(p, "who")->value == "Ada Lovelace");

  // Far from every intent: below the threshold, so the runtime runs the fallback. With a
  // plain softmax over 4 intents this would still get ~0.25-0.5; the "none" share keeps it low.
  for (const char* off : {"purple elephants dance quietly", "quantum chromodynamics lecture notes",
                          "zxqv wplk"}) {
    CAPTURE(off);
    CHECK(m->predict(off).score < threshold);
  }
  p = m->predict("   ");
  CHECK_FALSE(p.matched());
  CHECK(p.score == 0.0);
}

TEST_CASE("default classifier is deterministic: same data, same bits, run after run") {
  bot b1, b2;
  auto c = parley::make_default_classifier();
  auto i1 = b1.all();
  auto i2 = b2.all();
  auto m1 = c->train(i1, b1.agent);
  auto m2 = c->train(i2, b2.agent);
  for (const char* q : {"hello", "weather in nyc", "order five pizzas", "call me Ishmael",
                        "something else entirely"}) {
    auto p1 = m1->predict(q);
    auto p2 = m2->predict(q);
    CAPTURE(q);
    CHECK(p1.intent_name == p2.intent_name);
    CHECK(same_bits(p1.score, p2.score));
  }
}

TEST_CASE("default classifier reports unusable training data, naming the intent") {
  parley::agent a("bad");
  auto& i = a.new_intent("book", {"book a table for 4"});
  i.parameter("city", "paris", "no_such_entity");
  auto c = parley::make_default_classifier();
  std::vector<const parley::intent*> v{&i};
  try {
    c->train(v, a);
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("book") != std::string::npos);
    CHECK(std::string(e.what()).find("no_such_entity") != std::string::npos);
  }
}

TEST_CASE("per state, only the intents named by its transitions compete") {
  bot b;
  b.agent.set_intent_classifier(parley::make_default_classifier());
  auto& start = b.agent.new_state("start", true);
  auto& ordering = b.agent.new_state("ordering");
  start.when_intent_matched(b.greet).go_to(ordering);
  start.when_intent_matched(b.weather).go_to(start);
  ordering.when_intent_matched(b.pizza).go_to(start);
  ordering.when_no_intent_matched().go_to(ordering);
  b.agent.start();  // trains one model per state
  REQUIRE(start.model());
  REQUIRE(ordering.model());

  auto s = start.model()->predict("hello there");
  CHECK(s.intent == &b.greet);
  // In "ordering" greet does not compete: the best it can do is pizza, and not confidently.
  auto o = ordering.model()->predict("hello there");
  CHECK(o.intent != &b.greet);
  CHECK(o.score < b.agent.intent_threshold());
  auto o2 = ordering.model()->predict("order 4 pizzas");
  CHECK(o2.intent == &b.pizza);
  CHECK(o2.score >= b.agent.intent_threshold());
  CHECK(start.model()->predict("order 4 pizzas").intent != &b.pizza);
  b.agent.stop();
}

TEST_CASE("a lone intent with no other text still rejects unrelated messages") {
  // No other intent gives negatives here: synthetic background text does.
  parley::agent a("one");
  auto& i = a.new_intent("pizza", {"i want 2 pizzas", "order 2 pizzas please",
                                   "can i get 2 margheritas"});
  auto m = parley::make_default_classifier()->train(std::vector<const parley::intent*>{&i}, a);
  CHECK(m->predict("order a pizza").score >= 0.4);
  for (const char* q : {"hello there", "purple elephants dance quietly", "what is the weather"}) {
    CAPTURE(q);
    CHECK(m->predict(q).score < 0.4);
  }
}

TEST_CASE("predict is thread-safe: concurrent threads get the single-thread answers") {
  bot b;
  auto m = parley::make_default_classifier()->train(b.all(), b.agent);
  const std::vector<std::string> queries = {
      "hello", "weather in Pariss tomorrow", "order 12 pizzas", "my name is Grace Hopper",
      "gibberish words here", "Good morning!", "is it cold in nyc", "call me Al"};
  std::vector<parley::intent_prediction> expected;
  for (const auto& q : queries) expected.push_back(m->predict(q));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        const std::size_t k = static_cast<std::size_t>(round + t) % queries.size();
        auto p = m->predict(queries[k]);
        if (p.intent != expected[k].intent || !same_bits(p.score, expected[k].score) ||
            p.parameters.size() != expected[k].parameters.size())
          ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches.load() == 0);
}
