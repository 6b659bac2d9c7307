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
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/background.cpp
  ${PROJECT_SOURCE_DIR}/runtime/src/nlu/classifier.cpp
  CACHE INTERNAL "intent classifier sources (added to parley_runtime and its TSan copy)")

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

# The benchmark corpora (braun/, clinc150/), kept in the repository with their licences
# (bench/data/nlu/README.md). INTERNAL (always set) so that build trees configured before
# the data moved here stop reading the old path outside the repository.
set(PARLEY_NLU_DATA "${PROJECT_SOURCE_DIR}/bench/data/nlu" CACHE INTERNAL
  "Folder with the NLU benchmark corpora (braun/, clinc150/)")

# parley_add_nlu_eval(): the nlu_eval benchmark program (call where benchmarks are built).
function(parley_add_nlu_eval)
  add_executable(nlu_eval ${PROJECT_SOURCE_DIR}/bench/nlu_eval.cpp)
  target_link_libraries(nlu_eval PRIVATE parley::runtime parley_warnings parley_sanitizers)
endfunction()

# parley_add_nlu_tests(): the classifier's unit tests, and nlu_eval run on the Braun Chatbot
# corpus, which must be read and scored well above chance (2 intents: chance is 0.5).
function(parley_add_nlu_tests)
  parley_add_test(test_nlu SOURCES ${PROJECT_SOURCE_DIR}/tests/runtime/test_nlu.cpp
                  LIBS parley::runtime)
  if(TARGET nlu_eval)
    add_test(NAME nlu_eval_braun_chatbot
             COMMAND nlu_eval ${PARLEY_NLU_DATA}/braun/ChatbotCorpus.json --min-f1 0.8)
    set_tests_properties(nlu_eval_braun_chatbot PROPERTIES TIMEOUT 60 LABELS nlu)
  endif()
endfunction()
