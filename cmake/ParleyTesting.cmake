include_guard(GLOBAL)
find_package(doctest REQUIRED)
include(doctest)

# One doctest main, compiled once (Debian ships no doctest main library).
if(NOT TARGET parley_doctest_main)
  add_library(parley_doctest_main STATIC ${PROJECT_SOURCE_DIR}/tests/main.cpp)
  target_link_libraries(parley_doctest_main PUBLIC doctest::doctest)
endif()

# parley_add_test(NAME SOURCES... LIBS...): one doctest executable, each case a ctest test
# with a time limit.
function(parley_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE parley_doctest_main ${ARG_LIBS} parley_warnings parley_sanitizers)
  # A ctest entry whose filter matches no test case (a name ctest split at ';') would pass
  # without running anything: doctest's summary says so, and that fails the entry.
  doctest_discover_tests(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    FAIL_REGULAR_EXPRESSION "test cases: +0 [|]"
    ADD_LABELS 1 WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()

# Node test scripts run from BUILD_DIR/npm, beside the node_modules that ./dev installs there
# from tests/npm/package.json (playwright-core, @a2a-js/sdk, the MCP servers), so their bare
# imports resolve. parley_node_script(VAR file.mjs) copies a script of the current folder to
# BUILD_DIR/npm/<folder under tests>/ (again whenever it changes) and sets VAR to the copy.
# C++ tests that start npm programs get PARLEY_NPM_BIN (BUILD_DIR/npm/node_modules/.bin).
set(PARLEY_NPM_DIR ${PROJECT_BINARY_DIR}/npm CACHE INTERNAL "where ./dev installs the npm test peers")
function(parley_node_script out src)
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR}/tests ${CMAKE_CURRENT_SOURCE_DIR})
  set(dst ${PARLEY_NPM_DIR}/${rel}/${src})
  configure_file(${src} ${dst} COPYONLY)
  set(${out} ${dst} PARENT_SCOPE)
endfunction()
