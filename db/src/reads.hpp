#pragma once
// The reads of a live session's rows, shared by the blocking reads (on the caller's thread)
// and the async ones (on a reader thread). Each runs on one reading connection.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <parley/db_handler.hpp>

#include "reader_pool.hpp"

namespace parley::db::detail {

/// The last `n` (all when empty) chat messages at or before `until`, oldest first.
std::vector<chat_message> read_chat(reader_conn& c, const std::string& agent,
                                    const std::string& session_id, std::optional<std::size_t> n,
                                    std::optional<wall_clock::time_point> until);
/// At most `limit` (0: all) chat messages with id > `after_id`, at or before `until`, oldest
/// first.
std::vector<chat_message> read_chat_page(reader_conn& c, const std::string& agent,
                                         const std::string& session_id, std::int64_t after_id,
                                         std::size_t limit,
                                         std::optional<wall_clock::time_point> until);
/// At most `limit` (0: all) of the session's replies with seq > `after_seq`, in seq order.
std::vector<chat_message> read_replies_since(reader_conn& c, const std::string& agent,
                                             const std::string& session_id,
                                             std::int64_t after_seq, std::size_t limit);
std::vector<reasoning_event> read_reasoning(reader_conn& c, const std::string& agent,
                                            const std::string& session_id,
                                            std::optional<wall_clock::time_point> until);
/// The session row and its pending timers, read in one transaction.
std::optional<session_snapshot> read_session(reader_conn& c, const std::string& agent,
                                             const std::string& session_id);

}  // namespace parley::db::detail
