// The greetings bot on the command line: `greetings` serves it over WebSocket (or the console
// with --console), recording to parley.db. The bot itself is in greetings_bot.hpp.
#include <parley/parley.hpp>

#include "greetings_bot.hpp"

int main(int argc, char** argv) { return parley::run("greetings", argc, argv, greetings::define); }
