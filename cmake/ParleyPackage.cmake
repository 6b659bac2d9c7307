include_guard(GLOBAL)
# `cmake --install` exports parleyConfig.cmake so a bot outside this tree can
#   find_package(parley) and link parley::parley.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Installed names match the in-tree aliases: parley::runtime, parley::parley, ...
foreach(_t asio runtime platforms db llm parley warnings sanitizers sqlitecpp)
  set_target_properties(parley_${_t} PROPERTIES EXPORT_NAME ${_t})
endforeach()

install(TARGETS parley_asio parley_runtime parley_platforms parley_db parley_llm parley_parley
        parley_warnings parley_sanitizers parley_sqlitecpp
  EXPORT parleyTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY runtime/include/ platforms/include/ db/include/ llm/include/ launch/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT parleyTargets NAMESPACE parley:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/parley)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/parleyConfig.cmake.in
  ${PROJECT_BINARY_DIR}/parleyConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/parley)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/parleyConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/parleyConfig.cmake ${PROJECT_BINARY_DIR}/parleyConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/parley)
