# cmake -DIN=page.html -DOUT=page.cpp -P embed.cmake: writes chat_page() returning the file.
file(READ ${IN} content)
string(FIND "${content}" ")PARLEY_PAGE\"" bad)
if(NOT bad EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )PARLEY_PAGE\"")
endif()
file(WRITE ${OUT}.tmp "// Generated from ${IN} by embed.cmake; edit the .html.\n"
  "#include <string_view>\n"
  "namespace parley::platforms::detail {\n"
  "std::string_view chat_page() {\n"
  "  static constexpr std::string_view page = R\"PARLEY_PAGE(${content})PARLEY_PAGE\";\n"
  "  return page;\n}\n}  // namespace parley::platforms::detail\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
