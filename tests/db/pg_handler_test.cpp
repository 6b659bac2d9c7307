// The PostgreSQL handler against a real server (./dev test starts a throwaway one): a connection
// killed under load losing nothing, and the errors that name the fix. What it records and
// resumes is checked by the shared behaviour cases (behaviour_test.cpp, persistence_test.cpp),
// which this binary runs on PostgreSQL.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <list>
#include <memory>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <parley/db/postgres_db_handler.hpp>

#include "greetings_bot.hpp"
#include "pg_support.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using parley::session;

namespace {

std::shared_ptr<parley::db::postgres_db_handler> handler(const std::string& url,
                                                         std::chrono::milliseconds lease = std::chrono::seconds(10)) {
  parley::db::postgres_options o;
  o.url = url;
  o.lease_ttl = lease;
  return std::make_shared<parley::db::postgres_db_handler>(std::move(o));
}

std::int64_t count(test::pg_fixture& f, parley::db::pg::connection& c, const std::string& sql) {
  auto o = f.batch(c, {{sql, {}}});
  REQUIRE_MESSAGE(o.error.empty(), o.error);
  return o.results.at(0).integer(0, 0);
}

// A proxy on a Unix socket in front of the server's own, for a URI whose host is its folder.
// While `black_hole` is set it passes the client's bytes on and throws the server's away (the
// server commits; its answer is lost); cut() breaks every connection. freeze_after(n) passes n
// more bytes from clients, then holds the rest, as a client process frozen mid-send would.
class socket_proxy {
 public:
  using stream = boost::asio::local::stream_protocol;
  socket_proxy(const std::string& server_path, const std::string& listen_path)
      : server_(server_path), acceptor_(io_, stream::endpoint(listen_path)) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~socket_proxy() {
    io_.stop();
    thread_.join();
  }
  std::atomic<bool> black_hole{false};
  void freeze_after(long bytes) { up_budget = bytes; }
  void cut() {
    boost::asio::post(io_, [this] {
      for (auto& p : pairs_) {
        boost::system::error_code ec;
        p->client.close(ec);
        p->server.close(ec);
      }
    });
  }

 private:
  struct pair {
    explicit pair(boost::asio::io_context& io) : client(io), server(io) {}
    stream::socket client, server;
    std::array<char, 16384> up{}, down{};
  };
  void accept() {
    auto p = std::make_shared<pair>(io_);
    acceptor_.async_accept(p->client, [this, p](boost::system::error_code ec) {
      if (ec) return;
      p->server.connect(stream::endpoint(server_), ec);
      if (!ec) {
        pairs_.push_back(p);
        relay(p, p->client, p->server, p->up, false);
        relay(p, p->server, p->client, p->down, true);
      }
      accept();
    });
  }
  void relay(std::shared_ptr<pair> p, stream::socket& from, stream::socket& to, std::array<char, 16384>& buf,
             bool from_server) {
    from.async_read_some(boost::asio::buffer(buf), [=, this, &from, &to, &buf](boost::system::error_code ec,
                                                                                 std::size_t n) {
      if (ec) {
        boost::system::error_code ignored;
        to.close(ignored);
        return;
      }
      if (from_server && black_hole) return relay(p, from, to, buf, from_server);
      bool frozen = false;
      if (!from_server) {
        const long budget = up_budget.load();
        if (budget >= 0) {
          n = std::min<std::size_t>(n, static_cast<std::size_t>(budget));
          up_budget = budget - static_cast<long>(n);
          frozen = up_budget.load() == 0;
        }
      }
      boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                               [=, this, &from, &to, &buf](boost::system::error_code wrote, std::size_t) {
                                 if (!wrote && !frozen) relay(p, from, to, buf, from_server);
                               });
    });
  }
  std::atomic<long> up_budget{-1};  // bytes clients may still send; -1: no limit
  boost::asio::io_context io_;
  std::string server_;
  stream::acceptor acceptor_;
  std::list<std::shared_ptr<pair>> pairs_;
  std::thread thread_;
};

// The value of `key` in the URI's query ("host", "port").
std::string uri_param(const std::string& url, const std::string& key) {
  const auto at = url.find(key + "=");
  REQUIRE_MESSAGE(at != std::string::npos, "the URI has no " << key << ": " << url);
  const auto from = at + key.size() + 1;
  return url.substr(from, url.find('&', from) - from);
}

// A proxy in front of the server of `db_url`, and the URI that reaches the server through it;
// none when the server is not on a Unix socket (said, and the case skips).
struct proxied {
  test::temp_dir dir;
  std::unique_ptr<socket_proxy> proxy;
  std::string url;
};
std::unique_ptr<proxied> proxied_server(const std::string& db_url) {
  const auto host = uri_param(db_url, "host"), port = uri_param(db_url, "port");
  if (host.empty() || host[0] != '/') {
    MESSAGE("skipped: the server is not on a Unix socket (" << host << ")");
    return nullptr;
  }
  auto p = std::make_unique<proxied>();
  p->proxy = std::make_unique<socket_proxy>(host + "/.s.PGSQL." + port, p->dir.file(".s.PGSQL." + port));
  p->url = db_url;
  p->url.replace(p->url.find("host=" + host) + 5, host.size(), p->dir.path().string());
  return p;
}

}  // namespace

// A node frozen in the middle of sending a batch (SIGSTOP, a stalled VM) leaves a transaction
// open on the server, holding the node row its fence locked: a takeover of its shards would
// wait on it for as long as the node stays frozen. The claim ends the lapsed node's
// connections, so another node takes the sessions over in bounded time.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a node frozen mid-batch does not hold up the takeover of its sessions") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto via = proxied_server(db_url);
  if (!via) return;
  auto& proxy = *via->proxy;
  const auto proxied = via->url;
  auto admin = connect(db_url);
  auto a = handler(proxied, std::chrono::seconds(2));
  test::harness ha(a, greetings::define);
  ha.session("f1");
  REQUIRE(ha.got.wait("f1", 1));
  // A's next batch (or renewal) reaches the server only in part: its transaction stays open.
  proxy.freeze_after(200);
  ha.say("f1", "good");
  const std::string frozen = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'parley/" +
                             a->node_id() + "' AND backend_xid IS NOT NULL";
  REQUIRE(test::eventually([&] { return count(*this, *admin, frozen) > 0; }));
  // B claims the session once A's lease lapses (A cannot renew it), without waiting on A.
  auto b = handler(db_url, std::chrono::seconds(2));
  test::harness hb(b, greetings::define);
  const auto started = std::chrono::steady_clock::now();
  bool owned = false;
  while (!owned && std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
    auto p = std::make_shared<std::promise<parley::db_handler::ownership>>();  // outlives a failed case
    b->async_claim("f1", [p](parley::db_handler::ownership o, std::exception_ptr e) {
      if (e) return p->set_exception(e);
      p->set_value(std::move(o));
    });
    auto f = p->get_future();
    REQUIRE_MESSAGE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready,
                    "B's claim waited on the frozen node's transaction");
    owned = f.get().owned;
    if (!owned) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // A's lease still runs
  }
  CHECK(owned);
  CHECK(b->owns("f1"));
  CHECK(count(*this, *admin, frozen) == 0);
  proxy.freeze_after(-1);  // A wakes: it reconnects, and finds its session gone
  proxy.cut();
  admin->close();
}

// A batch whose commit answer is lost (the connection breaks after the server committed) is not
// written again, and its replies are delivered: the handler looks its rows up on reconnect.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a batch committed just before the connection broke is neither lost nor written twice") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto via = proxied_server(db_url);
  if (!via) return;
  auto& proxy = *via->proxy;
  const auto proxied = via->url;
  auto admin = connect(db_url);
  auto pg = handler(proxied);
  {
    test::harness h(pg, greetings::define);
    h.session("lost1");
    REQUIRE(h.got.wait("lost1", 1));
    REQUIRE(test::eventually([&] { return count(*this, *admin, "SELECT count(*) FROM chat") == 1; }));
    proxy.black_hole = true;
    h.say("lost1", "what?");
    // The server has the user's message (and maybe the reply, when it went in the same batch);
    // the handler has not heard back. (Two batches may be in flight: the reply can wait behind.)
    REQUIRE(test::eventually([&] { return count(*this, *admin, "SELECT count(*) FROM chat") >= 2; }));
    CHECK(h.got.of("lost1").size() == 1);  // a reply is delivered only once it is known stored
    proxy.black_hole = false;
    proxy.cut();
    REQUIRE_MESSAGE(h.got.wait("lost1", 2, 15s), "the stored reply was not delivered after the reconnect");
    h.say("lost1", "what?");
    REQUIRE(h.got.wait("lost1", 3, 15s));
    CHECK(pg->rows_dropped() == 0);  // sent again blindly, the stored rows were refused as duplicates
  }
  CHECK(count(*this, *admin, "SELECT count(*) FROM chat") == 5);
  CHECK(count(*this, *admin, "SELECT count(*) FROM (SELECT id FROM chat GROUP BY id HAVING count(*) > 1) d") == 0);
  admin->close();
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: rows written while the connection is killed are not lost") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto admin = connect(db_url);
  constexpr int messages = 40;
  {
    test::harness h(handler(db_url), greetings::define);
    h.session("k1");
    REQUIRE(h.got.wait("k1", 1));
    for (int i = 0; i < messages; ++i) {
      if (i == messages / 2) {
        // Every backend of this database but the admin's own.
        auto o = batch(*admin, {{"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                                 {}}});
        REQUIRE_MESSAGE(o.error.empty(), o.error);
      }
      h.say("k1", "what?");
      REQUIRE(h.got.wait("k1", static_cast<std::size_t>(i + 2), 10s));
    }
  }  // close: everything queued reaches the server (reconnected)
  CHECK(count(*this, *admin, "SELECT count(*) FROM chat") == 1 + 2 * messages);
  admin->close();
}

TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a newer schema, a bad URI and a server that is down name the fix") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  {
    auto h = handler(db_url);
    h->open(std::string("agent"));
    h->close();
  }
  auto admin = connect(db_url);
  REQUIRE(batch(*admin, {{"INSERT INTO parley_schema (version) VALUES (99)", {}}}).error.empty());
  admin->close();
  auto newer = handler(db_url);
  try {
    newer->open(std::string("agent"));
    FAIL("a newer schema was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("schema version 99") != std::string::npos);
    CHECK(std::string(e.what()).find("newer") != std::string::npos);
  }
  auto bad = handler("postgresql://me:hunter2@[broken");
  try {
    bad->open(std::string("agent"));
    FAIL("a bad URI was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("db.url") != std::string::npos);
  }
  auto down = handler("postgresql://me:hunter2@127.0.0.1:1/x?connect_timeout=2");
  try {
    down->open(std::string("agent"));
    FAIL("a server that is down was accepted");
  } catch (const parley::db_error& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("start the server") != std::string::npos);
  }
}

// Session management's failures on PostgreSQL name their cause at once: an import the server
// refuses (two replies with one number), and one into a shard another node owns.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres: an import refused by the server or by ownership fails at once, naming why") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  test::harness a(handler(db_url), greetings::define);
  a.session("src");
  REQUIRE(a.got.wait("src", 1));
  a.say("src", "hello");
  REQUIRE(a.got.wait("src", 3));
  auto doc = a.agent.export_session("src");
  std::vector<parley::json*> replies;
  for (auto& c : doc["chat"])
    if (c.contains("seq")) replies.push_back(&c);
  REQUIRE(replies.size() >= 2);
  (*replies[1])["seq"] = (*replies[0])["seq"];
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(a.agent.import_session(doc, "dst"), doctest::Contains("chat_by_session_seq"),
                       parley::db_error);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  CHECK(a.agent.list_sessions().size() == 1);  // nothing of "dst" was stored

  // A second node: a session id in a shard the first holds is refused, naming the owner.
  test::harness b(handler(db_url), greetings::define);
  std::string theirs;
  for (int i = 0; theirs.empty(); ++i)
    if (parley::db::shard_of("testbot", "n" + std::to_string(i)) == parley::db::shard_of("testbot", "src"))
      theirs = "n" + std::to_string(i);
  CHECK_THROWS_WITH_AS(b.agent.import_session(a.agent.export_session("src"), theirs),
                       doctest::Contains("another node owns"), parley::db_error);
  CHECK(a.agent.list_sessions().size() == 1);
}

// A server without room (here a trigger raising disk_full, SQLSTATE 53100, as a full disk does)
// refuses every batch: the rows stay queued and go again once it has room; nothing is dropped,
// and a reply reaches its client only once stored.
TEST_CASE_FIXTURE(test::pg_fixture, "postgres: a full disk holds the rows until there is room, dropping none") {
  const auto url = test::pg_url();
  if (url.empty()) return;
  const auto db_url = fresh_database(url);
  auto admin = connect(db_url);
  auto pg = handler(db_url);
  {
    test::harness h(pg, greetings::define);
    h.session("full1");
    REQUIRE(h.got.wait("full1", 1));
    auto o = batch(*admin, {{"CREATE FUNCTION parley_test_full() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
                             "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; "
                             "END $f$",
                             {}},
                            {"CREATE TRIGGER parley_test_full BEFORE INSERT ON chat FOR EACH STATEMENT "
                             "EXECUTE FUNCTION parley_test_full()",
                             {}}});
    REQUIRE_MESSAGE(o.error.empty(), o.error);
    h.say("full1", "hello");
    // While the disk is full the reply is not stored, so not delivered (and not dropped).
    CHECK_FALSE(h.got.wait("full1", 2, 1500ms));
    CHECK(pg->rows_dropped() == 0);
    o = batch(*admin, {{"DROP TRIGGER parley_test_full ON chat", {}}});
    REQUIRE_MESSAGE(o.error.empty(), o.error);
    REQUIRE_MESSAGE(h.got.wait("full1", 3, 15s), "the queued rows did not go once there was room");
    CHECK(pg->rows_dropped() == 0);
  }
  CHECK(count(*this, *admin, "SELECT count(*) FROM chat") == 4);  // the greeting, hello, two replies
  admin->close();
}
