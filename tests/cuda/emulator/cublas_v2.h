// cai's CUDA emulator (see cuda_runtime.h here): the part of cuBLAS that the CUDA backend uses,
// cublasGemmEx in fp32 and fp64, on the CPU. The arguments are checked as cuBLAS checks them (a leading
// dimension below the rows it must span is CUBLAS_STATUS_INVALID_VALUE), and every matrix must be device
// memory (CUBLAS_STATUS_EXECUTION_FAILED otherwise). Products are summed in the order of k in the output
// type; the tensor-core compute types round the inputs as the hardware does (TF32: 10 mantissa bits, BF16:
// 7, to nearest even) and sum in fp32, so the emulated TF32 and BF16 modes show their real rounding error.
// With beta = 0, C is not read, as in cuBLAS.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "cuda_runtime.h"

#include <cublas_api.h>  // the toolkit's types and prototypes

#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2

struct cublasContext {};  // the handle's type, opaque in cublas_api.h

extern "C" {

inline cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  delete handle;  // NOLINT: created by cublasCreate_v2
  return CUBLAS_STATUS_SUCCESS;
}
inline const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "an error of cai's cuBLAS emulator";
  }
}

}  // extern "C"

namespace cai_emu {

/// x rounded to nearest even, keeping `bits` of float's 23 mantissa bits.
inline float round_mantissa(float x, int bits) {
  if (!std::isfinite(x)) return x;
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const int drop = 23 - bits;
  const std::uint32_t half = std::uint32_t{1} << (drop - 1), lsb = (u >> drop) & 1u;
  u = (u + half - 1 + lsb) & ~((std::uint32_t{1} << drop) - 1);
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

template <class T>
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc, int mantissa_bits) {
  auto rounded = [&](T v) {  // the tensor-core modes' input rounding
    if constexpr (std::is_same_v<T, float>)
      return mantissa_bits < 23 ? round_mantissa(v, mantissa_bits) : v;
    else
      return v;
  };
  auto a = [&](int i, int l) {  // op(A)(i, l)
    return rounded(ta == CUBLAS_OP_N ? A[i + static_cast<std::size_t>(l) * lda] : A[l + static_cast<std::size_t>(i) * lda]);
  };
  auto b = [&](int l, int j) {  // op(B)(l, j)
    return rounded(tb == CUBLAS_OP_N ? B[l + static_cast<std::size_t>(j) * ldb] : B[j + static_cast<std::size_t>(l) * ldb]);
  };
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      T acc = T(0);
      for (int l = 0; l < k; ++l) acc += a(i, l) * b(l, j);
      T& c = C[i + static_cast<std::size_t>(j) * ldc];
      c = beta == T(0) ? alpha * acc : alpha * acc + beta * c;  // with beta 0, C is not read
    }
}

}  // namespace cai_emu

extern "C" inline cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                   int k, const void* alpha, const void* A, cudaDataType a_type, int lda,
                                   const void* B, cudaDataType b_type, int ldb, const void* beta, void* C,
                                   cudaDataType c_type, int ldc, cublasComputeType_t compute,
                                   cublasGemmAlgo_t /*algo*/) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) ||
      ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (a_type != b_type || a_type != c_type) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const std::size_t size = a_type == CUDA_R_64F ? 8 : 4;
  auto span_bytes = [&](int rows, int cols, int ld) {
    return (static_cast<std::size_t>(cols - 1) * ld + rows) * size;
  };
  const bool device = (k == 0 || (cai_emu::is_device(A, span_bytes(ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda)) &&
                                  cai_emu::is_device(B, span_bytes(tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb)))) &&
                      cai_emu::is_device(C, span_bytes(m, n, ldc));
  if (!device) {
    cai_emu::fail(cudaErrorInvalidValue, "cublasGemmEx: a matrix is not (wholly) in device memory");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  if (a_type == CUDA_R_64F) {
    if (compute != CUBLAS_COMPUTE_64F) return CUBLAS_STATUS_NOT_SUPPORTED;
    cai_emu::gemm<double>(ta, tb, m, n, k, *static_cast<const double*>(alpha), static_cast<const double*>(A), lda,
                          static_cast<const double*>(B), ldb, *static_cast<const double*>(beta),
                          static_cast<double*>(C), ldc, 52);
  } else if (a_type == CUDA_R_32F) {
    int bits = 23;
    if (compute == CUBLAS_COMPUTE_32F_FAST_TF32) bits = 10;
    else if (compute == CUBLAS_COMPUTE_32F_FAST_16BF) bits = 7;
    else if (compute != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    cai_emu::gemm<float>(ta, tb, m, n, k, *static_cast<const float*>(alpha), static_cast<const float*>(A), lda,
                         static_cast<const float*>(B), ldb, *static_cast<const float*>(beta), static_cast<float*>(C),
                         ldc, bits);
  } else {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return CUBLAS_STATUS_SUCCESS;
}
