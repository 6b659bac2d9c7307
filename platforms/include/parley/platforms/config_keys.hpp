#pragma once
/// The platforms' configuration keys (`platforms.console.*`, `platforms.websocket.*`), with
/// their types, defaults and help. parley::run declares them before it reads the command line
/// and the config file; a program that builds its own config calls this first.
#include <parley/config.hpp>

namespace parley::platforms {

/// Declares every `platforms.*` key in `cfg` (idempotent; values already set are kept and
/// type-checked). @throws config_error when a value already set has the wrong type.
void declare_config(config& cfg);

}  // namespace parley::platforms
