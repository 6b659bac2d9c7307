#include <parley/db/config_keys.hpp>

namespace parley::db {

void declare_config(config& cfg) {
  using t = config_type;
  cfg.declare("db.enabled", t::boolean, true, "record to the database");
  cfg.declare("db.path", t::string, "parley.db",
              "SQLite file, or a postgresql:// URI (then as db.url)");
  cfg.declare("db.url", t::string, "",
              "PostgreSQL libpq URI (postgresql://user@host/dbname); set, it replaces SQLite");
  cfg.declare("db.sync_commit", t::boolean, false, "deliver replies only once committed");
  cfg.declare("db.commit_interval_ms", t::integer, 20,
              "how long the writer gathers rows before committing (0: at once)");
  cfg.declare("db.writer_nice", t::integer, 0,
              "the writer thread's nice value, 0-19 (0: the process's)");
  cfg.declare("db.max_queued", t::integer, 100000,
              "most rows queued for the writer; beyond it, sessions wait for the disk");
  cfg.declare("db.lease_ttl_ms", t::integer, 10000,
              "PostgreSQL, several nodes: how long a node's claim on its sessions lasts unless "
              "renewed; a dead node's sessions move to another after about this long");
  cfg.declare("db.readers", t::integer, 2,
              "reader threads (each with its own connection) for restores and history reads");
}

}  // namespace parley::db
