#pragma once
/// Timestamps as the database stores them: UTC ISO-8601 with milliseconds,
/// "2024-05-01T12:34:56.789Z". Fixed width, so text order is time order.
#include <optional>
#include <string>
#include <string_view>

#include <parley/net.hpp>

namespace parley::db {

/// Any thread.
std::string format_timestamp(wall_clock::time_point t);
/// Accepts the stored form, also without milliseconds or "Z", and "YYYY-MM-DD" (midnight UTC).
/// Returns nullopt for anything else.
std::optional<wall_clock::time_point> parse_timestamp(std::string_view text);

}  // namespace parley::db
