#include <parley/nlu/text_model.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "splitmix64.hpp"

namespace parley::nlu {
namespace {

constexpr std::uint32_t no_row = 0xFFFFFFFFu;


std::size_t table_slot(std::uint64_t hash, std::size_t mask) {
  return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

// Softmax over z[0..n) plus an optional implicit class of logit `none`; writes
// probabilities into p and returns nothing. Stable (subtracts the max).
void softmax(const float* z, std::size_t n, bool use_none, float none, float inv_t, float* p) {
  float m = use_none ? none * inv_t : -INFINITY;
  for (std::size_t c = 0; c < n; ++c) m = std::max(m, z[c] * inv_t);
  float sum = use_none ? std::exp(none * inv_t - m) : 0.0f;
  for (std::size_t c = 0; c < n; ++c) {
    p[c] = std::exp(z[c] * inv_t - m);
    sum += p[c];
  }
  const float inv = 1.0f / sum;
  for (std::size_t c = 0; c < n; ++c) p[c] *= inv;
}

// The two loops that take nearly all the time, compiled for AVX2 as well where the CPU has it.
// Both are element-wise (no reordered sums), so every CPU computes the same bits.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define PARLEY_NLU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PARLEY_NLU_CLONES
#endif

PARLEY_NLU_CLONES void add_scaled(float* __restrict z, const float* __restrict w, float v,
                                  std::size_t n) {
  for (std::size_t c = 0; c < n; ++c) z[c] += v * w[c];
}

PARLEY_NLU_CLONES void decay_and_step(float* __restrict w, const float* __restrict g, float decay,
                                      float a, std::size_t n) {
  for (std::size_t c = 0; c < n; ++c) w[c] = w[c] * decay - a * g[c];
}

}  // namespace

std::uint32_t text_model::find(std::uint64_t hash) const {
  if (keys_.empty()) return no_row;
  const std::size_t mask = keys_.size() - 1;
  for (std::size_t s = table_slot(hash, mask);; s = (s + 1) & mask) {
    if (keys_[s] == hash) return rows_[s];
    if (keys_[s] == 0) return no_row;
  }
}

void text_model::vectorize_raw(const std::vector<raw_feature>& raw, std::vector<entry>& out) const {
  out.clear();
  double norm2 = 0;
  for (const auto& f : raw) {
    const std::uint32_t row = find(f.hash);
    const float idf = row == no_row ? unseen_idf_ : idf_[row];
    const float v = (1.0f + std::log(f.count)) * idf * f.group_weight;
    norm2 += static_cast<double>(v) * v;
    if (row != no_row) out.push_back({row, v});
  }
  if (norm2 > 0) {
    const auto inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (auto& e : out) e.value *= inv;
  }
}

bool text_model::vectorize(std::string_view text, std::vector<entry>& out) const {
  thread_local std::vector<token> tokens;
  thread_local std::vector<raw_feature> raw;
  norm_.tokenize(text, tokens);
  features_.extract(tokens, raw);
  vectorize_raw(raw, out);
  return !tokens.empty();
}

void text_model::logits(const std::vector<entry>& x, float* z) const {
  const std::size_t stride = stride_;
  if (bias_.empty()) {
    std::fill(z, z + stride, 0.0f);
  } else {
    std::copy(bias_.begin(), bias_.end(), z);
  }
  for (const auto& e : x)
    add_scaled(z, weights_.data() + static_cast<std::size_t>(e.index) * stride, e.value, stride);
}

bool text_model::score_all(std::string_view text, std::vector<float>& out) const {
  thread_local std::vector<entry> x;
  thread_local std::vector<float> z;
  const bool words = vectorize(text, x);
  z.resize(stride_);
  logits(x, z.data());
  out.resize(outputs_);
  softmax(z.data(), outputs_, options_.use_none, options_.none_logit, 1.0f / options_.temperature,
          out.data());
  out.resize(classes_);  // drops the background class's share, if any
  return words;
}

void text_model::scores(std::string_view text, std::vector<float>& out) const {
  score_all(text, out);
}

std::pair<std::uint32_t, float> text_model::predict(std::string_view text) const {
  thread_local std::vector<float> p;
  if (classes_ == 0 || !score_all(text, p)) return {static_cast<std::uint32_t>(classes_), 0.0f};
  auto best = std::max_element(p.begin(), p.end());
  return {static_cast<std::uint32_t>(best - p.begin()), *best};
}

text_model text_model::train(std::span<const labelled_text> examples, std::size_t classes,
                             const normalizer& norm, const feature_extractor& features,
                             const train_options& options) {
  if (examples.empty()) throw std::invalid_argument("text_model::train: no training examples");
  if (classes == 0) throw std::invalid_argument("text_model::train: no classes");
  text_model m;
  m.norm_ = norm;
  m.features_ = features;
  m.options_ = options;
  m.classes_ = classes;
  bool background = false;
  for (const auto& ex : examples) background = background || ex.label == classes;
  m.outputs_ = classes + (background ? 1 : 0);
  m.stride_ = (m.outputs_ + 7) / 8 * 8;

  // 1. Features of every example; rows numbered in order of first appearance (deterministic).
  const std::size_t n = examples.size();
  for (const auto& ex : examples)
    if (ex.label > classes) throw std::invalid_argument("text_model::train: label out of range");
  std::vector<std::vector<raw_feature>> raw(n);
  {
    // Each example is independent: extract in parallel, merge below in example order.
    unsigned threads = options.threads ? options.threads : std::thread::hardware_concurrency();
    threads = std::clamp<unsigned>(threads, 1, static_cast<unsigned>(std::max<std::size_t>(1, n / 256)));
    auto work = [&](std::size_t from, std::size_t to) {
      std::vector<token> tokens;
      for (std::size_t i = from; i < to; ++i) {
        norm.tokenize(examples[i].text, tokens);
        features.extract(tokens, raw[i]);
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t)
      pool.emplace_back(work, n * t / threads, n * (t + 1) / threads);
    work(0, n / threads);
    for (auto& th : pool) th.join();
  }
  std::unordered_map<std::uint64_t, std::uint32_t> row_of;
  std::vector<std::uint64_t> hashes;
  std::vector<float> df;
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& f : raw[i]) {
      auto [it, fresh] = row_of.try_emplace(f.hash, static_cast<std::uint32_t>(hashes.size()));
      if (fresh) {
        hashes.push_back(f.hash);
        df.push_back(0);
      }
      df[it->second] += 1;
    }
  }
  // Features seen in fewer than min_df examples are dropped: they teach little and would
  // cost a row of weights each. At prediction they count as unseen (in the norm only).
  if (options.min_df > 1) {
    std::size_t kept = 0;
    for (std::size_t r = 0; r < hashes.size(); ++r)
      if (df[r] >= static_cast<float>(options.min_df)) {
        hashes[kept] = hashes[r];
        df[kept] = df[r];
        ++kept;
      }
    hashes.resize(kept);
    df.resize(kept);
  }
  const std::size_t nf = hashes.size();
  std::size_t cap = 16;
  while (cap < nf * 2) cap *= 2;
  m.keys_.assign(cap, 0);
  m.rows_.assign(cap, no_row);
  for (std::uint32_t r = 0; r < nf; ++r) {
    for (std::size_t s = table_slot(hashes[r], cap - 1);; s = (s + 1) & (cap - 1)) {
      if (m.keys_[s] == 0) {
        m.keys_[s] = hashes[r];
        m.rows_[s] = r;
        break;
      }
    }
  }
  const auto N = static_cast<float>(n);
  m.idf_.resize(nf);
  for (std::size_t r = 0; r < nf; ++r) m.idf_[r] = std::log((1 + N) / (1 + df[r])) + 1;
  m.unseen_idf_ = std::log(1 + N) + 1;

  // 2. TF-IDF vectors (CSR).
  std::vector<std::size_t> offsets(n + 1, 0);
  std::vector<entry> entries;
  std::vector<entry> x;
  for (std::size_t i = 0; i < n; ++i) {
    m.vectorize_raw(raw[i], x);
    entries.insert(entries.end(), x.begin(), x.end());
    offsets[i + 1] = entries.size();
  }

  // 3. Multinomial logistic regression by SGD: one example at a time in a seeded random order,
  // step size decaying linearly to zero (as fastText does), L2 applied to the rows touched.
  const std::size_t stride = m.stride_;
  m.weights_.assign(nf * stride, 0.0f);
  if (!options.use_none) m.bias_.assign(stride, 0.0f);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  detail::splitmix64 rng{options.seed};
  std::vector<float> z(stride), g(stride, 0.0f);
  // Small data sets get more passes (at least min_steps updates): a few hundred noisy steps
  // would leave the result at the mercy of the seed. Costs nothing at that size.
  const auto epochs = std::max(static_cast<std::size_t>(std::max(1, options.epochs)),
                               (options.min_steps + n - 1) / n);
  const double total = static_cast<double>(epochs * n);
  std::size_t step = 0;
  for (std::size_t e = 0; e < epochs; ++e) {
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    for (std::size_t k = 0; k < n; ++k, ++step) {
      const std::size_t i = order[k];
      const float lr = options.learning_rate * static_cast<float>(1.0 - step / total);
      x.assign(entries.begin() + static_cast<std::ptrdiff_t>(offsets[i]),
               entries.begin() + static_cast<std::ptrdiff_t>(offsets[i + 1]));
      if (options.dropout > 0) {
        const auto keep = static_cast<std::uint64_t>((1.0 - options.dropout) * 18446744073709551615.0);
        const float scale = 1.0f / (1.0f - options.dropout);
        std::size_t w = 0;
        for (const auto& en : x)
          if (rng.next() <= keep) x[w++] = {en.index, en.value * scale};
        x.resize(w);
      }
      m.logits(x, z.data());
      softmax(z.data(), m.outputs_, options.use_none, options.none_logit, 1.0f, g.data());
      g[examples[i].label] -= 1.0f;
      const float decay = 1.0f - lr * options.l2;
      for (const auto& en : x) {
        decay_and_step(m.weights_.data() + static_cast<std::size_t>(en.index) * stride, g.data(),
                       decay, lr * en.value, stride);
      }
      if (!m.bias_.empty())
        for (std::size_t c = 0; c < m.outputs_; ++c) m.bias_[c] -= lr * g[c];
    }
  }
  return m;
}

}  // namespace parley::nlu
