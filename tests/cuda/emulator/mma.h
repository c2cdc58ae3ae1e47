// cai's CUDA emulator (see cuda_runtime.h here): the warp matrix functions of <mma.h> (nvcuda::wmma) that
// the CUDA backend uses, m16n16k16 tiles of __nv_bfloat16 with float accumulators, on the CPU.
//
// On a GPU a fragment is spread over the 32 threads of a warp in an unspecified way. Here every thread
// holds the whole tile, which gives the same results for code that, as it must, treats the mapping as
// unknown (loads, stores, mma, fills, and element-wise operations over all of `x`). A store writes only
// the calling thread's share of the elements (element i by lane i % 32), so that a thread which reads
// back another thread's share without a __syncwarp() in between sees stale memory here, as it may on a
// GPU. Products are exact in float and summed in the order of k.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <type_traits>

#include "cuda_runtime.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "cai CUDA emulator: m16n16k16 tiles only");
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols;
  using element_type = T;
  T x[num_elements];
};

namespace detail {
inline unsigned lane() {
  const auto& e = cai_emu::detail::the_engine();
  return static_cast<unsigned>(e.current % 32);
}
template <class T>
float to_float(T v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __bfloat162float(v);
  else
    return static_cast<float>(v);
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const T& value) {
  for (auto& v : f.x) v = value;
}

/// matrix_a or matrix_b: the layout is the fragment's.
template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, Layout>;
  static_assert(!std::is_same_v<Use, accumulator>, "an accumulator load names its layout");
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = std::is_same_v<Layout, row_major> ? p[static_cast<std::size_t>(r) * ldm + c]
                                                               : p[r + static_cast<std::size_t>(c) * ldm];
}

template <int M, int N, int K, class T>
void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      f.x[r * N + c] = layout == mem_row_major ? p[static_cast<std::size_t>(r) * ldm + c]
                                               : p[r + static_cast<std::size_t>(c) * ldm];
}

template <int M, int N, int K, class T>
void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  const unsigned me = detail::lane();
  for (int i = 0; i < M * N; ++i) {
    if (static_cast<unsigned>(i) % 32 != me) continue;  // this thread's share
    const int r = i / N, c = i % N;
    (layout == mem_row_major ? p[static_cast<std::size_t>(r) * ldm + c] : p[r + static_cast<std::size_t>(c) * ldm]) =
        f.x[i];
  }
}

/// d = a b + c.
template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
  TC out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      TC acc = c.x[i * N + j];
      for (int k = 0; k < K; ++k) acc += detail::to_float(a.x[i * K + k]) * detail::to_float(b.x[k * N + j]);
      out[i * N + j] = acc;
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = out[i];
}

}  // namespace nvcuda::wmma
