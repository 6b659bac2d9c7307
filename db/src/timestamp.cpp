#include <parley/db/timestamp.hpp>

#include <charconv>

namespace parley::db {

namespace {
void put(char* p, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

bool get(std::string_view s, std::size_t pos, std::size_t width, int& out) {
  if (pos + width > s.size()) return false;
  const char* b = s.data() + pos;
  auto [p, ec] = std::from_chars(b, b + width, out);
  return ec == std::errc() && p == b + width;
}
}  // namespace

// Hand-rolled rather than strftime: it runs for every row on the session strands, and must
// not depend on the locale or the TZ variable.
std::string format_timestamp(wall_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{ms - day};
  std::string out(24, ' ');
  char* p = out.data();
  put(p, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  p[4] = '-';
  put(p + 5, static_cast<unsigned>(ymd.month()), 2);
  p[7] = '-';
  put(p + 8, static_cast<unsigned>(ymd.day()), 2);
  p[10] = 'T';
  put(p + 11, static_cast<unsigned>(hms.hours().count()), 2);
  p[13] = ':';
  put(p + 14, static_cast<unsigned>(hms.minutes().count()), 2);
  p[16] = ':';
  put(p + 17, static_cast<unsigned>(hms.seconds().count()), 2);
  p[19] = '.';
  put(p + 20, static_cast<unsigned>(hms.subseconds().count()), 3);
  p[23] = 'Z';
  return out;
}

std::optional<wall_clock::time_point> parse_timestamp(std::string_view s) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  if (!get(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !get(s, 5, 2, mo) || s[7] != '-' ||
      !get(s, 8, 2, d))
    return std::nullopt;
  std::size_t pos = 10;
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != ' ') || !get(s, 11, 2, h) || s.size() < 19 || s[13] != ':' ||
        !get(s, 14, 2, mi) || s[16] != ':' || !get(s, 17, 2, sec))
      return std::nullopt;
    pos = 19;
    if (pos < s.size() && s[pos] == '.') {
      std::size_t end = pos + 1;
      while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
      if (end == pos + 1) return std::nullopt;
      std::string digits(s.substr(pos + 1, end - pos - 1));
      digits.resize(3, '0');
      ms = std::stoi(digits);
      pos = end;
    }
    if (pos < s.size() && s[pos] == 'Z') ++pos;
  }
  if (pos != s.size()) return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  return time_point_cast<wall_clock::duration>(sys_days{ymd} + hours{h} + minutes{mi} +
                                               seconds{sec} + milliseconds{ms});
}

}  // namespace parley::db
