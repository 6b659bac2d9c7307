include_guard(GLOBAL)
# PARLEY_SANITIZE: "address;undefined" or "thread"; applies to every Parley target and to the
# compiled Asio/Beast library (the same flags everywhere, or ODR breaks).
set(PARLEY_SANITIZE "" CACHE STRING "Sanitizers for all Parley targets: address;undefined | thread")
add_library(parley_sanitizers INTERFACE)
if(PARLEY_SANITIZE)
  list(JOIN PARLEY_SANITIZE "," _parley_san)
  target_compile_options(parley_sanitizers INTERFACE -fsanitize=${_parley_san} -fno-omit-frame-pointer -g)
  target_link_options(parley_sanitizers INTERFACE -fsanitize=${_parley_san})
endif()

# A ThreadSanitizer flavour used by selected tests inside a normal build (see tests/CMakeLists.txt).
add_library(parley_tsan_flags INTERFACE)
target_compile_options(parley_tsan_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer -g1 -gz -O1 -Wno-tsan)
target_link_options(parley_tsan_flags INTERFACE -fsanitize=thread -gz)
