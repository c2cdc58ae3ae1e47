// CUDA and cuBLAS failures become cai::cuda_error naming the call, the code and its description; nothing
// exits. The formatting checks use fabricated error codes and run everywhere; the real failures are a
// cudaMalloc without a GPU, and with a GPU a cudaMemcpy from an invalid pointer and a cuBLAS call with an
// invalid leading dimension.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cai/backend/cuda.cuh"
#include "cai/concepts.hpp"

using Catch::Matchers::ContainsSubstring;

static_assert(cai::backend<cai::cuda_t>, "cuda_t must model cai::backend");
static_assert(cai::cuda_t::name == "cuda");

TEST_CASE("A failed CUDA runtime call throws cuda_error naming the call and the code", "[cuda][error]") {
  auto fail = [] { CAI_CUDA_CHECK(static_cast<cudaError_t>(cudaErrorInvalidValue)); };
  REQUIRE_THROWS_AS(fail(), cai::error);
  try {
    fail();
    FAIL("no exception");
  } catch (const cai::cuda_error& e) {
    CHECK(e.code() == static_cast<int>(cudaErrorInvalidValue));
    CHECK(e.code_name() == "cudaErrorInvalidValue");
    CHECK_THAT(e.call(), ContainsSubstring("cudaErrorInvalidValue"));
    CHECK_THAT(e.what(), ContainsSubstring("failed with cudaErrorInvalidValue (1)"));
    CHECK_THAT(e.what(), ContainsSubstring("test_cuda_errors.cu:"));
  }
}

TEST_CASE("A failed cuBLAS call throws cuda_error naming the status", "[cuda][error]") {
  auto fail = [] { CAI_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED); };
  try {
    fail();
    FAIL("no exception");
  } catch (const cai::cuda_error& e) {
    CHECK(e.code() == static_cast<int>(CUBLAS_STATUS_NOT_INITIALIZED));
    CHECK(e.code_name() == "CUBLAS_STATUS_NOT_INITIALIZED");
    CHECK_THAT(e.what(), ContainsSubstring("CUBLAS_STATUS_NOT_INITIALIZED"));
  }
}

TEST_CASE("Success passes through the checking macros", "[cuda][error]") {
  CHECK_NOTHROW([] { CAI_CUDA_CHECK(cudaSuccess); }());
  CHECK_NOTHROW([] { CAI_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS); }());
}

TEST_CASE("Real CUDA failures become cuda_error", "[cuda][error]") {
  if (cai::cuda_device_count() == 0) {
    // no driver or no device: the allocation of a device_vector is the failing call
    try {
      cai::device_vector<float> v(16);
      FAIL("cudaMalloc succeeded without a GPU");
    } catch (const cai::cuda_error& e) {
      CHECK_THAT(e.call(), ContainsSubstring("cudaMalloc"));
      CHECK(e.code() != 0);
    }
    return;
  }
  cai::device_vector<float> v(4);
  std::vector<float> host(4);
  try {
    CAI_CUDA_CHECK(cudaMemcpy(v.data(), reinterpret_cast<const float*>(std::uintptr_t{16}), 4 * sizeof(float),
                              cudaMemcpyDeviceToDevice));
    cai::cuda_synchronize();
    FAIL("cudaMemcpy from an invalid pointer succeeded");
  } catch (const cai::cuda_error& e) {
    CHECK_THAT(e.what(), ContainsSubstring("cudaMemcpy"));
  }
  // a leading dimension smaller than the rows: cuBLAS refuses it
  try {
    cai::detail::cuda_gemm<float>("test", CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, v.data(), 1, v.data(), 2, 0.0f, v.data(),
                                  2);
    FAIL("cublasGemmEx accepted lda < m");
  } catch (const cai::cuda_error& e) {
    CHECK_THAT(e.call(), ContainsSubstring("cublasGemmEx"));
    CHECK(e.code_name() == "CUBLAS_STATUS_INVALID_VALUE");
  }
  // the device is still usable afterwards
  v.from_host(std::vector<float>{1, 2, 3, 4});
  CHECK(v.to_host() == std::vector<float>{1, 2, 3, 4});
}
