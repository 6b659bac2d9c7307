#pragma once
// The example's own tools: arithmetic the model should not do in its head, the time, and a
// note pad whose writes need the user's approval.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <parley/llm/typed_tool.hpp>

namespace reasoning_example {

namespace llm = parley::llm;

inline llm::tool calculate() {
  return llm::make_tool(
      "calculate", "Computes a op b exactly. Use it for any arithmetic.",
      {llm::param::number("a", "the left operand"),
       llm::param::enumeration("op", "the operation", {"+", "-", "*", "/", "^"}),
       llm::param::number("b", "the right operand")},
      [](const llm::tool_args& args) {
        const double a = args.get<double>("a"), b = args.get<double>("b");
        const auto op = args.get<std::string>("op");
        if (op == "+") return a + b;
        if (op == "-") return a - b;
        if (op == "*") return a * b;
        if (op == "^") return std::pow(a, b);
        if (b == 0) throw std::domain_error("division by zero");
        return a / b;
      });
}

inline llm::tool current_time() {
  return llm::make_tool(
      "current_time", "The current date and time, in UTC or at a given offset from it.",
      {llm::param::number("utc_offset_hours", "hours east of UTC, e.g. 1 for Paris in winter")
           .optional()},
      [](const llm::tool_args& args) {
        const double offset = args.get_or("utc_offset_hours", 0.0);
        if (offset < -12 || offset > 14) throw std::out_of_range("utc_offset_hours must be -12..14");
        const auto now = std::chrono::system_clock::now() +
                         std::chrono::minutes(static_cast<long>(std::lround(offset * 60)));
        const std::time_t t = std::chrono::system_clock::to_time_t(now);
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        char buf[64];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M (%A)", &tm);
        const long minutes = std::lround(std::abs(offset) * 60);
        char zone[32];
        std::snprintf(zone, sizeof zone, "UTC%c%02ld:%02ld", offset < 0 ? '-' : '+', minutes / 60,
                      minutes % 60);
        return std::string(buf) + " " + zone;
      });
}

// Notes shared by every session of this process (a real bot would keep them in a store).
struct note_pad {
  std::mutex m;
  std::vector<std::string> notes;
};

inline std::vector<llm::tool> notes(std::shared_ptr<note_pad> pad) {
  return {
      llm::make_tool("save_note", "Saves a short note for later. The user is asked first.",
                     {llm::param::string("text", "the note")},
                     [pad](const llm::tool_args& args) {
                       std::lock_guard l(pad->m);
                       pad->notes.push_back(args.get<std::string>("text"));
                       return "saved as note " + std::to_string(pad->notes.size());
                     },
                     {.needs_approval = true}),
      llm::make_tool("list_notes", "Lists the saved notes.", {},
                     [pad](const llm::tool_args&) {
                       std::lock_guard l(pad->m);
                       return pad->notes;
                     }),
  };
}

}  // namespace reasoning_example
