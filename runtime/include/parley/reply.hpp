#pragma once
/// What an agent sends back. Every platform renders each kind as well as it can.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <parley/agent_link.hpp>
#include <parley/net.hpp>

namespace parley {

enum class reply_kind : std::uint8_t {
  text,
  markdown,
  html,
  options,   ///< data: array of strings; a client answers with one of them
  json,      ///< data: any JSON value
  file,      ///< data: {"name","type","base64"}
  image,     ///< data: {"name","type","base64"} (type image/png, image/jpeg, ...)
  location,  ///< data: {"latitude","longitude"}
  reasoning_step,    ///< data: {"kind","step","summary","details"}
  task_list_update,  ///< data: [{"id","description","status","result"}]
};

std::string_view to_string(reply_kind kind);

/// One reply. `text` is set for text/markdown/html; `data` for the structured kinds.
struct reply {
  reply_kind kind = reply_kind::text;
  std::string text;
  json data;
  wall_clock::time_point timestamp = wall_clock::now();
  /// Set by the session when the reply answers another agent's message: the reply's own
  /// lineage (caused by that message, depth + 1). Platforms that talk to agents send it along.
  std::shared_ptr<const parley::lineage> lineage{};
  /// The session's reply sequence number (1, 2, 3, ... per session), set by session::send;
  /// 0 for a reply not sent through a session. Stored with the chat row; a client resumes
  /// from it (WebSocket ?since=N).
  std::int64_t seq = 0;

  /// The content as stored in the chat table: the text, or the JSON data serialised.
  std::string content() const;
  /// A plain-text rendering, for platforms that have only text (the console).
  std::string plain_text() const;
};

}  // namespace parley
