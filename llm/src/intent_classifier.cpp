#include <parley/llm/intent_classifier.hpp>

#include <algorithm>
#include <cctype>

#include <boost/asio/post.hpp>

#include <parley/log.hpp>
#include <parley/nlu/classifier.hpp>

namespace parley::llm {

namespace {

constexpr const char* answer_format =
    "Answer with one JSON object and nothing else: "
    "{\"intent\": \"<one intent name from the list, or none>\", \"confidence\": <a number from 0 "
    "to 1>, \"parameters\": {\"<parameter name>\": \"<value from the message>\"}}. "
    "Answer \"none\" when no intent fits the message.";

struct intent_info {
  const intent* owner;
  std::string name;
};

// What a trained model needs, shared with the calls in flight (immutable once built).
struct model_data {
  std::weak_ptr<client> llm;
  net::any_io_executor executor;
  llm_classifier_options options;
  std::string system_prompt;
  std::vector<intent_info> intents;
  std::vector<std::string> names;
  std::unique_ptr<intent_model> fallback;
  std::string fallback_name;
  std::string name;  // "llm:<model>"
};

std::string build_prompt(std::span<const intent* const> intents, std::size_t examples) {
  std::string p =
      "You classify the message of a user talking to a chatbot into one of these intents.\n\n";
  for (const intent* i : intents) {
    p += "- " + i->name();
    if (!i->description().empty()) p += ": " + i->description();
    p += "\n";
    const auto& ts = i->training_sentences();
    if (!ts.empty()) {
      p += "  examples:";
      for (std::size_t k = 0; k < ts.size() && k < examples; ++k)
        p += (k ? "; " : " ") + json(ts[k]).dump();
      p += "\n";
    }
    if (!i->parameters().empty()) {
      p += "  parameters:";
      for (const auto& s : i->parameters()) p += " " + s.name + " (" + s.entity + ")";
      p += "\n";
    }
  }
  p += "\n";
  p += answer_format;
  return p;
}

intent_prediction from_answer(const model_data& d, const llm_intent_answer& a) {
  intent_prediction p;
  p.classifier = d.name;
  p.score = a.confidence;
  if (a.intent.empty()) return p;
  for (const auto& i : d.intents)
    if (i.name == a.intent) {
      p.intent = i.owner;
      p.intent_name = i.name;
      for (const auto& spec : i.owner->parameters()) {
        auto v = a.parameters.find(spec.name);
        if (v == a.parameters.end() || v->is_null()) continue;
        std::string value = v->is_string() ? v->get<std::string>() : v->dump();
        p.parameters.push_back(
            {spec.name, value, {{"entity", spec.entity}, {"value", value}, {"source", "llm"}}});
      }
    }
  return p;
}

class llm_model final : public intent_model {
 public:
  explicit llm_model(std::shared_ptr<const model_data> d) : d_(std::move(d)) {}

  // Synchronous callers (none in the runtime) get the local classifier's answer.
  intent_prediction predict(std::string_view text) const override { return fallback(text, "asked synchronously"); }

  bool asynchronous() const override { return true; }

  void async_predict(std::string text, prediction_handler done) const override {
    struct call {
      explicit call(const net::any_io_executor& ex) : strand(net::make_strand(ex)), timer(strand) {}
      net::strand<net::any_io_executor> strand;
      net::steady_timer timer;
      cancel_handle cancel;
    };
    auto llm = d_->llm.lock();
    if (!llm) {
      done(fallback(text, "the LLM client is gone"));
      return;
    }
    auto c = std::make_shared<call>(d_->executor);
    // The whole question, retries included, is limited by one timer that cancels the chat.
    net::post(c->strand, [c, limit = d_->options.timeout] {
      c->timer.expires_after(limit);
      c->timer.async_wait([c](boost::system::error_code ec) {
        if (!ec) c->cancel.cancel();
      });
    });
    chat_request req;
    req.model = d_->options.model;
    req.messages = json::array({{{"role", "system"}, {"content", d_->system_prompt}},
                                {{"role", "user"}, {"content", text}}});
    req.extra = {{"temperature", 0}};
    req.timeout = d_->options.timeout;
    llm->async_chat(
        std::move(req),
        [d = d_, c, text, done = std::move(done)](std::exception_ptr e, chat_result r) {
          net::post(c->strand, [c] { c->timer.cancel(); });
          std::string why;
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const error& x) {
              why = x.kind() == error_kind::cancelled
                        ? "no answer within " + std::to_string(d->options.timeout.count()) + " ms"
                        : x.what();
            } catch (const std::exception& x) {
              why = x.what();
            }
          } else {
            llm_intent_answer a;
            if (parse_intent_answer(r.text, d->names, a, why)) {
              done(from_answer(*d, a));
              return;
            }
          }
          done(fallback_of(*d, text, why));
        },
        c->cancel);
  }

 private:
  static intent_prediction fallback_of(const model_data& d, std::string_view text,
                                       const std::string& why) {
    PARLEY_LOG(warn, "llm intent classifier: " << why << "; the " << d.fallback_name
                                               << " classifier decides");
    intent_prediction p = d.fallback->predict(text);
    p.classifier = "llm-fallback:" + d.fallback_name;
    return p;
  }
  intent_prediction fallback(std::string_view text, const std::string& why) const {
    return fallback_of(*d_, text, why);
  }

  std::shared_ptr<const model_data> d_;
};

class llm_classifier final : public intent_classifier {
 public:
  llm_classifier(net::any_io_executor ex, std::shared_ptr<client> model, llm_classifier_options o)
      : executor_(std::move(ex)), llm_(model), options_(std::move(o)) {
    if (!options_.fallback) options_.fallback = make_default_classifier();
    name_ = "llm:" + (options_.model.empty() ? model->options().model : options_.model);
  }

  std::string_view name() const override { return name_; }

  std::unique_ptr<intent_model> train(std::span<const intent* const> intents,
                                      const agent& owner) const override {
    auto d = std::make_shared<model_data>();
    d->llm = llm_;
    d->executor = executor_;
    d->options = options_;
    d->name = name_;
    d->fallback = options_.fallback->train(intents, owner);
    d->fallback_name = std::string(options_.fallback->name());
    d->system_prompt = build_prompt(intents, options_.examples_per_intent);
    for (const intent* i : intents) {
      d->intents.push_back({i, i->name()});
      d->names.push_back(i->name());
    }
    return std::make_unique<llm_model>(std::move(d));
  }

 private:
  net::any_io_executor executor_;
  std::weak_ptr<client> llm_;
  llm_classifier_options options_;
  std::string name_;
};

}  // namespace

bool parse_intent_answer(std::string_view text, const std::vector<std::string>& names,
                         llm_intent_answer& out, std::string& why) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  std::string_view body = trim(text);
  // One fenced block (```json ... ```), as models often write, and nothing around it.
  if (body.rfind("```", 0) == 0 && body.size() >= 6 && body.substr(body.size() - 3) == "```") {
    body.remove_prefix(3);
    body.remove_suffix(3);
    if (body.rfind("json", 0) == 0) body.remove_prefix(4);
    body = trim(body);
  }
  const std::string shown = std::string(text.substr(0, 80)) + (text.size() > 80 ? "..." : "");
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) {
    why = "the model's answer is not a JSON object: '" + shown + "'";
    return false;
  }
  auto intent = j.find("intent");
  auto confidence = j.find("confidence");
  if (intent == j.end() || !intent->is_string()) {
    why = "the model's answer has no \"intent\" string: '" + shown + "'";
    return false;
  }
  if (confidence == j.end() || !confidence->is_number() || confidence->get<double>() < 0 ||
      confidence->get<double>() > 1) {
    why = "the model's answer has no \"confidence\" between 0 and 1: '" + shown + "'";
    return false;
  }
  std::string name = intent->get<std::string>();
  if (name == "none" || name.empty()) {
    out.intent.clear();
  } else if (std::find(names.begin(), names.end(), name) != names.end()) {
    out.intent = name;
  } else {
    why = "the model named an intent that is not offered: '" + name + "'";
    return false;
  }
  out.confidence = confidence->get<double>();
  auto params = j.find("parameters");
  out.parameters = params != j.end() && params->is_object() ? *params : json::object();
  return true;
}

std::shared_ptr<intent_classifier> make_llm_classifier(net::any_io_executor executor,
                                                       std::shared_ptr<client> model,
                                                       llm_classifier_options options) {
  return std::make_shared<llm_classifier>(std::move(executor), std::move(model),
                                          std::move(options));
}

}  // namespace parley::llm
