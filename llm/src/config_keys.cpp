#include <parley/llm/config_keys.hpp>

namespace parley::llm {

void declare_config(config& cfg) {
  using t = config_type;
  // The defaults match client_options' (client.hpp).
  cfg.declare("llm.base_url", t::string, "http://127.0.0.1:8080/v1",
              "OpenAI-compatible API root; requests go to {base_url}/chat/completions");
  cfg.declare("llm.model", t::string, "", "model name sent with every request");
  cfg.declare("llm.api_key_env", t::string, "",
              "NAME of the environment variable holding the API key (never the key itself); "
              "empty = no key");
  cfg.declare("llm.timeout", t::number, 120.0, "seconds one HTTP exchange with the model may take");
  cfg.declare("llm.max_retries", t::integer, 2,
              "retries after 408/409/429/5xx, connection errors and timeouts");
  cfg.declare("llm.max_retry_wait", t::number, 120.0,
              "seconds; a server asking to wait longer (retry-after) is not retried");
  cfg.declare("llm.max_idle_connections", t::integer, 8,
              "idle connections kept per host for reuse");
  cfg.declare("llm.tls_verify", t::boolean, true,
              "check the server's certificate and name (https only); turn off only for a "
              "local test server");
  cfg.declare("llm.tls_ca_file", t::string, "",
              "PEM file of certificates to trust besides the system's (a local server's "
              "self-signed certificate)");
}

}  // namespace parley::llm
