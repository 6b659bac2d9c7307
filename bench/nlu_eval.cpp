// nlu_eval: measures Parley's intent classifier on a public benchmark. It reads CLINC150
// (data_full.json) or a Braun et al. corpus, trains on the training split only, and prints
// accuracy, micro-F1, out-of-scope recall (threshold chosen on `val`, never on `test`),
// training time and prediction latency.
//   nlu_eval FILE [--threshold T] [--json] [--language L] [--min-f1 X] [--startup]
// --startup also times agent::start() for a bot with one state where every intent competes.
// --min-f1 X makes it exit with status 3 when the test micro-F1 is below X (for ctest).
// Tuning flags (--epochs, --lr, --l2, --dropout, --temperature, --char MIN,MAX, ...) and
// --curve (the threshold study on val) are for experiments.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <parley/agent.hpp>
#include <parley/intent.hpp>
#include <parley/log.hpp>
#include <parley/nlu/classifier.hpp>

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

struct example {
  std::string text;
  std::string intent;  // "" for out-of-scope
};

struct data_set {
  std::string format;
  std::vector<example> train, val, test, oos_val, oos_test;
};

data_set read(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("nlu_eval: cannot open '" + file + "'");
  json j = json::parse(in);
  data_set d;
  auto list = [&](const char* key, std::vector<example>& out, bool oos) {
    if (!j.contains(key)) return;
    for (const auto& row : j.at(key))
      out.push_back({row.at(0).get<std::string>(), oos ? "" : row.at(1).get<std::string>()});
  };
  if (j.contains("train")) {
    d.format = "clinc150";
    list("train", d.train, false);
    list("val", d.val, false);
    list("test", d.test, false);
    list("oos_val", d.oos_val, true);
    list("oos_test", d.oos_test, true);
  } else if (j.contains("sentences")) {
    d.format = "braun";
    for (const auto& s : j.at("sentences")) {
      example e{s.at("text").get<std::string>(), s.at("intent").get<std::string>()};
      (s.value("training", false) ? d.train : d.test).push_back(std::move(e));
    }
  } else {
    throw std::runtime_error("nlu_eval: '" + file +
                             "' has neither 'train' (CLINC150) nor 'sentences' (Braun)");
  }
  if (d.train.empty()) throw std::runtime_error("nlu_eval: '" + file + "' has no training data");
  return d;
}

struct scored {
  std::uint32_t label;
  float score;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) try {
  parley::set_log_level(parley::log_level::warn);
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::cerr << "usage: nlu_eval FILE [--threshold T] [--json] [--language L] [--min-f1 X]"
                 " [--startup]\n";
    return argc < 2 ? 2 : 0;
  }
  std::string file = argv[1];
  double threshold = -1;
  bool as_json = false;
  bool curve = false;
  double min_f1 = -1;
  bool startup = false;
  auto cfg = parley::nlu::default_classifier_options();
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("nlu_eval: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--threshold") threshold = std::stod(next());
    else if (a == "--json") as_json = true;
    else if (a == "--curve") curve = true;
    else if (a == "--min-f1") min_f1 = std::stod(next());
    else if (a == "--startup") startup = true;
    else if (a == "--language") cfg.language = next();
    else if (a == "--epochs") cfg.training.epochs = std::stoi(next());
    else if (a == "--lr") cfg.training.learning_rate = std::stof(next());
    else if (a == "--l2") cfg.training.l2 = std::stof(next());
    else if (a == "--none") cfg.training.none_logit = std::stof(next());
    else if (a == "--min-steps") cfg.training.min_steps = std::stoull(next());
    else if (a == "--min-df") cfg.training.min_df = std::stoull(next());
    else if (a == "--seed") cfg.training.seed = std::stoull(next());
    else if (a == "--dropout") cfg.training.dropout = std::stof(next());
    else if (a == "--no-none") cfg.training.use_none = false;
    else if (a == "--temperature") cfg.training.temperature = std::stof(next());
    else if (a == "--char") {
      auto v = next();
      cfg.features.char_min = std::stoi(v.substr(0, v.find(',')));
      cfg.features.char_max = std::stoi(v.substr(v.find(',') + 1));
    } else if (a == "--char-weight") cfg.features.char_weight = std::stof(next());
    else if (a == "--bigram-weight") cfg.features.bigram_weight = std::stof(next());
    else if (a == "--no-bigrams") cfg.features.word_bigrams = false;
    else throw std::runtime_error("nlu_eval: unknown option '" + a + "'");
  }

  data_set d = read(file);
  std::map<std::string, std::uint32_t> label_of;
  std::vector<std::string> names;
  for (const auto& e : d.train)
    if (label_of.try_emplace(e.intent, static_cast<std::uint32_t>(names.size())).second)
      names.push_back(e.intent);
  const auto unknown = static_cast<std::uint32_t>(names.size());
  auto label = [&](const std::string& intent) {
    auto it = label_of.find(intent);
    return it == label_of.end() ? unknown : it->second;
  };

  // The classifier exactly as a bot uses it: one intent per label, trained by the default
  // classifier for one state in which all of them compete.
  parley::agent bot("nlu_eval");
  std::vector<std::vector<std::string>> sentences(names.size());
  for (const auto& e : d.train) sentences[label(e.intent)].push_back(e.text);
  std::vector<const parley::intent*> intents;
  std::map<const parley::intent*, std::uint32_t> label_of_intent;
  for (std::size_t k = 0; k < names.size(); ++k) {
    intents.push_back(&bot.new_intent(names[k], std::move(sentences[k])));
    label_of_intent[intents.back()] = static_cast<std::uint32_t>(k);
  }
  auto classifier = parley::make_default_classifier(cfg);
  auto t0 = steady::now();
  auto model = classifier->train(intents, bot);
  const double train_s = std::chrono::duration<double>(steady::now() - t0).count();

  // Start-up as a bot sees it: one state whose transitions name every intent; agent::start()
  // trains its model (and starts the worker threads).
  double startup_s = 0;
  if (startup) {
    auto& main_state = bot.new_state("main", true);
    for (const auto* i : intents) main_state.when_intent_matched(*i).go_to(main_state);
    bot.set_intent_classifier(classifier);
    auto s0 = steady::now();
    bot.start();
    startup_s = std::chrono::duration<double>(steady::now() - s0).count();
    bot.stop();
  }

  std::vector<double> latencies;
  auto run = [&](const std::vector<example>& set, bool timed) {
    std::vector<scored> out;
    out.reserve(set.size());
    for (const auto& e : set) {
      auto s = steady::now();
      auto p = model->predict(e.text);
      auto el = std::chrono::duration<double, std::micro>(steady::now() - s).count();
      if (timed) latencies.push_back(el);
      out.push_back({p.intent ? label_of_intent.at(p.intent) : unknown, static_cast<float>(p.score)});
    }
    return out;
  };
  // Accuracy over in-scope examples: a prediction counts only when it is right and reaches t.
  auto in_scope_acc = [&](const std::vector<example>& set, const std::vector<scored>& s, double t) {
    std::size_t ok = 0;
    for (std::size_t i = 0; i < set.size(); ++i)
      ok += (s[i].label == label(set[i].intent) && s[i].score >= t) ? 1 : 0;
    return set.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(set.size());
  };
  auto oos_recall = [&](const std::vector<scored>& s, double t) {
    std::size_t rej = 0;
    for (const auto& x : s) rej += x.score < t ? 1 : 0;
    return s.empty() ? 0.0 : static_cast<double>(rej) / static_cast<double>(s.size());
  };
  // Micro-F1 over in-scope examples: predictions below t count as no prediction.
  auto micro_f1 = [&](const std::vector<example>& set, const std::vector<scored>& s, double t) {
    std::size_t tp = 0, predicted = 0;
    for (std::size_t i = 0; i < set.size(); ++i) {
      if (s[i].score < t) continue;
      ++predicted;
      tp += s[i].label == label(set[i].intent) ? 1 : 0;
    }
    double p = predicted ? static_cast<double>(tp) / static_cast<double>(predicted) : 0;
    double r = set.empty() ? 0 : static_cast<double>(tp) / static_cast<double>(set.size());
    return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
  };

  auto test = run(d.test, true);
  json report;
  report["file"] = file;
  report["format"] = d.format;
  report["intents"] = names.size();
  report["train"] = d.train.size();
  report["test"] = d.test.size();
  report["train_seconds"] = train_s;
  if (startup) report["agent_start_seconds"] = startup_s;
  report["accuracy"] = in_scope_acc(d.test, test, 0);
  report["micro_f1"] = micro_f1(d.test, test, 0);

  const bool has_oos = !d.oos_test.empty();
  if (has_oos) {
    auto val = run(d.val, false);
    auto oos_val = run(d.oos_val, false);
    auto oos_test = run(d.oos_test, true);
    std::string how = "given";
    if (threshold < 0) {
      // Chosen on val only: the threshold with the best accuracy over all val queries, with
      // out-of-scope as one more class (the paper's "oos-threshold" setting).
      how = "chosen on val";
      double best = -1;
      const auto nv = static_cast<double>(d.val.size()), no = static_cast<double>(d.oos_val.size());
      for (int k = 0; k <= 100; ++k) {
        double t = k / 100.0;
        double v = (in_scope_acc(d.val, val, t) * nv + oos_recall(oos_val, t) * no) / (nv + no);
        if (curve)
          std::printf("val t=%.2f in-scope %.4f oos recall %.4f overall %.4f\n", t,
                      in_scope_acc(d.val, val, t), oos_recall(oos_val, t), v);
        if (v > best + 1e-12) { best = v; threshold = t; }
      }
    }
    report["oos_test"] = d.oos_test.size();
    report["threshold"] = threshold;
    report["threshold_source"] = how;
    report["in_scope_accuracy_at_threshold"] = in_scope_acc(d.test, test, threshold);
    report["oos_recall_at_threshold"] = oos_recall(oos_test, threshold);
    report["in_scope_accuracy_at_0.4"] = in_scope_acc(d.test, test, 0.4);
    report["oos_recall_at_0.4"] = oos_recall(oos_test, 0.4);
  } else if (threshold >= 0) {
    report["threshold"] = threshold;
    report["micro_f1_at_threshold"] = micro_f1(d.test, test, threshold);
  }
  report["predict_p50_us"] = percentile(latencies, 0.5);
  report["predict_p99_us"] = percentile(latencies, 0.99);

  if (as_json) {
    std::cout << report.dump(2) << "\n";
  } else {
    std::printf("file: %s (%s)\n", file.c_str(), d.format.c_str());
    std::printf("intents: %zu  train: %zu  test: %zu%s\n", names.size(), d.train.size(),
                d.test.size(),
                has_oos ? ("  oos test: " + std::to_string(d.oos_test.size())).c_str() : "");
    std::printf("accuracy: %.4f  micro-F1: %.4f  (no threshold)\n",
                report["accuracy"].get<double>(), report["micro_f1"].get<double>());
    if (has_oos) {
      std::printf("threshold %.2f (%s): in-scope accuracy %.4f  oos recall %.4f\n", threshold,
                  report["threshold_source"].get<std::string>().c_str(),
                  report["in_scope_accuracy_at_threshold"].get<double>(),
                  report["oos_recall_at_threshold"].get<double>());
      std::printf("threshold 0.40 (default): in-scope accuracy %.4f  oos recall %.4f\n",
                  report["in_scope_accuracy_at_0.4"].get<double>(),
                  report["oos_recall_at_0.4"].get<double>());
    } else if (threshold >= 0) {
      std::printf("threshold %.2f: micro-F1 %.4f\n", threshold,
                  report["micro_f1_at_threshold"].get<double>());
    }
    std::printf("training: %.3f s\n", train_s);
    if (startup) std::printf("agent start (one state, every intent competing): %.3f s\n", startup_s);
    std::printf("predict: p50 %.1f us  p99 %.1f us\n", report["predict_p50_us"].get<double>(),
                report["predict_p99_us"].get<double>());
  }
  if (min_f1 >= 0 && report["micro_f1"].get<double>() < min_f1) {
    std::fprintf(stderr, "nlu_eval: micro-F1 %.4f is below --min-f1 %.4f\n",
                 report["micro_f1"].get<double>(), min_f1);
    return 3;
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << e.what() << "\n";
  return 1;
}
