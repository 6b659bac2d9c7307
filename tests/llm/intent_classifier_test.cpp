// The LLM intent classifier in a real agent, against the scripted OpenAI-compatible server:
// the model's match, "none", garbage, an intent it was not offered and a timeout (the local
// classifier decides), events queued in order while the model thinks, and the recorded rows.
#include <doctest/doctest.h>

#include <filesystem>

#include <SQLiteCpp/SQLiteCpp.h>

#include <parley/db/sqlite_db_handler.hpp>
#include <parley/llm/intent_classifier.hpp>

#include "../runtime/harness.hpp"
#include "scripted_server.hpp"

using namespace std::chrono_literals;
using parley::event;
using parley::json;
using parley::session;
namespace llm = parley::llm;
namespace fs = std::filesystem;

TEST_CASE("parse_intent_answer reads only a strict JSON answer") {
  const std::vector<std::string> names = {"hello", "weather"};
  llm::llm_intent_answer a;
  std::string why;
  CHECK(llm::parse_intent_answer(R"({"intent":"hello","confidence":0.9})", names, a, why));
  CHECK(a.intent == "hello");
  CHECK(a.confidence == doctest::Approx(0.9));
  CHECK(llm::parse_intent_answer("```json\n{\"intent\":\"none\",\"confidence\":1}\n```", names, a, why));
  CHECK(a.intent.empty());
  CHECK_FALSE(llm::parse_intent_answer("It is hello.", names, a, why));
  CHECK(why.find("not a JSON object") != std::string::npos);
  CHECK_FALSE(llm::parse_intent_answer(R"({"intent":"pizza","confidence":1})", names, a, why));
  CHECK(why.find("not offered") != std::string::npos);
  CHECK_FALSE(llm::parse_intent_answer(R"({"intent":"hello"})", names, a, why));
  CHECK_FALSE(llm::parse_intent_answer(R"({"intent":"hello","confidence":7})", names, a, why));
  CHECK_FALSE(llm::parse_intent_answer(R"(Sure! {"intent":"hello","confidence":1})", names, a, why));
}

TEST_CASE("the LLM classifier picks intents per state, falls back to the local one, and is recorded") {
  const fs::path dir = fs::temp_directory_path() / ("parley-llm-intent-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string db_path = (dir / "intent.db").string();
  test::scripted_server server;
  {
    test::harness h("intents", 2);
    parley::db::sqlite_options so;
    so.path = db_path;
    h.agent.use_db(std::make_shared<parley::db::sqlite_db_handler>(so));

    auto& hello = h.agent.new_intent("hello", {"hello", "hi there"}, "the user greets the bot");
    auto& weather = h.agent.new_intent("weather", {"what is the weather in paris"},
                                       "the user asks about the weather in a city");
    weather.parameter("city", "paris", "any");

    auto& start = h.agent.new_state("start", true);
    auto& greeted = h.agent.new_state("greeted");
    auto& forecast = h.agent.new_state("forecast");
    auto& confused = h.agent.new_state("confused");
    start.when_intent_matched(hello).go_to(greeted);
    start.when_intent_matched(weather).go_to(forecast);
    start.when_no_intent_matched().go_to(confused);
    greeted.set_body([](session& s) { s.reply("hi!"); });
    greeted.go_to(start);
    forecast.set_body([](session& s) {
      const auto* city = s.event().parameter("city");
      s.reply("weather in " + (city ? city->value : std::string("?")));
    });
    forecast.go_to(start);
    confused.set_body([](session& s) { s.reply("sorry"); });
    confused.go_to(start);

    llm::client_options o;
    o.base_url = server.base_url();
    o.model = "scripted-model";
    o.max_retries = 0;
    auto model = std::make_shared<llm::client>(h.agent.io_context().get_executor(), o);
    llm::llm_classifier_options co;
    co.timeout = 1s;
    // Per state: only "start" asks the model; the agent's classifier stays the local one.
    start.set_intent_classifier(llm::make_llm_classifier(h.agent.io_context().get_executor(), model, co));

    server.push(test::exchange::held(test::completion(R"({"intent":"hello","confidence":0.95})")));
    server.push(test::exchange::json_body(test::completion(R"({"intent":"none","confidence":0.9})")));
    server.push(test::exchange::json_body(test::completion(
        "```json\n{\"intent\":\"weather\",\"confidence\":0.8,\"parameters\":{\"city\":\"Lisbon\"}}\n```")));
    server.push(test::exchange::json_body(test::completion("I think they said hello")));  // garbage
    server.push(test::exchange::json_body(test::completion(R"({"intent":"order_pizza","confidence":1})")));
    server.push(test::exchange::hang());
    h.agent.start();

    auto s = h.session("u1");
    // While the model thinks, the next message waits in the mailbox and another session runs.
    s->post(event::text("hey"));
    s->post(event::text("blah blah"));
    REQUIRE(h.replies.wait([&] { return server.request_count() == 1; }));
    auto other = h.session("u2");
    CHECK(h.state_of(other) == "start");  // its strand is not held up by u1's question
    CHECK(h.replies.of("u1").empty());
    server.release();
    REQUIRE(h.replies.wait_count("u1", 2));
    CHECK(h.replies.of("u1") == std::vector<std::string>{"hi!", "sorry"});

    s->post(event::text("is it raining in lisbon"));
    REQUIRE(h.replies.wait_count("u1", 3));
    CHECK(h.replies.of("u1")[2] == "weather in Lisbon");

    s->post(event::text("hello"));  // garbage answer: the local classifier knows "hello"
    REQUIRE(h.replies.wait_count("u1", 4));
    CHECK(h.replies.of("u1")[3] == "hi!");

    s->post(event::text("hi there"));  // an intent not offered: the local classifier
    REQUIRE(h.replies.wait_count("u1", 5));
    CHECK(h.replies.of("u1")[4] == "hi!");

    auto t0 = std::chrono::steady_clock::now();
    s->post(event::text("what is the weather in paris"));  // the model hangs: 1 s, then local
    REQUIRE(h.replies.wait_count("u1", 6));
    CHECK(std::chrono::steady_clock::now() - t0 >= 900ms);
    CHECK(h.replies.of("u1")[5] == "weather in paris");

    // The prompt names the intents, their descriptions, examples and parameters.
    auto first = json::parse(server.requests()[0].body);
    std::string system = first["messages"][0]["content"];
    CHECK(system.find("- hello: the user greets the bot") != std::string::npos);
    CHECK(system.find("\"hi there\"") != std::string::npos);
    CHECK(system.find("parameters: city (any)") != std::string::npos);
    CHECK(first["messages"][1]["content"] == "hey");
    CHECK(first["model"] == "scripted-model");
  }
  {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT message, intent_classifier, coalesce(intent, ''), score "
                            "FROM intent_prediction ORDER BY id");
    std::vector<std::vector<std::string>> rows;
    while (q.executeStep())
      rows.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                      q.getColumn(2).getString()});
    REQUIRE(rows.size() == 6);
    CHECK(rows[0] == std::vector<std::string>{"hey", "llm:scripted-model", "hello"});
    CHECK(rows[1] == std::vector<std::string>{"blah blah", "llm:scripted-model", ""});
    CHECK(rows[2] == std::vector<std::string>{"is it raining in lisbon", "llm:scripted-model", "weather"});
    CHECK(rows[3] == std::vector<std::string>{"hello", "llm-fallback:parley-ngram-logreg", "hello"});
    CHECK(rows[4] == std::vector<std::string>{"hi there", "llm-fallback:parley-ngram-logreg", "hello"});
    CHECK(rows[5] == std::vector<std::string>{"what is the weather in paris",
                                              "llm-fallback:parley-ngram-logreg", "weather"});
    SQLite::Statement params(db, "SELECT count(*) FROM parameter WHERE name = 'city' AND value = 'Lisbon'");
    REQUIRE(params.executeStep());
    CHECK(params.getColumn(0).getInt() == 1);
  }
  fs::remove_all(dir);
}
