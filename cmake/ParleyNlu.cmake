include_guard(GLOBAL)
# The intent classifier's native dependencies (Debian: libutf8proc-dev, libstemmer-dev) and
# its sources, added to the runtime library by parley_add_nlu_sources(parley_runtime).
# Plain find_library paths (no imported targets) so an exported static runtime needs nothing
# more from find_package(parley) than the libraries being installed.
find_path(PARLEY_UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_library(PARLEY_UTF8PROC_LIBRARY utf8proc REQUIRED)
find_path(PARLEY_STEMMER_INCLUDE_DIR libstemmer.h REQUIRED)
find_library(PARLEY_STEMMER_LIBRARY stemmer REQUIRED)

set(PARLEY_NLU_SOURCES
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/text.cpp
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/features.cpp
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/text_model.cpp
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/entity.cpp
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/classifier.cpp)

# parley_add_nlu_sources(TARGET): compiles the classifier into TARGET (the runtime library).
# The training and scoring loops are built with -O3 outside Debug: GCC 12 vectorises them
# only there, which halves training time.
function(parley_add_nlu_sources target)
  target_sources(${target} PRIVATE ${PARLEY_NLU_SOURCES})
  set_source_files_properties(${PARLEY_NLU_SOURCES} TARGET_DIRECTORY ${target}
    PROPERTIES COMPILE_OPTIONS "$<$<NOT:$<CONFIG:Debug>>:-O3>")
  target_include_directories(${target} PRIVATE ${PARLEY_UTF8PROC_INCLUDE_DIR}
                                               ${PARLEY_STEMMER_INCLUDE_DIR})
  target_link_libraries(${target} PRIVATE ${PARLEY_UTF8PROC_LIBRARY} ${PARLEY_STEMMER_LIBRARY}
                                          Threads::Threads)
endfunction()
