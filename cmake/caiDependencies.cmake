# The libraries cai's headers use, all from Debian's packages (scripts/setup installs them).
# CAI_DEPENDENCY_TARGETS lists the imported targets that cai::cai links; caiConfig.cmake finds the same
# packages again with find_dependency.
include(GNUInstallDirs)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(xtensor 0.24 REQUIRED)
find_package(range-v3 REQUIRED)  # its version file accepts no version request
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(ZLIB REQUIRED)
# OpenMP spreads the CPU kernels over the cores (Eigen's matrix products too); without it they run on one.
find_package(OpenMP QUIET COMPONENTS CXX)
set(CAI_DEPENDENCY_TARGETS
  Eigen3::Eigen xtensor range-v3::range-v3 nlohmann_json::nlohmann_json Threads::Threads ZLIB::ZLIB)
if(OpenMP_CXX_FOUND)
  list(APPEND CAI_DEPENDENCY_TARGETS OpenMP::OpenMP_CXX)
  set(CAI_HAS_OPENMP ON)
else()
  set(CAI_HAS_OPENMP OFF)
  message(STATUS "cai: OpenMP not found; the CPU kernels will use one core")
endif()
