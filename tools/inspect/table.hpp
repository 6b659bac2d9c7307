#pragma once
// Output of parley-inspect: aligned text (colour only on a terminal) or JSON.
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace parley::inspect {

enum class colour { none, dim, bold, user, bot, accent, warn };

struct cell {
  std::string text;
  colour style = colour::none;
};

/// One output row: the cells for text, the object for --json.
struct row {
  std::vector<cell> cells;
  nlohmann::json object;
};

class printer {
 public:
  /// `headers` name the text columns; the last column is never padded.
  printer(std::vector<std::string> headers, bool json, bool follow, bool colour);
  /// Prints rows. Without --follow call it once; with --follow, for every new batch (columns
  /// keep the widths of the first batch so earlier lines stay aligned; JSON becomes one object
  /// per line).
  void print(const std::vector<row>& rows);
  /// Ends the output (closes the JSON array). Safe to call once.
  void finish();

 private:
  std::string paint(const cell& c) const;
  std::vector<std::string> headers_;
  std::vector<std::size_t> widths_;
  bool json_, follow_, colour_;
  bool started_ = false;
  nlohmann::json all_ = nlohmann::json::array();
};

/// One line for a table cell: newlines and tabs shown as spaces, long text clipped.
std::string one_line(const std::string& s, std::size_t max = 200);

}  // namespace parley::inspect
