#include <parley/reply.hpp>

namespace parley {

std::string_view to_string(reply_kind kind) {
  switch (kind) {
    case reply_kind::text: return "str";
    case reply_kind::markdown: return "markdown";
    case reply_kind::html: return "html";
    case reply_kind::options: return "options";
    case reply_kind::json: return "json";
    case reply_kind::file: return "file";
    case reply_kind::image: return "image";
    case reply_kind::location: return "location";
    case reply_kind::reasoning_step: return "reasoning_step";
    case reply_kind::task_list_update: return "task_list_update";
  }
  return "?";
}

std::string reply::content() const {
  switch (kind) {
    case reply_kind::text:
    case reply_kind::markdown:
    case reply_kind::html: return text;
    default: return data.dump();
  }
}

std::string reply::plain_text() const {
  switch (kind) {
    case reply_kind::text:
    case reply_kind::html: return text;
    case reply_kind::markdown: {
      // Markdown as plain text: drop emphasis and heading marks, keep the words.
      std::string out;
      out.reserve(text.size());
      bool line_start = true;
      for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (line_start && c == '#') {
          while (i < text.size() && text[i] == '#') ++i;
          while (i < text.size() && text[i] == ' ') ++i;
          if (i >= text.size()) break;
          c = text[i];
        }
        if (c == '*' || c == '_' || c == '`') continue;
        out += c;
        line_start = (c == '\n');
      }
      return out;
    }
    case reply_kind::options: {
      std::string out;
      int n = 1;
      for (const auto& o : data) {
        if (!out.empty()) out += '\n';
        out += "  " + std::to_string(n++) + ". " + (o.is_string() ? o.get<std::string>() : o.dump());
      }
      return out;
    }
    case reply_kind::file: return "[file: " + data.value("name", std::string("unnamed")) + "]";
    case reply_kind::image: return "[image: " + data.value("name", std::string("unnamed")) + "]";
    case reply_kind::location:
      return "[location: " + data.value("latitude", json(0)).dump() + ", " +
             data.value("longitude", json(0)).dump() + "]";
    case reply_kind::json:
    case reply_kind::reasoning_step:
    case reply_kind::task_list_update: return data.dump();
  }
  return text;
}

}  // namespace parley
