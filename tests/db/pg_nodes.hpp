#pragma once
// A greetings process of a several-node test (pg_nodes_test, pg_faults_test): on `url`, any
// free port, 1.5 s leases, sessions persisted, no rate limit; `extra` adds --set pairs.
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support.hpp"

namespace test {

struct node_process {
  std::unique_ptr<child> proc;
  std::uint16_t port = 0;
};

inline node_process start_node(const std::string& url, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{PARLEY_GREETINGS_BIN, "--db", url, "--port", "0", "--log-level",
                                "info", "--set", "db.lease_ttl_ms=1500", "--set",
                                "agent.persist_sessions=true", "--set",
                                "platforms.websocket.rate_limit=0"};
  for (const auto& e : extra) {
    argv.push_back("--set");
    argv.push_back(e);
  }
  node_process n;
  n.proc = std::make_unique<child>(std::move(argv));
  n.port = listening_port(*n.proc);
  INFO("the node's log: " << n.proc->err());
  REQUIRE(n.port != 0);
  return n;
}

}  // namespace test
