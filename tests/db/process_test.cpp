// The greetings bot in a child process on the console, talking through pipes: kill -9 under
// load with sync_commit on. (Sessions that survive a restart of the process: persistence_test.cpp,
// on both backends.)
#include <doctest/doctest.h>

#include <sstream>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {
// The text replies the greetings bot prints (option lists are indented; skip them).
std::vector<std::string> text_replies(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != ' ') lines.push_back(line);
  return lines;
}
std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

TEST_CASE("kill -9 under load with sync_commit: the file is intact and every reply seen is in chat") {
  test::temp_dir dir;
  const auto path = dir.file("k.db");
  test::child bot({PARLEY_GREETINGS_BIN, "--console", "--db", path, "--set", "db.sync_commit=true",
                   "--log-level", "warn"});
  // Far more input than it will get through: it is busy answering when it dies.
  std::string input;
  for (int i = 0; i < 3000; ++i) input += (i % 3 == 0 ? "hello\n" : i % 3 == 1 ? "good\n" : "bad\n");
  bot.write(input);
  REQUIRE(bot.read_until([](const std::string& out) { return count_lines(out) >= 400; }));
  bot.kill(SIGKILL);
  CHECK(bot.finish() == 128 + SIGKILL);
  // Only complete lines were surely delivered.
  std::string seen = bot.out().substr(0, bot.out().rfind('\n') + 1);
  const auto replies = text_replies(seen);
  REQUIRE(replies.size() >= 200);

  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
  SQLite::Statement q(db, "SELECT content FROM chat WHERE is_user = 0 AND type = 'str' ORDER BY id");
  std::vector<std::string> stored;
  while (q.executeStep()) stored.push_back(q.getColumn(0).getString());
  // Replies reach the console only once committed, in order: what the client saw is a prefix
  // of what is stored.
  REQUIRE(stored.size() >= replies.size());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (stored[i] != replies[i]) {
      FAIL_CHECK("reply " << i << " seen as '" << replies[i] << "' but stored as '" << stored[i] << "'");
      break;
    }
  }
}

