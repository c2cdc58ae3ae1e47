// The main function of the GPU tests: runs the Catch2 session when a GPU answers, and otherwise prints
// why and returns 77, which CTest reports as "skipped" (SKIP_RETURN_CODE 77 in tests/cuda/CMakeLists.txt).
// cudaGetDeviceCount returns an error code, not 0 devices, when there is no driver.
#pragma once

#include <catch2/catch_session.hpp>

#include <cstdio>

#include <cuda_runtime.h>

namespace cai_test {

inline int gpu_main(int argc, char** argv) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("skipped: no GPU answers (cudaGetDeviceCount: %s)\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

}  // namespace cai_test
