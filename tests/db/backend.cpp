#include "backend.hpp"

#include <doctest/doctest.h>

#include <parley/agent_link.hpp>
#include <parley/db/postgres_db_handler.hpp>
#include <parley/db/sqlite_db_handler.hpp>

#if PARLEY_TEST_PG
#include <libpq-fe.h>

#include "pg_support.hpp"
#endif

namespace test {

backend::backend() {
#if PARLEY_TEST_PG
  const auto url = pg_url();
  if (url.empty()) return;
  // A fresh database per case, made with a blocking connection (nothing else runs yet).
  PGconn* admin = PQconnectdb(url.c_str());
  REQUIRE_MESSAGE(PQstatus(admin) == CONNECTION_OK, PQerrorMessage(admin));
  const std::string name = "t_" + parley::random_id().substr(0, 8);
  PGresult* r = PQexec(admin, ("CREATE DATABASE " + name).c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  const std::string why = PQerrorMessage(admin);
  PQclear(r);
  PQfinish(admin);
  REQUIRE_MESSAGE(ok, why);
  where_ = pg_url_for(url, name);
  server_url_ = url;
#else
  dir_.emplace();
  where_ = dir_->file("agent.db");
#endif
}

backend::~backend() = default;

std::shared_ptr<parley::db_handler> backend::handler() const {
#if PARLEY_TEST_PG
  parley::db::postgres_options o;
  o.url = where_;
  return std::make_shared<parley::db::postgres_db_handler>(std::move(o));
#else
  return std::make_shared<parley::db::sqlite_db_handler>(parley::db::sqlite_options{.path = where_});
#endif
}

std::vector<parley::db::read_row> backend::rows(const std::string& sql,
                                                const std::vector<parley::db::read_param>& params) const {
  return parley::db::open_reader(where_)->query(sql, params);
}

std::int64_t backend::count(const std::string& sql, const std::vector<parley::db::read_param>& params) const {
  auto r = rows(sql, params);
  REQUIRE_MESSAGE(!r.empty(), "no row from: " << sql);
  return r.front().integer(0);
}

std::string backend::text(const std::string& sql, const std::vector<parley::db::read_param>& params) const {
  auto r = rows(sql, params);
  REQUIRE_MESSAGE(!r.empty(), "no row from: " << sql);
  return r.front().text(0);
}

}  // namespace test
