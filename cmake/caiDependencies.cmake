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
set(CAI_DEPENDENCY_TARGETS
  Eigen3::Eigen xtensor range-v3::range-v3 nlohmann_json::nlohmann_json Threads::Threads ZLIB::ZLIB)
