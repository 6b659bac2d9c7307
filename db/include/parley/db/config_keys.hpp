#pragma once
/// The DB handler's configuration keys (`db.*`), with their types, defaults and help.
/// parley::run declares them before it reads the command line and the config file; a program
/// that builds its own config calls this first.
#include <parley/config.hpp>

namespace parley::db {

/// Declares every `db.*` key in `cfg` (idempotent; values already set are kept and
/// type-checked). @throws config_error when a value already set has the wrong type.
void declare_config(config& cfg);

}  // namespace parley::db
