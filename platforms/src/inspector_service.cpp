#include "inspector_service.hpp"

#include <charconv>

#include <parley/db/inspect.hpp>
#include <parley/db/reader.hpp>
#include <parley/log.hpp>
#include <parley/platforms/inspector.hpp>

#include "ws_http.hpp"
#include "ws_hub.hpp"

namespace parley::platforms::detail {

// The page's files (platforms/web/inspector.*, built into the binary by embed.cmake).
std::string_view inspector_html();
std::string_view inspector_css();
std::string_view inspector_js();

namespace {

// How often the watcher looks at the database while someone follows: reader::change_marker on
// its own connection (SQLite: PRAGMA data_version, one page of shared memory, no lock the
// writer waits for; PostgreSQL: the row-id sequence's last value, one tiny tuple).
constexpr std::chrono::milliseconds watch_interval{100};
// Rows in one live frame (a follower far behind gets several).
constexpr std::size_t live_page = 1000;

// A parameter the request got wrong: 400 with the message.
struct bad_parameter : db::inspect_error {
  using db::inspect_error::inspect_error;
};

std::int64_t int_param(std::string_view target, const char* name, std::int64_t fallback,
                       std::int64_t min, std::int64_t max) {
  const auto text = query_param(target, name);
  if (text.empty()) return fallback;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
    throw bad_parameter(std::string(name) + " must be a whole number from " + std::to_string(min) +
                        " to " + std::to_string(max) + ", got '" + text + "'");
  return v;
}

// ?session=ROW: a session's row id (the number the sessions list gives as "row").
std::optional<std::int64_t> session_param(std::string_view target, const char* name) {
  if (query_param(target, name).empty()) return std::nullopt;
  return int_param(target, name, 0, 1, INT64_MAX);
}

response answer(http::status status, unsigned version, bool keep_alive, std::string type,
                std::string body) {
  response res{status, version};
  res.set(http::field::server, "parley");
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response json_answer(const request& req, const json& j) {
  // Invalid UTF-8 in a stored text (a client may send anything) must not fail the answer.
  return answer(http::status::ok, req.version(), req.keep_alive(), "application/json",
                j.dump(-1, ' ', false, json::error_handler_t::replace));
}

// GET /inspect/api/...: runs on a query thread. @throws bad_parameter, db::inspect_error (400),
// db::no_such_session (404), anything else (503).
response api(db::reader& db, const request& req) {
  const std::string_view target = req.target();
  const std::string_view p = path_of(target);
  if (p == "/inspect/api/sessions") {
    db::session_query q;
    q.q = query_param(target, "q");
    q.user = query_param(target, "user");
    q.state = query_param(target, "state");
    q.agent = query_param(target, "agent");
    q.since = query_param(target, "since");
    q.until = query_param(target, "until");
    q.offset = int_param(target, "offset", 0, 0, INT64_MAX);
    q.limit = int_param(target, "limit", 50, 1, 1000);
    return json_answer(req, db::list_sessions(db, q));
  }
  constexpr std::string_view one = "/inspect/api/session/";
  if (p.starts_with(one)) {
    const std::string row_text(p.substr(one.size()));
    std::int64_t row = 0;
    const auto [end, ec] = std::from_chars(row_text.data(), row_text.data() + row_text.size(), row);
    if (ec != std::errc() || end != row_text.data() + row_text.size() || row < 1)
      throw bad_parameter("the session is named by its row number, as in "
                          "/inspect/api/session/12 (the \"row\" of /inspect/api/sessions); got '" +
                          row_text + "'");
    const auto after = int_param(target, "after", 0, 0, INT64_MAX);
    const auto limit = int_param(target, "limit", 1000, 1, static_cast<std::int64_t>(db::max_session_rows));
    return json_answer(req, db::session_rows(db, row, after, static_cast<std::size_t>(limit)));
  }
  if (p == "/inspect/api/diagram.svg" || p == "/inspect/api/diagram") {
    db::diagram_request r;
    r.session_row = session_param(target, "session");
    r.agent = query_param(target, "agent");
    const bool svg = p.ends_with(".svg");
    if (!svg) {
      const auto f = query_param(target, "format");
      const auto format = parse_diagram_format(f.empty() ? "dot" : f);
      if (!format) throw bad_parameter("format must be dot or mermaid, got '" + f + "'");
      r.format = *format;
    }
    auto text = db::draw_diagram(db, r);
    if (!svg)
      return answer(http::status::ok, req.version(), req.keep_alive(), "text/plain; charset=utf-8",
                    std::move(text));
    auto res = answer(http::status::ok, req.version(), req.keep_alive(), "image/svg+xml",
                      dot_to_svg(text));
    // Shown with <img>, where it cannot run script; opened on its own, it still may not.
    res.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    return res;
  }
  return inspector_error(http::status::not_found, req.version(), req.keep_alive(),
                         "no such inspector API: there are /inspect/api/sessions, "
                         "/inspect/api/session/ROW, /inspect/api/diagram.svg and "
                         "/inspect/api/diagram");
}

}  // namespace

std::shared_ptr<inspector_service> start_inspector(std::string db, std::string token) {
  return std::make_shared<inspector_service>(std::move(db), std::move(token));
}

void stop_inspector(inspector_service& i) { i.stop(); }

bool is_inspector_path(std::string_view path) {
  return path == "/inspect" || path.starts_with("/inspect/");
}

response inspector_error(http::status status, unsigned version, bool keep_alive,
                         const std::string& why) {
  auto res = answer(status, version, keep_alive, "application/json",
                    json{{"error", why}}.dump(-1, ' ', false, json::error_handler_t::replace));
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

inspector_service::inspector_service(std::string db_path, std::string token, std::size_t threads)
    : path_(std::move(db_path)), token_(std::move(token)), thread_count_(std::max<std::size_t>(threads, 1)) {}

inspector_service::~inspector_service() { stop(); }

void inspector_service::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  watch_cv_.notify_all();
  // No thread starts once stopping_ is set, so the lists are final.
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  if (watcher_.joinable()) watcher_.join();
}

bool inspector_service::check_token(const request& req, std::string& why) const {
  return token_ok(req, token_, why);
}

void inspector_service::handle(const request& req, std::function<void(response)> done) {
  const std::string_view path = path_of(req.target());
  const auto version = req.version();
  const bool keep_alive = req.keep_alive();
  if (req.method() != http::verb::get) {
    auto res = inspector_error(http::status::method_not_allowed, version, keep_alive,
                               "the inspector answers GET only");
    res.set(http::field::allow, "GET");
    return done(std::move(res));
  }
  // The page's files hold no data, so they need no token: the page cannot send a header with
  // them, and passes the token from its own URL to every API call and the live socket.
  if (path == "/inspect" || path == "/inspect/" || path == "/inspect/inspector.html") {
    auto res = answer(http::status::ok, version, keep_alive, "text/html; charset=utf-8",
                      std::string(inspector_html()));
    // Stricter than the chat page: no inline script or style at all, images only from here.
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'");
    res.set("Referrer-Policy", "no-referrer");
    return done(std::move(res));
  }
  if (path == "/inspect/inspector.js")
    return done(answer(http::status::ok, version, keep_alive, "text/javascript; charset=utf-8",
                       std::string(inspector_js())));
  if (path == "/inspect/inspector.css")
    return done(answer(http::status::ok, version, keep_alive, "text/css; charset=utf-8",
                       std::string(inspector_css())));
  if (!path.starts_with("/inspect/api/"))
    return done(inspector_error(http::status::not_found, version, keep_alive,
                                "not found: the inspector has /inspect (the page), /inspect/api/... "
                                "and /inspect/live"));
  std::string why;
  if (!check_token(req, why)) return done(inspector_error(http::status::unauthorized, version, keep_alive, why));
  if (path_.empty())
    return done(inspector_error(http::status::service_unavailable, version, keep_alive,
                                "no database is configured: run the agent with --db FILE or --db "
                                "postgresql://... (or set websocket_options::inspector_db), or use "
                                "parley-inspect DB serve"));
  // The query runs on a query thread with its own connection: never on an io thread.
  auto job = [this, req = request(req), done = std::move(done)](db::reader* db,
                                                                const std::string& error) {
    const auto status_for = [&](http::status s, const std::string& w) {
      done(inspector_error(s, req.version(), req.keep_alive(), w));
    };
    if (!db) return status_for(http::status::service_unavailable, error);
    try {
      done(api(*db, req));
    } catch (const db::no_such_session& e) {
      status_for(http::status::not_found, e.what());
    } catch (const db::inspect_error& e) {
      status_for(http::status::bad_request, e.what());
    } catch (const std::exception& e) {
      PARLEY_LOG(warn, "inspector: " << path_of(req.target()) << ": " << e.what());
      status_for(http::status::service_unavailable,
                 std::string("the database cannot be read: ") + e.what() +
                     "; check that it is a Parley database and readable");
    }
  };
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      // The threads start with the first query: an agent nobody inspects runs none.
      while (threads_.size() < thread_count_) threads_.emplace_back([this] { query_thread(); });
      jobs_.push_back(std::move(job));
      work_.notify_one();
      return;
    }
  }
  job(nullptr, "the server is shutting down; try again later");
}

void inspector_service::query_thread() {
  name_this_thread("parley-inspect");
  std::unique_ptr<db::reader> db;
  std::string error;
  for (;;) {
    std::function<void(db::reader*, const std::string&)> job;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // Opened at the first query, and again after a failure (the file may appear later).
    if (!db) {
      try {
        db = db::open_reader(path_);
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    try {
      job(db.get(), error);
    } catch (const std::exception& e) {
      PARLEY_LOG(error, "inspector: a query failed: " << e.what());
    }
  }
}

std::optional<response> inspector_service::check_live(const request& req, follow_spec& spec) const {
  std::string why;
  if (!check_token(req, why))
    return inspector_error(http::status::unauthorized, req.version(), false, why);
  if (path_.empty())
    return inspector_error(http::status::service_unavailable, req.version(), false,
                           "no database is configured: run the agent with --db FILE");
  try {
    spec.session = session_param(req.target(), "session");
    spec.after = int_param(req.target(), "after", 0, 0, INT64_MAX);
  } catch (const bad_parameter& e) {
    return inspector_error(http::status::bad_request, req.version(), false, e.what());
  }
  return std::nullopt;
}

void inspector_service::follow(std::weak_ptr<live_client> c, follow_spec spec) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  followers_.push_back({std::move(c), spec, true});
  if (!watcher_.joinable()) watcher_ = std::thread([this] { watch(); });
  watch_cv_.notify_all();
}

// Sends `f` its session's rows after its cursor, in pages; returns the new cursor.
std::int64_t inspector_service::catch_up(db::reader& db, const follower& f, live_client& c) {
  std::int64_t after = f.spec.after;
  try {
    for (;;) {
      auto page = db::session_rows(db, *f.spec.session, after, live_page);
      const bool more = page.at("more").get<bool>();
      const auto last = page.at("last_id").get<std::int64_t>();
      // A new follower hears at once (its session, even with no new rows); later only news.
      if (f.fresh || !page.at("rows").empty()) {
        json frame = {{"rows", std::move(page.at("rows"))},
                      {"session", std::move(page.at("session"))},
                      {"last_id", last}};
        c.push(std::make_shared<const std::string>(
            frame.dump(-1, ' ', false, json::error_handler_t::replace)));
      }
      after = last;
      if (!more) return after;
    }
  } catch (const db::no_such_session& e) {
    // No such session (or its rows were deleted): the follower hears why, once.
    if (f.fresh) c.push(std::make_shared<const std::string>(json{{"error", e.what()}}.dump()));
  }
  return after;
}

// The watcher: while someone follows, every watch_interval (at once for a new follower), it
// asks the database whether another connection committed since it last looked (change_marker),
// and only then reads what is new for each follower. With nobody following it sleeps.
void inspector_service::watch() {
  name_this_thread("parley-watch");
  std::unique_ptr<db::reader> db;
  std::int64_t seen_version = -1;
  std::string last_error;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    std::erase_if(followers_, [](const follower& f) { return f.client.expired(); });
    if (followers_.empty()) {
      watch_cv_.wait(lock, [&] { return stopping_ || !followers_.empty(); });
      continue;
    }
    auto todo = followers_;
    for (auto& f : followers_) f.fresh = false;
    lock.unlock();
    std::vector<std::pair<const live_client*, std::int64_t>> advanced;
    try {
      if (!db) db = db::open_reader(path_);
      const std::int64_t version = db->change_marker();
      const bool changed = version != seen_version;
      seen_version = version;
      for (const auto& f : todo) {
        auto c = f.client.lock();
        if (!c || (!changed && !f.fresh)) continue;
        if (!f.spec.session) {
          if (!f.fresh) c->push(std::make_shared<const std::string>(R"({"sessions_changed":true})"));
          continue;
        }
        const auto after = catch_up(*db, f, *c);
        if (after != f.spec.after) advanced.emplace_back(c.get(), after);
      }
      last_error.clear();
    } catch (const std::exception& e) {
      // Said once, not every round, while the file stays unreadable.
      if (last_error != e.what())
        PARLEY_LOG(warn, "inspector: live follow cannot read the database: " << e.what());
      last_error = e.what();
      db.reset();
    }
    lock.lock();
    for (auto& f : followers_)
      for (const auto& [who, after] : advanced)
        if (auto c = f.client.lock(); c.get() == who) f.spec.after = after;
    watch_cv_.wait_for(lock, watch_interval, [&] {
      return stopping_ || std::any_of(followers_.begin(), followers_.end(),
                                       [](const follower& f) { return f.fresh; });
    });
  }
}

}  // namespace parley::platforms::detail
