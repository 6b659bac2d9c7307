#pragma once
/// The LLM client's configuration keys (`llm.*`), with their types, defaults and help. A bot
/// that uses parley::llm calls this before it reads the command line and the config file.
#include <parley/config.hpp>

namespace parley::llm {

/// Declares every `llm.*` key in `cfg` (idempotent; values already set are kept and
/// type-checked). @throws config_error when a value already set has the wrong type.
void declare_config(config& cfg);

}  // namespace parley::llm
