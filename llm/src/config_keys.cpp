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
}

}  // namespace parley::llm
