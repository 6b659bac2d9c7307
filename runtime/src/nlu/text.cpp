#include <parley/nlu/text.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include <libstemmer.h>
#include <utf8proc.h>

namespace parley::nlu {
namespace {

using cp_buffer = std::vector<utf8proc_int32_t>;

bool is_word_category(utf8proc_category_t c) {
  switch (c) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool is_apostrophe(utf8proc_int32_t cp) { return cp == 0x27 || cp == 0x2019 || cp == 0x02BC; }

// Accents are dropped where writers commonly omit them (Latin, Greek, Cyrillic, Hebrew and
// Arabic diacritics). Elsewhere (e.g. Devanagari vowel signs) combining marks carry meaning
// and are kept.
bool strippable_mark(utf8proc_int32_t mark, utf8proc_int32_t base) {
  if (utf8proc_category(mark) != UTF8PROC_CATEGORY_MN) return false;
  return base < 0x0530 || (base >= 0x0590 && base < 0x0700) || (mark >= 0x0300 && mark < 0x0370);
}

void append_utf8(std::string& out, utf8proc_int32_t cp) {
  std::array<utf8proc_uint8_t, 4> b{};
  auto n = utf8proc_encode_char(cp, b.data());
  out.append(reinterpret_cast<const char*>(b.data()), static_cast<std::size_t>(n));
}

// Decomposes (NFKD) and case-folds one code point into `out`.
void decompose_fold(utf8proc_int32_t cp, cp_buffer& out) {
  std::array<utf8proc_int32_t, 32> buf{};
  int last_boundclass = 0;
  auto n = utf8proc_decompose_char(
      cp, buf.data(), static_cast<utf8proc_ssize_t>(buf.size()),
      static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD),
      &last_boundclass);
  if (n <= 0) return;
  out.insert(out.end(), buf.begin(), buf.begin() + std::min<std::ptrdiff_t>(n, 32));
}

// ASCII, the common case, without utf8proc: what it says of each ASCII code point (word or
// not, and its one-code-point folding), asked once. A code point whose folding is not one
// ASCII code point goes the general way.
struct ascii_table {
  std::array<bool, 128> word{};
  std::array<char, 128> folded{};
  std::array<bool, 128> simple{};
  ascii_table() {
    for (utf8proc_int32_t c = 0; c < 128; ++c) {
      cp_buffer f;
      decompose_fold(c, f);
      const auto i = static_cast<std::size_t>(c);
      word[i] = is_word_category(utf8proc_category(c));
      simple[i] = f.size() == 1 && f[0] >= 0 && f[0] < 128;
      folded[i] = simple[i] ? static_cast<char>(f[0]) : '\0';
    }
  }
};
const ascii_table& ascii() {
  static const ascii_table t;
  return t;
}


void strip_marks(const cp_buffer& in, std::string& out) {
  utf8proc_int32_t base = 0;
  for (auto cp : in) {
    auto cat = utf8proc_category(cp);
    bool mark = cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC ||
                cat == UTF8PROC_CATEGORY_ME;
    if (!mark) base = cp;
    if (mark && strippable_mark(cp, base)) continue;
    append_utf8(out, cp);
  }
}

// Composes (NFC) a decomposed buffer in place and writes it as UTF-8.
void compose(cp_buffer& cps, std::string& out) {
  if (cps.empty()) return;
  auto n = utf8proc_normalize_utf32(cps.data(), static_cast<utf8proc_ssize_t>(cps.size()),
                                    static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  if (n < 0) n = static_cast<utf8proc_ssize_t>(cps.size());
  for (utf8proc_ssize_t i = 0; i < n; ++i) append_utf8(out, cps[static_cast<std::size_t>(i)]);
}

void strip_accents_utf8(std::string_view s, std::string& out, cp_buffer& scratch) {
  const auto& table = ascii();
  if (std::all_of(s.begin(), s.end(), [&](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b < 128 && table.simple[b];
      })) {
    for (const char c : s) out.push_back(table.folded[static_cast<unsigned char>(c)]);
    return;
  }
  scratch.clear();
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t len = static_cast<utf8proc_ssize_t>(s.size());
  while (len > 0) {
    utf8proc_int32_t cp = 0;
    auto n = utf8proc_iterate(p, len, &cp);
    if (n <= 0) { ++p; --len; continue; }
    decompose_fold(cp, scratch);
    p += n;
    len -= n;
  }
  strip_marks(scratch, out);
}

// Snowball stemmers keep state per call: one per thread and language.
struct stemmer_deleter {
  void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
};
struct thread_stemmers {
  std::vector<std::pair<std::string, std::unique_ptr<sb_stemmer, stemmer_deleter>>> list;
  sb_stemmer* get(const std::string& lang) {
    for (auto& [l, s] : list)
      if (l == lang) return s.get();
    list.emplace_back(lang, std::unique_ptr<sb_stemmer, stemmer_deleter>(
                                sb_stemmer_new(lang.c_str(), "UTF_8")));
    return list.back().second.get();
  }
};
thread_local thread_stemmers t_stemmers;

void stem_into(const std::string& lang, std::string_view word, std::string& out) {
  sb_stemmer* s = lang.empty() ? nullptr : t_stemmers.get(lang);
  if (!s || word.empty()) { out.assign(word); return; }
  const auto* r = sb_stemmer_stem(s, reinterpret_cast<const sb_symbol*>(word.data()),
                                  static_cast<int>(word.size()));
  if (!r) { out.assign(word); return; }
  out.assign(reinterpret_cast<const char*>(r), static_cast<std::size_t>(sb_stemmer_length(s)));
}

bool stemmer_exists(const std::string& lang) {
  if (lang.empty()) return false;
  sb_stemmer* s = sb_stemmer_new(lang.c_str(), "UTF_8");
  if (!s) return false;
  sb_stemmer_delete(s);
  return true;
}

void decode(std::string_view s, std::vector<utf8proc_int32_t>& out) {
  out.clear();
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  utf8proc_ssize_t len = static_cast<utf8proc_ssize_t>(s.size());
  while (len > 0) {
    utf8proc_int32_t cp = 0;
    auto n = utf8proc_iterate(p, len, &cp);
    if (n <= 0) { out.push_back(0xFFFD); ++p; --len; continue; }
    out.push_back(cp);
    p += n;
    len -= n;
  }
}

}  // namespace

normalizer::normalizer(std::string language) : language_(std::move(language)) {
  if (language_ == "none") language_.clear();
  stems_ = stemmer_exists(language_);
  if (!stems_) language_.clear();
}

std::vector<token> normalizer::tokenize(std::string_view text) const {
  std::vector<token> out;
  tokenize(text, out);
  return out;
}

void normalizer::tokenize(std::string_view text, std::vector<token>& out) const {
  thread_local cp_buffer word;     // decomposed, case-folded code points of the current word
  thread_local cp_buffer scratch;
  std::size_t count = 0;
  std::size_t word_begin = 0;
  std::size_t pending_apostrophe = 0;  // byte offset of an apostrophe just seen inside a word
  bool ascii_word = true;              // the current word took the ASCII path only
  const auto& table = ascii();

  auto flush = [&](std::size_t end) {
    if (word.empty()) return;
    if (count == out.size()) out.emplace_back();
    token& t = out[count++];
    t.folded.clear();
    t.plain.clear();
    t.stem.clear();
    t.begin = word_begin;
    t.end = end;
    if (ascii_word) {
      // No marks to strip, nothing to compose.
      for (auto cp : word) t.plain.push_back(static_cast<char>(cp));
      t.folded = t.plain;
    } else {
      strip_marks(word, t.plain);
      if (t.plain.empty()) {  // only marks that are dropped (a lone accent): not a word
        --count;
        word.clear();
        ascii_word = true;
        return;
      }
      compose(word, t.folded);
    }
    if (stems_) {
      thread_local std::string stemmed;
      stemmed.clear();
      stem_into(language_, t.folded, stemmed);
      strip_accents_utf8(stemmed, t.stem, scratch);
    } else {
      t.stem = t.plain;
    }
    word.clear();
    ascii_word = true;
  };

  const auto* base = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t pos = 0;
  word.clear();
  while (pos < text.size()) {
    // One code point: ASCII from the table, anything else from utf8proc.
    const auto b = base[pos];
    const bool simple = b < 128 && table.simple[b];
    utf8proc_int32_t cp = b;
    auto n = simple ? utf8proc_ssize_t{1}
                    : utf8proc_iterate(base + pos, static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
    if (n <= 0) {  // invalid byte: a separator
      flush(pending_apostrophe ? pending_apostrophe : pos);
      pending_apostrophe = 0;
      ++pos;
      continue;
    }
    if (simple ? table.word[b] : is_word_category(utf8proc_category(cp))) {
      if (word.empty()) word_begin = pos;
      pending_apostrophe = 0;
      if (simple) {
        word.push_back(table.folded[b]);
      } else {
        decompose_fold(cp, word);
        ascii_word = false;
      }
    } else if (is_apostrophe(cp) && !word.empty() && !pending_apostrophe) {
      pending_apostrophe = pos;  // joins the word if a letter follows
    } else {
      flush(pending_apostrophe ? pending_apostrophe : pos);
      pending_apostrophe = 0;
    }
    pos += static_cast<std::size_t>(n);
  }
  flush(pending_apostrophe ? pending_apostrophe : pos);
  out.resize(count);
}

std::string normalizer::fold(std::string_view text) const {
  std::vector<token> toks;
  tokenize(text, toks);
  std::string out;
  for (const auto& t : toks) {
    if (!out.empty()) out += ' ';
    out += t.plain;
  }
  return out;
}

std::string normalizer::stem(std::string_view word) const {
  if (!stems_) return std::string(word);
  std::string out;
  stem_into(language_, word, out);
  return out;
}

std::string fold_case_and_accents(std::string_view text) {
  std::string out;
  cp_buffer scratch;
  strip_accents_utf8(text, out, scratch);
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit) {
  thread_local std::vector<utf8proc_int32_t> x, y;
  thread_local std::vector<std::size_t> prev2, prev, cur;
  decode(a, x);
  decode(b, y);
  const std::size_t n = x.size(), m = y.size();
  if ((n > m ? n - m : m - n) > limit) return limit + 1;
  prev2.assign(m + 1, 0);
  prev.resize(m + 1);
  cur.resize(m + 1);
  for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    std::size_t row_min = cur[0];
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = x[i - 1] == y[j - 1] ? 0 : 1;
      std::size_t v = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1])
        v = std::min(v, prev2[j - 2] + 1);
      cur[j] = v;
      row_min = std::min(row_min, v);
    }
    if (row_min > limit) return limit + 1;
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return std::min(prev[m], limit + 1);
}

}  // namespace parley::nlu
