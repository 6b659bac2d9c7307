# cmake -DIN=page.html -DOUT=page.cpp [-DFUNC=name] -P embed.cmake: writes FUNC() (default
# chat_page) returning the file.
if(NOT FUNC)
  set(FUNC chat_page)
endif()
file(READ ${IN} content)
string(FIND "${content}" ")PARLEY_PAGE\"" bad)
if(NOT bad EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )PARLEY_PAGE\"")
endif()
file(WRITE ${OUT}.tmp "// Generated from ${IN} by embed.cmake; edit that file.\n"
  "#include <string_view>\n"
  "namespace parley::platforms::detail {\n"
  "std::string_view ${FUNC}() {\n"
  "  static constexpr std::string_view page = R\"PARLEY_PAGE(${content})PARLEY_PAGE\";\n"
  "  return page;\n}\n}  // namespace parley::platforms::detail\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
