#include "table.hpp"

#include <algorithm>
#include <iostream>

namespace parley::inspect {

namespace {
// Display width in code points (good enough for aligned columns of mostly ASCII text).
std::size_t width(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
}  // namespace

std::string one_line(const std::string& s, std::size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max + 3));
  for (char c : s) {
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    if (out.size() >= max) {
      // Do not cut a UTF-8 sequence in half.
      while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
      if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();
      return out + "...";
    }
  }
  return out;
}

printer::printer(std::vector<std::string> headers, bool json, bool follow, bool colour)
    : headers_(std::move(headers)), json_(json), follow_(follow), colour_(colour) {}

std::string printer::paint(const cell& c) const {
  if (!colour_ || c.style == colour::none) return c.text;
  const char* code = "";
  switch (c.style) {
    case colour::dim: code = "\033[2m"; break;
    case colour::bold: code = "\033[1m"; break;
    case colour::user: code = "\033[36m"; break;
    case colour::bot: code = "\033[32m"; break;
    case colour::accent: code = "\033[35m"; break;
    case colour::warn: code = "\033[33m"; break;
    case colour::none: break;
  }
  return code + c.text + "\033[0m";
}

void printer::print(const std::vector<row>& rows) {
  if (json_) {
    if (follow_) {
      for (const auto& r : rows) std::cout << r.object.dump() << '\n';
      std::cout.flush();
    } else {
      for (const auto& r : rows) all_.push_back(r.object);
    }
    return;
  }
  if (!started_) {
    widths_.assign(headers_.size(), 0);
    for (std::size_t i = 0; i < headers_.size(); ++i) widths_[i] = width(headers_[i]);
    for (const auto& r : rows)
      for (std::size_t i = 0; i < r.cells.size() && i < widths_.size(); ++i)
        widths_[i] = std::max(widths_[i], width(r.cells[i].text));
    std::string line;
    for (std::size_t i = 0; i < headers_.size(); ++i) {
      cell h{headers_[i], colour::bold};
      line += paint(h);
      if (i + 1 < headers_.size()) line += std::string(widths_[i] - width(headers_[i]) + 2, ' ');
    }
    std::cout << line << '\n';
    started_ = true;
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.cells.size(); ++i) {
      line += paint(r.cells[i]);
      if (i + 1 < r.cells.size()) {
        const auto w = width(r.cells[i].text);
        line += std::string((i < widths_.size() && widths_[i] > w ? widths_[i] - w : 0) + 2, ' ');
      }
    }
    std::cout << line << '\n';
  }
  std::cout.flush();
}

void printer::finish() {
  if (json_ && !follow_) std::cout << all_.dump(2) << '\n';
  std::cout.flush();
}

}  // namespace parley::inspect
