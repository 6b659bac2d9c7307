include_guard(GLOBAL)
# Every dependency comes from a Debian package (see ./dev for the list).
find_package(Threads REQUIRED)
find_package(boost_headers 1.81 REQUIRED CONFIG)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(SQLiteCpp REQUIRED)
find_package(OpenSSL REQUIRED)
if(NOT TARGET parley::sqlitecpp)
  add_library(parley_sqlitecpp INTERFACE)
  target_link_libraries(parley_sqlitecpp INTERFACE SQLiteCpp)
  add_library(parley::sqlitecpp ALIAS parley_sqlitecpp)
endif()
# Graphviz lays out state diagrams as SVG for the inspector (Debian: libgraphviz-dev). Plain
# find_library paths, as for the classifier's libraries (cmake/ParleyNlu.cmake), so the
# exported static platforms library needs nothing more from find_package(parley).
find_path(PARLEY_GRAPHVIZ_INCLUDE_DIR graphviz/gvc.h REQUIRED)
find_library(PARLEY_GVC_LIBRARY gvc REQUIRED)
find_library(PARLEY_CGRAPH_LIBRARY cgraph REQUIRED)
# libpq (Debian: libpq-dev) for the PostgreSQL handler, driven by Asio (db/src/postgres/).
find_path(PARLEY_LIBPQ_INCLUDE_DIR libpq-fe.h PATH_SUFFIXES postgresql REQUIRED)
find_library(PARLEY_LIBPQ_LIBRARY pq REQUIRED)
