/// @file backend/cuda.cuh
/// The CUDA backend: the tag `cuda_t` (`cai::cuda`), its storage `device_vector<T>`, and the kernels of
/// backend/cpu.hpp with the same names, the same argument lists and the same semantics, for `cuda_t`
/// (Thrust's habit: the tag comes first and selects the overload). Matrix products go through cuBLAS
/// (`cublasGemmEx` with the row-major trick: a row-major (r, c) buffer is a column-major (c, r) matrix);
/// the rest are plain kernels, one block per row for the row-wise ones.
///
/// Conventions (those of backend/cpu.hpp):
///  - Every pointer is a DEVICE pointer (token ids, targets and positions too); buffers are row-major and
///    contiguous, with the shapes given in the shape comments.
///  - Backward functions ACCUMULATE (`+=`) into their gradient buffers unless given `grad_mode::overwrite`
///    (backend/options.hpp) for the input gradient; a null gradient pointer skips it.
///  - `fill`, `copy`, `copy_from_host` and `copy_to_host` are the storage helpers through which
///    backend-generic code (model/transformer.hpp) touches buffers; `cpu.hpp` has the same four.
///  - `T` is `float` or `double`. The `float` matrix products follow `cuda_math_mode()` (fp32 by default;
///    TF32 or BF16 tensor cores on request); everything else is computed in `T`.
///  - Work is queued on the default stream; functions that must check arguments held on the device (token
///    ids, targets, positions) copy them to the host first, which synchronises.
///  - A failed CUDA or cuBLAS call throws `cai::cuda_error` naming the call; nothing exits.
/// Every kernel is deterministic: equal inputs give equal bits, run after run (the embedding gradient
/// groups repeated ids with a stable sort instead of adding atomically).
///
/// Compile with nvcc as C++20 and link `cai::cuda`. range-v3 must not reach a CUDA translation unit, so
/// this header includes none of the data-path headers.
#pragma once

#if !defined(__CUDACC__) && !defined(CAI_CUDA_EMULATION)
#error "cai/backend/cuda.cuh is CUDA code: include it from a .cu file compiled by nvcc and link the cai::cuda CMake target (the CPU kernels are in <cai/backend/cpu.hpp>)"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <thrust/execution_policy.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/system_error.h>

#include "cai/backend/detail/cuda_support.cuh"
#include "cai/backend/options.hpp"
#include "cai/error.hpp"

namespace cai {

/// The CUDA backend: GPU memory, cuBLAS for the matrix products, CUDA kernels for the rest.
struct cuda_t {
  static constexpr std::string_view name = "cuda";
  /// Contiguous device storage of `T`.
  template <class T>
  using storage = device_vector<T>;
};
inline constexpr cuda_t cuda{};

namespace detail {

/// A per-thread scratch buffer of at least n elements of T on the device (attention's intermediate
/// scores); it grows and is never shrunk. Work using it is ordered by the default stream.
template <class T>
T* cuda_scratch(std::size_t n, int which = 0) {
  thread_local device_vector<T> buffers[2];
  auto& b = buffers[which];
  if (b.size() < n) b.resize(n);
  return b.data();
}

inline int cuda_int(std::size_t n, const char* function, const char* what) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw config_error(std::string(function) + ": " + what + " = " + std::to_string(n) +
                       " exceeds what one cuBLAS call takes (2^31 - 1)");
  return static_cast<int>(n);
}

/// C (m, n) = alpha op(A) op(B) + beta C, column-major, through cuBLAS in the thread's math mode.
template <class T>
void cuda_gemm(const char* function, cublasOperation_t ta, cublasOperation_t tb, std::size_t m, std::size_t n,
               std::size_t k, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cai: cuda_t kernels take float or double");
  if (m == 0 || n == 0) return;
  const int im = cuda_int(m, function, "a dimension"), in = cuda_int(n, function, "a dimension"),
            ik = cuda_int(k, function, "a dimension");
  const int ila = cuda_int(lda, function, "a leading dimension"), ilb = cuda_int(ldb, function, "a leading dimension"),
            ilc = cuda_int(ldc, function, "a leading dimension");
  const T alpha = T(1);
  cublasHandle_t h = cublas_handle();
  if constexpr (std::is_same_v<T, double>) {
    CAI_CUBLAS_CHECK(cublasGemmEx(h, ta, tb, im, in, ik, &alpha, A, CUDA_R_64F, ila, B, CUDA_R_64F, ilb, &beta, C,
                                  CUDA_R_64F, ilc, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT));
  } else {
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    if (cuda_math_mode() == cuda_math::tf32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    if (cuda_math_mode() == cuda_math::bf16) compute = CUBLAS_COMPUTE_32F_FAST_16BF;
    CAI_CUBLAS_CHECK(cublasGemmEx(h, ta, tb, im, in, ik, &alpha, A, CUDA_R_32F, ila, B, CUDA_R_32F, ilb, &beta, C,
                                  CUDA_R_32F, ilc, compute, CUBLAS_GEMM_DEFAULT));
  }
}

// ---------------------------------------------------------------------------------------------------
// Kernels (private: the public functions below launch them)

template <class T>
__global__ void add_kernel(T* out, const T* a, const T* b, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

template <class T>
__global__ void fill_kernel(T* out, T value, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = value;
}

template <class T>
__global__ void accumulate_kernel(T* out, const T* a, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] += a[i];
}

/// split (to_fused = false) or merge (true) the rows of a fused (N, q + 2 kv) projection.
template <class T>
__global__ void columns_kernel(T* fused, T* q, T* k, T* v, std::size_t N, std::size_t qw, std::size_t kvw,
                               bool to_fused) {
  const std::size_t W = qw + 2 * kvw;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < N * W; i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t n = i / W, c = i % W;
    T* part;
    if (c < qw)
      part = q == nullptr ? nullptr : q + n * qw + c;
    else if (c < qw + kvw)
      part = k == nullptr ? nullptr : k + n * kvw + (c - qw);
    else
      part = v == nullptr ? nullptr : v + n * kvw + (c - qw - kvw);
    if (part == nullptr) continue;
    if (to_fused)
      fused[i] = *part;
    else
      *part = fused[i];
  }
}

template <class T>
__global__ void embedding_forward_kernel(T* out, const std::int32_t* ids, const T* table, std::size_t N, std::size_t C) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < N * C; i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t n = i / C, c = i % C;
    out[i] = table[static_cast<std::size_t>(ids[n]) * C + c];
  }
}

/// One thread per (position in id order, channel). `sorted_ids` are the ids stably sorted and `order[k]`
/// the position of the k-th of them, so each run of equal ids lists its positions in increasing order; the
/// thread at a run's first position adds the run's rows to the table row in that order, as the CPU does.
template <class T>
__global__ void embedding_backward_kernel(T* dtable, const T* dout, const std::int32_t* sorted_ids,
                                          const std::int32_t* order, std::size_t N, std::size_t C) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < N * C; i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t k = i / C, c = i % C;
    const std::int32_t id = sorted_ids[k];
    if (k > 0 && sorted_ids[k - 1] == id) continue;  // not the first of its run
    T* row = dtable + static_cast<std::size_t>(id) * C + c;
    T acc = *row;
    for (std::size_t j = k; j < N && sorted_ids[j] == id; ++j) acc += dout[static_cast<std::size_t>(order[j]) * C + c];
    *row = acc;
  }
}

template <class T>
__global__ void add_bias_kernel(T* out, const T* bias, std::size_t N, std::size_t OC) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < N * OC; i += std::size_t(gridDim.x) * blockDim.x)
    out[i] += bias[i % OC];
}

/// out[c] += Σ_n f(n, c) for c < C: 32 columns per block, 8 row groups summed in a fixed order.
template <class T, class F>
__global__ void column_sum_kernel(T* out, F f, std::size_t N, std::size_t C) {
  __shared__ T partial[8][33];
  const std::size_t c = blockIdx.x * std::size_t(32) + threadIdx.x;
  T acc = 0;
  if (c < C)
    for (std::size_t n = threadIdx.y; n < N; n += 8) acc += f(n, c);
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    T total = 0;
    for (int r = 0; r < 8; ++r) total += partial[r][threadIdx.x];
    out[c] += total;
  }
}

template <class T>
struct rows_value {
  const T* a;
  std::size_t C;
  __device__ T operator()(std::size_t n, std::size_t c) const { return a[n * C + c]; }
};
template <class T>
struct layernorm_dweight_value {
  const T *dout, *in, *mean, *rstd;
  std::size_t C;
  __device__ T operator()(std::size_t n, std::size_t c) const {
    return (in[n * C + c] - mean[n]) * rstd[n] * dout[n * C + c];
  }
};
template <class T>
struct rmsnorm_dweight_value {
  const T *dout, *in, *rstd;
  std::size_t C;
  __device__ T operator()(std::size_t n, std::size_t c) const { return in[n * C + c] * rstd[n] * dout[n * C + c]; }
};

template <class T, class F>
void cuda_column_sum(T* out, F f, std::size_t N, std::size_t C) {
  if (C == 0) return;
  CAI_CUDA_LAUNCH(column_sum_kernel, static_cast<unsigned>((C + 31) / 32), dim3(32, 8))(out, f, N, C);
  CAI_CUDA_CHECK_LAUNCH("column_sum_kernel");
}

template <class T>
__global__ void layernorm_forward_kernel(T* out, T* mean, T* rstd, const T* in, const T* weight, const T* bias,
                                         std::size_t C, T eps) {
  __shared__ T red[32];
  const std::size_t n = blockIdx.x;
  const T* x = in + n * C;
  T s = 0;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) s += x[c];
  const T m = block_sum(s, red) / static_cast<T>(C);
  T v = 0;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) v += (x[c] - m) * (x[c] - m);
  v = block_sum(v, red) / static_cast<T>(C);
  const T r = T(1) / sqrt(v + eps);
  T* o = out + n * C;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x)
    o[c] = (x[c] - m) * r * weight[c] + (bias != nullptr ? bias[c] : T(0));
  if (threadIdx.x == 0) {
    mean[n] = m;
    rstd[n] = r;
  }
}

template <class T>
__global__ void layernorm_backward_kernel(T* din, const T* dout, const T* in, const T* weight, const T* mean,
                                          const T* rstd, std::size_t C) {
  __shared__ T red[32];
  const std::size_t n = blockIdx.x;
  const T* x = in + n * C;
  const T* g = dout + n * C;
  const T m = mean[n], s = rstd[n];
  T a = 0, b = 0;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T norm = (x[c] - m) * s;
    const T dnorm = weight[c] * g[c];
    a += dnorm;
    b += dnorm * norm;
  }
  const T g_mean = block_sum(a, red) / static_cast<T>(C);
  const T g_norm_mean = block_sum(b, red) / static_cast<T>(C);
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) {
    const T norm = (x[c] - m) * s;
    din[n * C + c] += (weight[c] * g[c] - g_mean - norm * g_norm_mean) * s;
  }
}

template <class T>
__global__ void rmsnorm_forward_kernel(T* out, T* rstd, const T* in, const T* weight, std::size_t C, T eps) {
  __shared__ T red[32];
  const std::size_t n = blockIdx.x;
  const T* x = in + n * C;
  T ss = 0;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
  ss = block_sum(ss, red);
  const T r = T(1) / sqrt(ss / static_cast<T>(C) + eps);
  T* o = out + n * C;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) o[c] = x[c] * r * weight[c];
  if (threadIdx.x == 0) rstd[n] = r;
}

template <class T>
__global__ void rmsnorm_backward_kernel(T* din, const T* dout, const T* in, const T* weight, const T* rstd,
                                        std::size_t C) {
  __shared__ T red[32];
  const std::size_t n = blockIdx.x;
  const T* x = in + n * C;
  const T* g = dout + n * C;
  const T s = rstd[n];
  T dot = 0;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) dot += weight[c] * g[c] * x[c];
  dot = block_sum(dot, red);
  const T k = dot * s * s * s / static_cast<T>(C);
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) din[n * C + c] += weight[c] * g[c] * s - x[c] * k;
}

template <class T>
__global__ void gelu_forward_kernel(T* out, const T* in, std::size_t n) {
  constexpr T k0 = T(0.7978845608028654), k1 = T(0.044715);
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const T x = in[i];
    out[i] = T(0.5) * x * (T(1) + tanh(k0 * (x + k1 * x * x * x)));
  }
}

template <class T>
__global__ void gelu_backward_kernel(T* din, const T* in, const T* dout, std::size_t n, bool overwrite) {
  constexpr T k0 = T(0.7978845608028654), k1 = T(0.044715);
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const T x = in[i];
    const T t = tanh(k0 * (x + k1 * x * x * x));
    const T du = k0 * (T(1) + T(3) * k1 * x * x);
    const T g = dout[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    din[i] = overwrite ? g : din[i] + g;
  }
}

template <class T>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const T g = gate[i];
    out[i] = g / (T(1) + exp(-g)) * up[i];
  }
}

template <class T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* gate, const T* up, const T* dout, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + exp(-g));
    if (dup != nullptr) dup[i] += dout[i] * (g * sig);
    if (dgate != nullptr) dgate[i] += dout[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}

/// One thread per (row, rotated pair): the angle in double, as the CPU computes it, then every head.
template <class T>
__global__ void rope_kernel(T* x, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                            double theta, rope_style style, T sign) {
  const std::size_t half = D / 2;
  for (std::size_t j = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; j < BT * half; j += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t bt = j / half, i = j % half;
    const double freq = pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
    const double angle = static_cast<double>(positions[bt]) * freq;
    const T c = static_cast<T>(cos(angle));
    const T sn = sign * static_cast<T>(sin(angle));
    const std::size_t a = style == rope_style::half ? i : 2 * i;
    const std::size_t b = style == rope_style::half ? i + half : 2 * i + 1;
    for (std::size_t h = 0; h < H; ++h) {
      T* v = x + (bt * H + h) * D;
      const T x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * sn;
      v[b] = x0 * sn + x1 * c;
    }
  }
}

/// Row strides, in elements, of attention's (B * T) rows: out (and dout), q (and dq), k (and dk), v (and dv).
/// The public functions pass the dense ones (H * D, H * D, KVH * D, KVH * D); other strides read q, k and v
/// in place inside a fused projection.
struct attention_ld {
  std::size_t out, q, k, v;
};

/// One block per (sequence, head, query row): scores, softmax into `att`, then the weighted sum of values.
template <class T>
__global__ void attention_forward_kernel(T* out, T* att, const T* q, const T* k, const T* v, std::size_t Tn,
                                         std::size_t H, std::size_t KVH, std::size_t D, T scale, attention_ld ld) {
  __shared__ T red[32];
  const std::size_t row = blockIdx.x;  // ((b * H + h) * Tn + t)
  const std::size_t t = row % Tn, bh = row / Tn, h = bh % H, b = bh / H, kh = h / (H / KVH);
  const T* qt = q + (b * Tn + t) * ld.q + h * D;
  T* a = att + row * Tn;
  T local_max = -std::numeric_limits<T>::infinity();
  for (std::size_t s = threadIdx.x; s <= t; s += blockDim.x) {
    const T* ks = k + (b * Tn + s) * ld.k + kh * D;
    T dot = 0;
    for (std::size_t d = 0; d < D; ++d) dot += qt[d] * ks[d];
    a[s] = dot * scale;
    local_max = a[s] > local_max ? a[s] : local_max;
  }
  const T m = block_max(local_max, red, -std::numeric_limits<T>::infinity());
  T local_sum = 0;
  for (std::size_t s = threadIdx.x; s <= t; s += blockDim.x) {
    const T e = exp(a[s] - m);
    a[s] = e;
    local_sum += e;
  }
  const T sum = block_sum(local_sum, red);
  for (std::size_t s = threadIdx.x; s <= t; s += blockDim.x) a[s] /= sum;
  for (std::size_t s = t + 1 + threadIdx.x; s < Tn; s += blockDim.x) a[s] = T(0);
  __syncthreads();  // the probabilities written above are read by other threads below
  T* o = out + (b * Tn + t) * ld.out + h * D;
  for (std::size_t d = threadIdx.x; d < D; d += blockDim.x) {
    T acc = 0;
    for (std::size_t s = 0; s <= t; ++s) acc += a[s] * v[(b * Tn + s) * ld.v + kh * D + d];
    o[d] = acc;
  }
}

/// Backward, part 1, one block per (sequence, head, query row): dscore = att (datt − Σ datt att) scale, and
/// dq += dscore k.
template <class T>
__global__ void attention_backward_q_kernel(T* dq, T* dscore, const T* dout, const T* k, const T* v, const T* att,
                                            std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D, T scale,
                                            attention_ld ld) {
  __shared__ T red[32];
  const std::size_t row = blockIdx.x;
  const std::size_t t = row % Tn, bh = row / Tn, h = bh % H, b = bh / H, kh = h / (H / KVH);
  const T* a = att + row * Tn;
  const T* g = dout + (b * Tn + t) * ld.out + h * D;
  T* ds = dscore + row * Tn;
  T local = 0;
  for (std::size_t s = threadIdx.x; s <= t; s += blockDim.x) {
    const T* vs = v + (b * Tn + s) * ld.v + kh * D;
    T da = 0;
    for (std::size_t d = 0; d < D; ++d) da += g[d] * vs[d];
    ds[s] = da;
    local += da * a[s];
  }
  const T dot_sum = block_sum(local, red);
  for (std::size_t s = threadIdx.x; s <= t; s += blockDim.x) ds[s] = a[s] * (ds[s] - dot_sum) * scale;
  __syncthreads();
  if (dq == nullptr) return;
  T* dqt = dq + (b * Tn + t) * ld.q + h * D;
  for (std::size_t d = threadIdx.x; d < D; d += blockDim.x) {
    T acc = 0;
    for (std::size_t s = 0; s <= t; ++s) acc += ds[s] * k[(b * Tn + s) * ld.k + kh * D + d];
    dqt[d] += acc;
  }
}

/// Backward, part 2, one block per (sequence, key/value head, key row s): dv and dk summed over the query
/// heads of the group and the query rows t >= s.
template <class T>
__global__ void attention_backward_kv_kernel(T* dk, T* dv, const T* dout, const T* q, const T* att, const T* dscore,
                                             std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D,
                                             attention_ld ld) {
  const std::size_t row = blockIdx.x;  // ((b * KVH + kh) * Tn + s)
  const std::size_t s = row % Tn, bk = row / Tn, kh = bk % KVH, b = bk / KVH, group = H / KVH;
  for (std::size_t d = threadIdx.x; d < D; d += blockDim.x) {
    T accv = 0, acck = 0;
    for (std::size_t h = kh * group; h < (kh + 1) * group; ++h)
      for (std::size_t t = s; t < Tn; ++t) {
        const std::size_t arow = ((b * H + h) * Tn + t) * Tn + s;
        accv += att[arow] * dout[(b * Tn + t) * ld.out + h * D + d];
        acck += dscore[arow] * q[(b * Tn + t) * ld.q + h * D + d];
      }
    if (dv != nullptr) dv[(b * Tn + s) * ld.v + kh * D + d] += accv;
    if (dk != nullptr) dk[(b * Tn + s) * ld.k + kh * D + d] += acck;
  }
}

/// One block per (new row, head) over its cache slot's positions 0..positions[n]; `scores` is scratch of
/// (N, H, max_len).
template <class T>
__global__ void attention_cached_kernel(T* out, T* scores, const T* q, const T* kcache, const T* vcache,
                                        const std::int32_t* slots, const std::int32_t* positions, std::size_t max_len,
                                        std::size_t H, std::size_t KVH, std::size_t D, T scale) {
  __shared__ T red[32];
  const std::size_t nh = blockIdx.x, n = nh / H, h = nh % H, kh = h / (H / KVH);
  const std::size_t slot = static_cast<std::size_t>(slots[n]);
  const std::size_t len = static_cast<std::size_t>(positions[n]) + 1;
  const T* kbase = kcache + slot * max_len * KVH * D;
  const T* vbase = vcache + slot * max_len * KVH * D;
  const T* qh = q + nh * D;
  T* a = scores + nh * max_len;
  T local_max = -std::numeric_limits<T>::infinity();
  for (std::size_t s = threadIdx.x; s < len; s += blockDim.x) {
    const T* ks = kbase + (s * KVH + kh) * D;
    T dot = 0;
    for (std::size_t d = 0; d < D; ++d) dot += qh[d] * ks[d];
    a[s] = dot * scale;
    local_max = a[s] > local_max ? a[s] : local_max;
  }
  const T m = block_max(local_max, red, -std::numeric_limits<T>::infinity());
  T local_sum = 0;
  for (std::size_t s = threadIdx.x; s < len; s += blockDim.x) {
    const T e = exp(a[s] - m);
    a[s] = e;
    local_sum += e;
  }
  const T sum = block_sum(local_sum, red);
  __syncthreads();
  T* o = out + nh * D;
  for (std::size_t d = threadIdx.x; d < D; d += blockDim.x) {
    T acc = 0;
    for (std::size_t s = 0; s < len; ++s) acc += a[s] / sum * vbase[(s * KVH + kh) * D + d];
    o[d] = acc;
  }
}

template <class T>
__global__ void softmax_kernel(T* out, const T* in, std::size_t V) {
  __shared__ T red[32];
  const T* x = in + blockIdx.x * V;
  T* o = out + blockIdx.x * V;
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) m = x[i] > m ? x[i] : m;
  m = block_max(m, red, -std::numeric_limits<T>::infinity());
  T sum = 0;
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) sum += (o[i] = exp(x[i] - m));
  sum = block_sum(sum, red);
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) o[i] /= sum;
}

/// Row-wise log-sum-exp into lse[row], shared by cross-entropy and the token log-probability; `value`
/// receives lse − x[target] (sign = 1) or x[target] − lse (sign = −1), 0 for a masked row.
template <class T>
__global__ void lse_target_kernel(T* value, T* lse, const T* logits, const std::int32_t* targets, std::size_t V,
                                  T sign) {
  __shared__ T red[32];
  const std::size_t n = blockIdx.x;
  const T* x = logits + n * V;
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) m = x[i] > m ? x[i] : m;
  m = block_max(m, red, -std::numeric_limits<T>::infinity());
  T sum = 0;
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) sum += exp(x[i] - m);
  sum = block_sum(sum, red);
  if (threadIdx.x == 0) {
    const T l = m + log(sum);
    lse[n] = l;
    const std::int32_t target = targets[n];
    value[n] = target < 0 ? T(0) : sign * (l - x[target]);
  }
}

/// dlogits[n, :] += coef · dvalue[n] (softmax(logits[n, :]) − onehot(target)) for unmasked rows; coef = 1 for
/// cross-entropy, −1 for the token log-probability.
template <class T>
__global__ void lse_target_backward_kernel(T* dlogits, const T* dvalue, const T* logits, const T* lse,
                                           const std::int32_t* targets, std::size_t V, T coef,
                                           bool overwrite = false) {
  const std::size_t n = blockIdx.x;
  const std::int32_t target = targets[n];
  T* g = dlogits + n * V;
  if (target < 0) {  // a masked row gets nothing: zero when overwriting
    if (overwrite)
      for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) g[i] = T(0);
    return;
  }
  const T* x = logits + n * V;
  const T d = coef * dvalue[n];
  const T l = lse[n];
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) {
    const T gi = d * exp(x[i] - l) - (i == static_cast<std::size_t>(target) ? d : T(0));
    g[i] = overwrite ? gi : g[i] + gi;
  }
}

template <class T>
void cuda_check_targets(const char* function, const std::int32_t* targets, std::size_t N, std::size_t V,
                        bool allow_any_negative) {
  const auto host = cuda_copy_to_host(targets, N);
  for (std::size_t n = 0; n < N; ++n) {
    const auto t = host[n];
    if (t >= static_cast<std::int64_t>(V) || (!allow_any_negative && t < -1))
      throw validation_error(std::string(function) + ": target " + std::to_string(t) + " at row " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V) +
                             (allow_any_negative ? " (a negative target masks the row)" : ""));
  }
}

/// Threads per block for a row of `width` elements: a multiple of 32, at most cuda_block.
inline unsigned cuda_row_threads(std::size_t width) {
  std::size_t t = 32;
  while (t < width && t < cuda_block) t *= 2;
  return static_cast<unsigned>(t);
}

}  // namespace detail
}  // namespace cai

#include "cai/backend/detail/cuda_flash_attention.cuh"  // attention in tiles on the tensor cores (bf16)

namespace cai {

// ---------------------------------------------------------------------------------------------------
// Element-wise helpers

/// out = a + b
template <class T>
void add_forward(cuda_t, T* out, const T* a, const T* b, std::size_t n) {
  // out, a, b: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::add_kernel, detail::cuda_grid(n), detail::cuda_block)(out, a, b, n);
  CAI_CUDA_CHECK_LAUNCH("add_forward");
}

/// out += a
template <class T>
void accumulate(cuda_t, T* out, const T* a, std::size_t n) {
  // out, a: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::accumulate_kernel, detail::cuda_grid(n), detail::cuda_block)(out, a, n);
  CAI_CUDA_CHECK_LAUNCH("accumulate");
}

// Storage helpers of backend-generic code (backend/cpu.hpp has the same four for cpu_t).

/// out[i] = value, on the device.
template <class T>
void fill(cuda_t, T* out, T value, std::size_t n) {
  // out: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::fill_kernel, detail::cuda_grid(n), detail::cuda_block)(out, value, n);
  CAI_CUDA_CHECK_LAUNCH("fill");
}

/// dst = src, both device buffers of n elements (queued on the default stream).
template <class T>
void copy(cuda_t, T* dst, const T* src, std::size_t n) {
  if (n == 0) return;
  CAI_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice));
}

/// dst (device) = src (host), n elements.
template <class T>
void copy_from_host(cuda_t, T* dst, const T* src, std::size_t n) {
  if (n == 0) return;
  CAI_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyHostToDevice));
}

/// dst (host) = src (device), n elements; waits for the work queued before it.
template <class T>
void copy_to_host(cuda_t, T* dst, const T* src, std::size_t n) {
  if (n == 0) return;
  CAI_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost));
}

/// Splits the rows of a fused projection (N, q_width + 2 kv_width) into q (N, q_width), k and v
/// (N, kv_width); a null destination is skipped.
template <class T>
void split_columns(cuda_t, T* q, T* k, T* v, const T* fused, std::size_t N, std::size_t q_width, std::size_t kv_width) {
  const std::size_t total = N * (q_width + 2 * kv_width);
  if (total == 0) return;
  CAI_CUDA_LAUNCH(detail::columns_kernel, detail::cuda_grid(total), detail::cuda_block)(
      const_cast<T*>(fused), q, k, v, N, q_width, kv_width, false);
  CAI_CUDA_CHECK_LAUNCH("split_columns");
}

/// The inverse of `split_columns`: writes q, k and v side by side into fused rows.
template <class T>
void merge_columns(cuda_t, T* fused, const T* q, const T* k, const T* v, std::size_t N, std::size_t q_width,
                   std::size_t kv_width) {
  const std::size_t total = N * (q_width + 2 * kv_width);
  if (total == 0) return;
  CAI_CUDA_LAUNCH(detail::columns_kernel, detail::cuda_grid(total), detail::cuda_block)(
      fused, const_cast<T*>(q), const_cast<T*>(k), const_cast<T*>(v), N, q_width, kv_width, true);
  CAI_CUDA_CHECK_LAUNCH("merge_columns");
}

// ---------------------------------------------------------------------------------------------------
// Embedding

/// out[n, :] = table[ids[n], :]
/// @throws validation_error for an id outside [0, V) (the ids are copied to the host and checked first).
template <class T>
void embedding_forward(cuda_t, T* out, const std::int32_t* ids, const T* table, std::size_t N, std::size_t C,
                       std::size_t V) {
  // out: (N, C)   ids: (N)   table: (V, C)
  const auto host = detail::cuda_copy_to_host(ids, N);
  for (std::size_t n = 0; n < N; ++n)
    if (host[n] < 0 || static_cast<std::size_t>(host[n]) >= V)
      throw validation_error("embedding_forward: token id " + std::to_string(host[n]) + " at position " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
  if (N * C == 0) return;
  CAI_CUDA_LAUNCH(detail::embedding_forward_kernel, detail::cuda_grid(N * C), detail::cuda_block)(
      out, ids, table, N, C);
  CAI_CUDA_CHECK_LAUNCH("embedding_forward");
}

/// dtable[ids[n], :] += dout[n, :], adding the rows of a repeated id in position order, as the CPU does
/// (so the result is deterministic, and equal to the CPU's bit for bit): the positions are grouped by id
/// with Thrust's stable radix sort, then one thread per (id, channel) sums its group. No atomics.
template <class T>
void embedding_backward(cuda_t, T* dtable, const T* dout, const std::int32_t* ids, std::size_t N, std::size_t C) {
  // dtable: (V, C)   dout: (N, C)   ids: (N)
  if (N * C == 0) return;
  if (N > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw config_error("embedding_backward: " + std::to_string(N) + " positions exceed what an int32 index holds");
  std::int32_t* sorted_ids = detail::cuda_scratch<std::int32_t>(N, 0);  // sorted_ids: (N)
  std::int32_t* order = detail::cuda_scratch<std::int32_t>(N, 1);       // order: (N)
  CAI_CUDA_CHECK(cudaMemcpy(sorted_ids, ids, N * sizeof(std::int32_t), cudaMemcpyDeviceToDevice));
  try {
    thrust::sequence(thrust::device, order, order + N);
    thrust::stable_sort_by_key(thrust::device, sorted_ids, sorted_ids + N, order);
  } catch (const thrust::system_error& e) {
    const int code = e.code().value();
    throw cuda_error("thrust::stable_sort_by_key(ids, order) in embedding_backward", code,
                     cudaGetErrorName(static_cast<cudaError_t>(code)), e.what(), __FILE__, __LINE__);
  }
  CAI_CUDA_LAUNCH(detail::embedding_backward_kernel, detail::cuda_grid(N * C), detail::cuda_block)(
      dtable, dout, sorted_ids, order, N, C);
  CAI_CUDA_CHECK_LAUNCH("embedding_backward");
}

// ---------------------------------------------------------------------------------------------------
// Linear layer

/// out = in @ weight^T + bias (bias may be null), through cuBLAS in `cuda_math_mode()`.
template <class T>
void matmul_forward(cuda_t, T* out, const T* in, const T* weight, const T* bias, std::size_t N, std::size_t C,
                    std::size_t OC) {
  // out: (N, OC)   in: (N, C)   weight: (OC, C)   bias: (OC)
  // column-major: out^T (OC, N) = weight (OC, C) · in^T (C, N); weight's buffer is weight^T (C, OC) there
  detail::cuda_gemm<T>("matmul_forward", CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, weight, C, in, C, T(0), out, OC);
  if (bias != nullptr && N * OC != 0) {
    CAI_CUDA_LAUNCH(detail::add_bias_kernel, detail::cuda_grid(N * OC), detail::cuda_block)(out, bias, N, OC);
    CAI_CUDA_CHECK_LAUNCH("matmul_forward (bias)");
  }
}

/// din += dout @ weight (din = ... with grad_mode::overwrite); dweight += dout^T @ in; dbias += column
/// sums of dout. Null gradients are skipped.
template <class T>
void matmul_backward(cuda_t, T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight,
                     std::size_t N, std::size_t C, std::size_t OC, grad_mode din_mode = grad_mode::accumulate) {
  // din: (N, C)   dweight: (OC, C)   dbias: (OC)   dout: (N, OC)   in: (N, C)   weight: (OC, C)
  const T din_beta = din_mode == grad_mode::overwrite ? T(0) : T(1);
  if (din != nullptr)  // din^T (C, N) (+)= weight^T (C, OC) · dout^T (OC, N)
    detail::cuda_gemm<T>("matmul_backward", CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, weight, C, dout, OC, din_beta, din, C);
  if (dweight != nullptr)  // dweight^T (C, OC) += in^T (C, N) · dout (N, OC)
    detail::cuda_gemm<T>("matmul_backward", CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, in, C, dout, OC, T(1), dweight, C);
  if (dbias != nullptr) detail::cuda_column_sum(dbias, detail::rows_value<T>{dout, OC}, N, OC);
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm (GPT-2) and RMSNorm (Llama)

/// out = (in - mean) * rstd * weight + bias, per row; saves mean and rstd for the backward pass.
template <class T>
void layernorm_forward(cuda_t, T* out, T* mean, T* rstd, const T* in, const T* weight, const T* bias,
                       std::size_t N, std::size_t C, T eps) {
  // out: (N, C)   mean, rstd: (N)   in: (N, C)   weight, bias: (C)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::layernorm_forward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(C))(
      out, mean, rstd, in, weight, bias, C, eps);
  CAI_CUDA_CHECK_LAUNCH("layernorm_forward");
}

template <class T>
void layernorm_backward(cuda_t, T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight,
                        const T* mean, const T* rstd, std::size_t N, std::size_t C) {
  // din: (N, C)   dweight, dbias: (C)   dout, in: (N, C)   weight: (C)   mean, rstd: (N)
  if (N == 0) return;
  if (din != nullptr) {
    CAI_CUDA_LAUNCH(detail::layernorm_backward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(C))(
        din, dout, in, weight, mean, rstd, C);
    CAI_CUDA_CHECK_LAUNCH("layernorm_backward");
  }
  if (dweight != nullptr)
    detail::cuda_column_sum(dweight, detail::layernorm_dweight_value<T>{dout, in, mean, rstd, C}, N, C);
  if (dbias != nullptr) detail::cuda_column_sum(dbias, detail::rows_value<T>{dout, C}, N, C);
}

/// out = in * rstd * weight, rstd = 1 / sqrt(mean(in^2) + eps), per row; saves rstd.
template <class T>
void rmsnorm_forward(cuda_t, T* out, T* rstd, const T* in, const T* weight, std::size_t N, std::size_t C, T eps) {
  // out: (N, C)   rstd: (N)   in: (N, C)   weight: (C)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::rmsnorm_forward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(C))(
      out, rstd, in, weight, C, eps);
  CAI_CUDA_CHECK_LAUNCH("rmsnorm_forward");
}

template <class T>
void rmsnorm_backward(cuda_t, T* din, T* dweight, const T* dout, const T* in, const T* weight, const T* rstd,
                      std::size_t N, std::size_t C) {
  // din: (N, C)   dweight: (C)   dout, in: (N, C)   weight: (C)   rstd: (N)
  if (N == 0) return;
  if (din != nullptr) {
    CAI_CUDA_LAUNCH(detail::rmsnorm_backward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(C))(
        din, dout, in, weight, rstd, C);
    CAI_CUDA_CHECK_LAUNCH("rmsnorm_backward");
  }
  if (dweight != nullptr)
    detail::cuda_column_sum(dweight, detail::rmsnorm_dweight_value<T>{dout, in, rstd, C}, N, C);
}

// ---------------------------------------------------------------------------------------------------
// Activations

/// GELU, tanh form (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <class T>
void gelu_forward(cuda_t, T* out, const T* in, std::size_t n) {
  // out, in: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::gelu_forward_kernel, detail::cuda_grid(n), detail::cuda_block)(out, in, n);
  CAI_CUDA_CHECK_LAUNCH("gelu_forward");
}

/// din += dout * gelu'(in) (din = ... with grad_mode::overwrite).
template <class T>
void gelu_backward(cuda_t, T* din, const T* in, const T* dout, std::size_t n, grad_mode mode = grad_mode::accumulate) {
  // din, in, dout: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::gelu_backward_kernel, detail::cuda_grid(n), detail::cuda_block)(
      din, in, dout, n, mode == grad_mode::overwrite);
  CAI_CUDA_CHECK_LAUNCH("gelu_backward");
}

/// SwiGLU (Llama's MLP): out = silu(gate) * up, silu(x) = x / (1 + exp(-x)).
template <class T>
void swiglu_forward(cuda_t, T* out, const T* gate, const T* up, std::size_t n) {
  // out, gate, up: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::swiglu_forward_kernel, detail::cuda_grid(n), detail::cuda_block)(out, gate, up, n);
  CAI_CUDA_CHECK_LAUNCH("swiglu_forward");
}

template <class T>
void swiglu_backward(cuda_t, T* dgate, T* dup, const T* gate, const T* up, const T* dout, std::size_t n) {
  // dgate, dup, gate, up, dout: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::swiglu_backward_kernel, detail::cuda_grid(n), detail::cuda_block)(
      dgate, dup, gate, up, dout, n);
  CAI_CUDA_CHECK_LAUNCH("swiglu_backward");
}

// ---------------------------------------------------------------------------------------------------
// Rotary position embedding

/// Rotates `x` in place by the angles of each token's position: x holds (B*T) rows of H heads of size D.
/// @pre D is even.
template <class T>
void rope_forward(cuda_t, T* x, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                  double theta, rope_style style = rope_style::half) {
  // x: (BT, H, D)   positions: (BT)
  if (D % 2 != 0) throw config_error("rope_forward: the head size " + std::to_string(D) + " is odd");
  if (BT * D == 0) return;
  CAI_CUDA_LAUNCH(detail::rope_kernel, detail::cuda_grid(BT * D / 2), detail::cuda_block)(
      x, positions, BT, H, D, theta, style, T(1));
  CAI_CUDA_CHECK_LAUNCH("rope_forward");
}

/// The backward pass of RoPE: the rotation is orthogonal, so the gradient is rotated back, in place.
template <class T>
void rope_backward(cuda_t, T* dx, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                   double theta, rope_style style = rope_style::half) {
  // dx: (BT, H, D)   positions: (BT)
  if (D % 2 != 0) throw config_error("rope_backward: the head size " + std::to_string(D) + " is odd");
  if (BT * D == 0) return;
  CAI_CUDA_LAUNCH(detail::rope_kernel, detail::cuda_grid(BT * D / 2), detail::cuda_block)(
      dx, positions, BT, H, D, theta, style, T(-1));
  CAI_CUDA_CHECK_LAUNCH("rope_backward");
}

// ---------------------------------------------------------------------------------------------------
// Causal grouped-query attention

/// How many values of T `attention_forward` saves for `attention_backward` (the size of `att`): the
/// (B, H, T, T) probabilities, or, where attention runs in tiles on the tensor cores (float, BF16 math,
/// D a multiple of 16 up to 128, T > D), the log-sum-exp of each row and a copy of the output,
/// B H T (D + 1). (B, H, T, T) is always enough. The math mode must not change between a forward and its
/// backward.
template <class T>
[[nodiscard]] std::size_t attention_saved_size(cuda_t, std::size_t B, std::size_t Tn, std::size_t H, std::size_t D) {
  return detail::flash_attention_applies<T>(Tn, D) ? B * H * Tn * (D + 1) : B * H * Tn * Tn;
}

/// out = softmax(q k^T / sqrt(D) + causal mask) v, per sequence and head; KVH key/value heads are shared
/// by H / KVH query heads each. Saves in `att` what the backward needs (attention_saved_size): the
/// attention probabilities (zero above the diagonal), or in BF16 mode the tiled kernels' row statistics.
/// @pre H % KVH == 0.
template <class T>
void attention_forward(cuda_t, T* out, T* att, const T* q, const T* k, const T* v, std::size_t B, std::size_t Tn,
                       std::size_t H, std::size_t KVH, std::size_t D) {
  // out: (B, T, H, D)   att: (B, H, T, T)   q: (B, T, H, D)   k, v: (B, T, KVH, D)
  attention_forward(cuda, out, att, q, k, v, B, Tn, H, KVH, D, attention_strides{H * D, H * D, KVH * D, KVH * D});
}

/// attention_forward over rows `strides` apart: out (B, T, strides.out), q (B, T, strides.q), k and v
/// likewise; head h of a row is at offset h * D (q, k and v read in place from a fused projection).
template <class T>
void attention_forward(cuda_t, T* out, T* att, const T* q, const T* k, const T* v, std::size_t B, std::size_t Tn,
                       std::size_t H, std::size_t KVH, std::size_t D, attention_strides strides) {
  if (KVH == 0 || H % KVH != 0)
    throw config_error("attention_forward: " + std::to_string(H) + " query heads cannot share " +
                       std::to_string(KVH) + " key/value heads");
  if (B * H * Tn == 0) return;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  if constexpr (std::is_same_v<T, float>) {
    if (detail::flash_attention_applies<T>(Tn, D)) {
      detail::flash_attention_forward(out, att, q, k, v, B, Tn, H, KVH, D, scale,
                                      detail::attention_ld{strides.out, strides.q, strides.k, strides.v});
      return;
    }
  }
  CAI_CUDA_LAUNCH(detail::attention_forward_kernel, static_cast<unsigned>(B * H * Tn), detail::cuda_row_threads(Tn))(
      out, att, q, k, v, Tn, H, KVH, D, scale, detail::attention_ld{strides.out, strides.q, strides.k, strides.v});
  CAI_CUDA_CHECK_LAUNCH("attention_forward");
}

template <class T>
void attention_backward(cuda_t, T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* att,
                        std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D) {
  // dq: (B, T, H, D)   dk, dv: (B, T, KVH, D)   dout, q: (B, T, H, D)   k, v: (B, T, KVH, D)   att: (B, H, T, T)
  attention_backward(cuda, dq, dk, dv, dout, q, k, v, att, B, Tn, H, KVH, D,
                     attention_strides{H * D, H * D, KVH * D, KVH * D});
}

/// attention_backward over rows `strides` apart: dout as out, dq as q, dk as k, dv as v.
template <class T>
void attention_backward(cuda_t, T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* att,
                        std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D,
                        attention_strides strides) {
  if (KVH == 0 || H % KVH != 0)
    throw config_error("attention_backward: " + std::to_string(H) + " query heads cannot share " +
                       std::to_string(KVH) + " key/value heads");
  if (B * H * Tn == 0) return;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  const detail::attention_ld ld{strides.out, strides.q, strides.k, strides.v};
  if constexpr (std::is_same_v<T, float>) {
    if (detail::flash_attention_applies<T>(Tn, D)) {
      detail::flash_attention_backward(dq, dk, dv, dout, q, k, v, att, B, Tn, H, KVH, D, scale, ld);
      return;
    }
  }
  T* dscore = detail::cuda_scratch<T>(B * H * Tn * Tn);  // dscore: (B, H, T, T), rows t hold s <= t
  CAI_CUDA_LAUNCH(detail::attention_backward_q_kernel, static_cast<unsigned>(B * H * Tn), detail::cuda_row_threads(Tn))(
      dq, dscore, dout, k, v, att, Tn, H, KVH, D, scale, ld);
  CAI_CUDA_CHECK_LAUNCH("attention_backward (queries)");
  if (dk == nullptr && dv == nullptr) return;
  CAI_CUDA_LAUNCH(detail::attention_backward_kv_kernel, static_cast<unsigned>(B * KVH * Tn),
                  detail::cuda_row_threads(D))(
      dk, dv, dout, q, att, dscore, Tn, H, KVH, D, ld);
  CAI_CUDA_CHECK_LAUNCH("attention_backward (keys and values)");
}

/// Attention of new query rows over a key/value cache (KV-cached decoding): row n belongs to the
/// sequence in cache slot `slots[n]` at absolute position `positions[n]`, and attends to that slot's
/// positions 0..positions[n] (its own key and value must already be in the cache).
/// @throws config_error for a position at or beyond max_len (positions are copied to the host first).
template <class T>
void attention_cached_forward(cuda_t, T* out, const T* q, const T* kcache, const T* vcache, const std::int32_t* slots,
                              const std::int32_t* positions, std::size_t N, std::size_t max_len, std::size_t H,
                              std::size_t KVH, std::size_t D) {
  // out, q: (N, H, D)   kcache, vcache: (slots, max_len, KVH, D)   slots, positions: (N)
  if (KVH == 0 || H % KVH != 0)
    throw config_error("attention_cached_forward: " + std::to_string(H) + " query heads cannot share " +
                       std::to_string(KVH) + " key/value heads");
  const auto host = detail::cuda_copy_to_host(positions, N);
  for (std::size_t n = 0; n < N; ++n)
    if (host[n] < 0 || static_cast<std::size_t>(host[n]) >= max_len)
      throw config_error("attention_cached_forward: position " + std::to_string(host[n]) +
                         " is beyond the cache length " + std::to_string(max_len));
  if (N * H == 0) return;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  T* scores = detail::cuda_scratch<T>(N * H * max_len);  // scores: (N, H, max_len)
  CAI_CUDA_LAUNCH(detail::attention_cached_kernel, static_cast<unsigned>(N * H), detail::cuda_row_threads(max_len))(
      out, scores, q, kcache, vcache, slots, positions, max_len, H, KVH, D, scale);
  CAI_CUDA_CHECK_LAUNCH("attention_cached_forward");
}

// ---------------------------------------------------------------------------------------------------
// Softmax and cross-entropy

/// Row-wise softmax: out[n, :] = softmax(in[n, :]).
template <class T>
void softmax_forward(cuda_t, T* out, const T* in, std::size_t N, std::size_t V) {
  // out, in: (N, V)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::softmax_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(out, in, V);
  CAI_CUDA_CHECK_LAUNCH("softmax_forward");
}

/// Token cross-entropy: losses[n] = logsumexp(logits[n, :]) - logits[n, targets[n]]; a target of -1 masks
/// the row (loss 0). Saves the log-sum-exp of each row for the backward pass.
/// @throws validation_error for a target outside [-1, V) (targets are copied to the host first).
template <class T>
void crossentropy_forward(cuda_t, T* losses, T* lse, const T* logits, const std::int32_t* targets, std::size_t N,
                          std::size_t V) {
  // losses, lse: (N)   logits: (N, V)   targets: (N)
  detail::cuda_check_targets<T>("crossentropy_forward", targets, N, V, false);
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::lse_target_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(
      losses, lse, logits, targets, V, T(1));
  CAI_CUDA_CHECK_LAUNCH("crossentropy_forward");
}

/// dlogits[n, :] += dlosses[n] * (softmax(logits[n, :]) - onehot(targets[n])); masked rows get nothing
/// (with grad_mode::overwrite: dlogits = ..., masked rows zero).
template <class T>
void crossentropy_backward(cuda_t, T* dlogits, const T* dlosses, const T* logits, const T* lse,
                           const std::int32_t* targets, std::size_t N, std::size_t V,
                           grad_mode mode = grad_mode::accumulate) {
  // dlogits, logits: (N, V)   dlosses, lse: (N)   targets: (N)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::lse_target_backward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(
      dlogits, dlosses, logits, lse, targets, V, T(1), mode == grad_mode::overwrite);
  CAI_CUDA_CHECK_LAUNCH("crossentropy_backward");
}

}  // namespace cai
