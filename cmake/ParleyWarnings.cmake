include_guard(GLOBAL)
# Warnings as an INTERFACE target: link parley_warnings PRIVATE, never touch CMAKE_CXX_FLAGS.
add_library(parley_warnings INTERFACE)
target_compile_options(parley_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor
    -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough>
  $<$<BOOL:${PARLEY_WERROR}>:-Werror>)
