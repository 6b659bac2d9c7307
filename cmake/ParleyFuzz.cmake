include_guard(GLOBAL)
# libFuzzer targets (tests/fuzz): the frame parser, the config loader, text normalisation.
# They need clang (-fsanitize=fuzzer) while the main build uses g++, so tests/fuzz is a
# project of its own, configured and built with clang++ by ExternalProject as part of this
# build (into <build>/fuzz), from the same sources. ctest runs each target for
# PARLEY_FUZZ_SECONDS on its corpus; `./dev fuzz [target] [seconds]` runs them longer.
# Debian: clang and libclang-rt-14-dev (./dev installs both).
option(PARLEY_FUZZ "Build the libFuzzer targets with clang and run them briefly in ctest" ON)
set(PARLEY_FUZZ_SECONDS 5 CACHE STRING "Seconds each fuzz target runs in ctest")
set(PARLEY_FUZZ_TARGETS ws_frame config text)

# parley_add_fuzz_tests(): the clang sub-build and one ctest per target (label "fuzz").
function(parley_add_fuzz_tests)
  if(NOT PARLEY_FUZZ)
    return()
  endif()
  find_program(PARLEY_FUZZ_CXX NAMES clang++ clang++-14)
  set(_probe_dir ${PROJECT_BINARY_DIR}/fuzz-probe)
  if(PARLEY_FUZZ_CXX AND NOT PARLEY_FUZZ_CXX_WORKS)
    # Can this clang link a libFuzzer program? (libclang-rt-*-dev has the runtime)
    file(WRITE ${_probe_dir}/probe.cpp
      "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput("
      "const std::uint8_t*, std::size_t) { return 0; }\n")
    execute_process(COMMAND ${PARLEY_FUZZ_CXX} -fsanitize=fuzzer,address,undefined
                      ${_probe_dir}/probe.cpp -o ${_probe_dir}/probe
                    RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
    if(_rc EQUAL 0)
      set(PARLEY_FUZZ_CXX_WORKS TRUE CACHE INTERNAL "clang++ links libFuzzer programs")
    endif()
  endif()
  if(NOT PARLEY_FUZZ_CXX_WORKS)
    message(WARNING "No clang++ with libFuzzer (Debian: clang libclang-rt-14-dev; ./dev installs "
                    "them): the fuzz targets are not built. -DPARLEY_FUZZ=OFF silences this.")
    return()
  endif()

  include(ExternalProject)
  set(_bin ${PROJECT_BINARY_DIR}/fuzz)
  set(_launcher)
  if(CCACHE_PROGRAM)
    set(_launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CCACHE_PROGRAM})
  endif()
  set(_byproducts)
  foreach(t IN LISTS PARLEY_FUZZ_TARGETS)
    list(APPEND _byproducts ${_bin}/fuzz_${t})
  endforeach()
  # One job: it builds beside the main build's own jobs. BUILD_ALWAYS lets the sub-build see
  # edits to the runtime and platform sources it compiles.
  ExternalProject_Add(parley_fuzz
    SOURCE_DIR ${PROJECT_SOURCE_DIR}/tests/fuzz
    BINARY_DIR ${_bin}
    CMAKE_ARGS -DCMAKE_CXX_COMPILER=${PARLEY_FUZZ_CXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo ${_launcher}
    BUILD_COMMAND ${CMAKE_COMMAND} --build ${_bin} -j 1
    INSTALL_COMMAND ""
    BUILD_ALWAYS TRUE
    BUILD_BYPRODUCTS ${_byproducts})

  # Each run reads the seed corpus kept in the repository and adds what it finds to a corpus
  # of its own in the build tree (never to the sources); crashes go to <build>/fuzz/artifacts.
  foreach(t IN LISTS PARLEY_FUZZ_TARGETS)
    file(MAKE_DIRECTORY ${_bin}/corpus/${t} ${_bin}/artifacts)
    set(_dict)
    if(EXISTS ${PROJECT_SOURCE_DIR}/tests/fuzz/${t}.dict)
      set(_dict -dict=${PROJECT_SOURCE_DIR}/tests/fuzz/${t}.dict)
    endif()
    add_test(NAME fuzz.${t}
      COMMAND ${_bin}/fuzz_${t} -max_total_time=${PARLEY_FUZZ_SECONDS} -timeout=10
        -print_final_stats=1 ${_dict} -artifact_prefix=${_bin}/artifacts/${t}-
        ${_bin}/corpus/${t} ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${t}
      WORKING_DIRECTORY ${_bin})
    set_tests_properties(fuzz.${t} PROPERTIES TIMEOUT 120 LABELS fuzz)
  endforeach()
endfunction()
