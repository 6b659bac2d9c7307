#include <parley/db_handler.hpp>

#include <parley/session.hpp>

#include <algorithm>

namespace parley {

// The defaults read inside the call: correct for any handler, off the caller's thread for none.
// Handlers with a reader pool (SQLite) override them.
namespace {
template <class T, class Read>
void read_now(db_handler::read_callback<T>& done, Read&& read) {
  T result{};
  std::exception_ptr error;
  try {
    result = read();
  } catch (...) {
    error = std::current_exception();
  }
  done(std::move(result), error);
}
}  // namespace

void db_handler::async_load_session(std::string agent_name, std::string session_id,
                                    read_callback<std::optional<session_snapshot>> done) {
  read_now(done, [&] { return load_session(agent_name, session_id); });
}

void db_handler::async_chat_history(const session& s, std::optional<std::size_t> n,
                                    std::optional<wall_clock::time_point> until,
                                    read_callback<std::vector<chat_message>> done) {
  read_now(done, [&] { return chat_history(s, n, until); });
}

void db_handler::async_chat_page(const session& s, std::int64_t after_id, std::size_t limit,
                                 std::optional<wall_clock::time_point> until,
                                 read_callback<std::vector<chat_message>> done) {
  read_now(done, [&] {
    auto all = chat_history(s, std::nullopt, until);
    std::vector<chat_message> page;
    for (auto& m : all)
      if (m.id > after_id && (limit == 0 || page.size() < limit)) page.push_back(std::move(m));
    return page;
  });
}

void db_handler::async_replies_since(const session& s, std::int64_t after_seq, std::size_t limit,
                                     read_callback<std::vector<chat_message>> done) {
  read_now(done, [&] {
    auto all = chat_history(s, std::nullopt, std::nullopt);
    std::vector<chat_message> page;
    for (auto& m : all)
      if (!m.is_user && m.seq > after_seq) page.push_back(std::move(m));
    std::stable_sort(page.begin(), page.end(),
                     [](const chat_message& a, const chat_message& b) { return a.seq < b.seq; });
    if (limit != 0 && page.size() > limit) page.resize(limit);
    return page;
  });
}

void db_handler::async_reasoning_events(const session& s,
                                        std::optional<wall_clock::time_point> until,
                                        read_callback<std::vector<reasoning_event>> done) {
  read_now(done, [&] { return reasoning_events(s, until); });
}

}  // namespace parley
