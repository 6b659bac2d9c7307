# Configures Parley (configure only, nothing is built) in the ways a user would:
#   1. alone, with -DPARLEY_BUILD_EXAMPLES=OFF (tests still on: they bring their fixture);
#   2. as a subproject of a bot (add_subdirectory): tests, examples and benchmarks default OFF.
# -DSOURCE_DIR=... -DWORK=... [-DGENERATOR=Ninja]
file(REMOVE_RECURSE ${WORK})
set(gen)
if(GENERATOR)
  set(gen -G ${GENERATOR})
endif()
function(configure what)
  execute_process(COMMAND ${CMAKE_COMMAND} ${ARGN} ${gen} -DPARLEY_TSAN_TESTS=OFF
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what}: configure failed (${rc})\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

configure("Parley with PARLEY_BUILD_EXAMPLES=OFF"
  -S ${SOURCE_DIR} -B ${WORK}/no-examples -DPARLEY_BUILD_EXAMPLES=OFF -DPARLEY_BUILD_BENCH=OFF)

file(MAKE_DIRECTORY ${WORK}/bot)
file(WRITE ${WORK}/bot/CMakeLists.txt "
cmake_minimum_required(VERSION 3.25)
project(bot LANGUAGES CXX)
add_subdirectory(\"${SOURCE_DIR}\" parley)
foreach(v PARLEY_BUILD_TESTS PARLEY_BUILD_EXAMPLES PARLEY_BUILD_BENCH)
  message(STATUS \"\${v}=\${\${v}}\")
endforeach()
if(NOT TARGET parley::parley)
  message(FATAL_ERROR \"parley::parley is missing in a subproject build\")
endif()
")
configure("Parley as a subproject" -S ${WORK}/bot -B ${WORK}/bot-build)
foreach(v PARLEY_BUILD_TESTS PARLEY_BUILD_EXAMPLES PARLEY_BUILD_BENCH)
  if(NOT out MATCHES "${v}=OFF")
    message(FATAL_ERROR "as a subproject, ${v} should default to OFF:\n${out}")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
message(STATUS "both configurations are accepted")
