# Install rules: the headers, the cai::cai target (and cai::cuda when built), and a relocatable
# caiConfig.cmake that finds cai's dependencies with find_dependency. A header-only package is
# architecture-independent, and so is its version file.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/cai DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*.cuh")
set(_cai_targets cai)
if(TARGET cai_cuda)
  list(APPEND _cai_targets cai_cuda)
endif()
install(TARGETS ${_cai_targets} EXPORT caiTargets)
set(CAI_INSTALL_CMAKEDIR ${CMAKE_INSTALL_DATADIR}/cmake/cai CACHE STRING
    "Where caiConfig.cmake is installed, relative to the prefix")
install(EXPORT caiTargets NAMESPACE cai:: DESTINATION ${CAI_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/caiConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/caiConfig.cmake
                              INSTALL_DESTINATION ${CAI_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/caiConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/caiConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/caiConfigVersion.cmake
        DESTINATION ${CAI_INSTALL_CMAKEDIR})
