# Install rules: the headers, the cai::cai target (and cai::cuda when built), and a relocatable
# caiConfig.cmake that finds cai's dependencies with find_dependency. A header-only package is
# architecture-independent, and so is its version file.
#
# cai::cuda goes into its own export file (caiCudaTargets.cmake), which caiConfig.cmake loads only when the
# consumer's machine has the CUDA Toolkit: a cai installed on a CUDA machine stays usable without CUDA,
# and `find_package(cai COMPONENTS cuda)` demands it.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/cai DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*.cuh")
set(CAI_INSTALL_CMAKEDIR ${CMAKE_INSTALL_DATADIR}/cmake/cai CACHE STRING
    "Where caiConfig.cmake is installed, relative to the prefix")

install(TARGETS cai EXPORT caiTargets)
install(EXPORT caiTargets NAMESPACE cai:: DESTINATION ${CAI_INSTALL_CMAKEDIR})
if(TARGET cai_cuda)
  install(TARGETS cai_cuda EXPORT caiCudaTargets)
  install(EXPORT caiCudaTargets NAMESPACE cai:: DESTINATION ${CAI_INSTALL_CMAKEDIR})
endif()

# CAI_HAS_CUDA (from caiCuda.cmake) is substituted into caiConfig.cmake: a stale caiCudaTargets.cmake left
# in the prefix by an earlier CUDA install is then ignored.
configure_package_config_file(cmake/caiConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/caiConfig.cmake
                              INSTALL_DESTINATION ${CAI_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/caiConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/caiConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/caiConfigVersion.cmake
        DESTINATION ${CAI_INSTALL_CMAKEDIR})
