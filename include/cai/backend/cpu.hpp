/// @file backend/cpu.hpp
/// The CPU backend's kernels: forward/backward pairs over plain row-major buffers (llm.c's habit), each
/// taking the backend tag first (Thrust's habit), so that `transformer<Backend>` and the losses call
/// `matmul_forward(Backend{}, ...)` and the CUDA backend supplies the same names for `cuda_t`.
///
/// Conventions:
///  - Every buffer has a shape comment, e.g. `// out: (N, OC)`; all buffers are row-major and contiguous.
///  - Backward functions ACCUMULATE into their gradient buffers (`+=`), so a parameter used twice (tied
///    embeddings) sums its gradients; a null gradient pointer skips that gradient.
///  - Linear weights are stored as PyTorch's `nn.Linear` does: (out_features, in_features).
///  - `T` is `float` (the model's compute type) or `double` (used by the finite-difference tests).
/// Matrix products (attention's too) go through Eigen 3.4; element-wise and row-wise kernels use Eigen's
/// array expressions (vectorised exp and tanh) or plain loops written so that the compiler vectorises them.
/// Every parallel loop splits its work the same way on any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cai/backend/options.hpp"
#include "cai/backend/tags.hpp"
#include "cai/error.hpp"

/// Splits the loop that follows over OpenMP threads when cai is built with OpenMP (the `cai::cai` target
/// links it when CMake finds it) and the work is large enough; otherwise the loop runs serially. Every
/// parallel loop writes disjoint outputs, so results do not depend on the number of threads.
#if defined(_OPENMP)
#define CAI_DETAIL_PRAGMA(x) _Pragma(#x)
#define CAI_PARALLEL_FOR(work) CAI_DETAIL_PRAGMA(omp parallel for schedule(static) if ((work) > 32768))
#else
#define CAI_PARALLEL_FOR(work)
#endif

namespace cai {

namespace detail {
template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using matrix_map = Eigen::Map<row_matrix<T>>;
template <class T>
using const_matrix_map = Eigen::Map<const row_matrix<T>>;
template <class T>
using vector_map = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using const_vector_map = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using array_map = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using const_array_map = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
/// Rows of a wider row-major buffer (one head of a (T, H, D) tensor: D columns, H * D apart).
template <class T>
using strided_map = Eigen::Map<row_matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using const_strided_map = Eigen::Map<const row_matrix<T>, 0, Eigen::OuterStride<>>;

inline Eigen::Index index(std::size_t n) { return static_cast<Eigen::Index>(n); }

/// Scratch that Eigen allocates aligned. Expressions are evaluated into it, and reduced over it, before
/// they reach the caller's buffers: Eigen splits a loop over a buffer into scalar and vector parts by
/// the buffer's address (and the scalar exp, tanh and fused multiply-adds round differently from the
/// vector ones), so evaluating into aligned scratch makes every result independent of where the
/// buffers lie, and so of the number of threads too.
template <class T>
using scratch = Eigen::Array<T, Eigen::Dynamic, 1>;

/// Calls f(begin, length) over consecutive chunks of [0, n), in parallel when the work is large; the
/// chunks do not depend on the number of threads, so neither do the results.
template <class F>
void for_chunks(std::size_t n, std::size_t cost_per_element, F&& f) {
  constexpr std::size_t chunk = 4096;
  const std::size_t chunks = (n + chunk - 1) / chunk;
  (void)cost_per_element;  // only read by the OpenMP pragma
  CAI_PARALLEL_FOR(n * cost_per_element)
  for (std::size_t i = 0; i < chunks; ++i) f(i * chunk, std::min(chunk, n - i * chunk));
}

/// out[c] += sum over rows n of *row(n, c), for c in [0, C): blocks of 16 columns in parallel, rows in
/// order, so every column sums in the same order whatever the threads and the addresses.
template <class T, class Row>
void column_sums(T* out, std::size_t N, std::size_t C, Row&& row) {
  constexpr int W = 16;
  using lanes = Eigen::Array<T, W, 1>;
  const std::size_t blocks = (C + W - 1) / W;
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t cb = 0; cb < blocks; ++cb) {
    const std::size_t c0 = cb * W;
    if (c0 + W <= C) {
      lanes acc = lanes::Zero();
      for (std::size_t n = 0; n < N; ++n) acc += Eigen::Map<const lanes>(row(n, c0));
      for (int j = 0; j < W; ++j) out[c0 + static_cast<std::size_t>(j)] += acc[j];
    } else {
      for (std::size_t c = c0; c < C; ++c) {
        T sum = 0;
        for (std::size_t n = 0; n < N; ++n) sum += *row(n, c);
        out[c] += sum;
      }
    }
  }
}

/// Calls f(first, count) over 8 slices of [0, rows) (multiples of 16 rows, at least 64) in cai's own
/// parallel loop, each slice a serial Eigen product (Eigen does not start threads inside a parallel
/// region). Left to split a product over threads itself, Eigen picks its depth blocking from the thread
/// count, and long inner dimensions then round differently on 1 and 2 threads; slices that depend only
/// on the shape give the same bits on any number of threads.
template <class F>
void for_gemm_slices(Eigen::Index rows, F&& f) {
  const Eigen::Index slice = std::max<Eigen::Index>(64, ((rows + 7) / 8 + 15) / 16 * 16);
  const Eigen::Index slices = (rows + slice - 1) / slice;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (Eigen::Index i = 0; i < slices; ++i) f(i * slice, std::min(slice, rows - i * slice));
}

/// Calls f(first, last) over blocks of 16 rows of [0, N), in parallel when `work` is large.
template <class F>
void for_row_blocks(std::size_t N, std::size_t work, F&& f) {
  constexpr std::size_t rows = 16;
  const std::size_t blocks = (N + rows - 1) / rows;
  (void)work;  // only read by the OpenMP pragma
  CAI_PARALLEL_FOR(work)
  for (std::size_t i = 0; i < blocks; ++i) f(i * rows, std::min(N, i * rows + rows));
}
}  // namespace detail

/// Asks the operating system to back the whole 2 MiB pages inside a fresh buffer with transparent huge
/// pages (Linux, where transparent huge pages are enabled for `madvise`; elsewhere nothing happens).
/// For the model's weights and the KV cache: a decode step streams all of them from memory, and with
/// 4 KiB pages every 4 KiB costs a page-table walk (in a virtual machine, a nested one). On this
/// project's machine SmolLM2's decode step went from 61 to 44 ms (batch 8, one thread) and the
/// benchmark's greedy generation from 373 to 331 ms. The pages inside are handed back and come back
/// as zeros on first touch, in huge pages where the system has them.
/// @pre every byte of the buffer is zero (a freshly value-initialised storage).
inline void prefer_huge_pages(cpu_t, void* data, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MADV_DONTNEED)
  constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
  const auto a = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t begin = (a + huge - 1) & ~(huge - 1), end = (a + bytes) & ~(huge - 1);
  if (data == nullptr || end <= begin) return;
  if (::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0)
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
  (void)data, (void)bytes;
#endif
}

// grad_mode (accumulate or overwrite an input gradient) is in backend/options.hpp, shared with cuda_t.

// ---------------------------------------------------------------------------------------------------
// Element-wise helpers that the model composes layers with

/// out = a + b
template <class T>
void add_forward(cpu_t, T* out, const T* a, const T* b, std::size_t n) {
  // out, a, b: (n)
  for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

/// out += a
template <class T>
void accumulate(cpu_t, T* out, const T* a, std::size_t n) {
  // out, a: (n)
  for (std::size_t i = 0; i < n; ++i) out[i] += a[i];
}

// Storage helpers, so that backend-generic code (the transformer) never touches a buffer from the host:
// on the CPU, backend memory is host memory and each is a std algorithm.

/// out[i] = value
template <class T>
void fill(cpu_t, T* out, T value, std::size_t n) {
  std::fill_n(out, n, value);
}

/// dst = src, both backend buffers of n elements.
template <class T>
void copy(cpu_t, T* dst, const T* src, std::size_t n) {
  std::copy_n(src, n, dst);
}

/// dst (a backend buffer) = src (host memory), n elements.
template <class T>
void copy_from_host(cpu_t, T* dst, const T* src, std::size_t n) {
  std::copy_n(src, n, dst);
}

/// dst (host memory) = src (a backend buffer), n elements.
template <class T>
void copy_to_host(cpu_t, T* dst, const T* src, std::size_t n) {
  std::copy_n(src, n, dst);
}

/// Splits the rows of a fused projection (N, q_width + 2 kv_width) into q (N, q_width), k and v
/// (N, kv_width); a null destination is skipped.
template <class T>
void split_columns(cpu_t, T* q, T* k, T* v, const T* fused, std::size_t N, std::size_t q_width, std::size_t kv_width) {
  const std::size_t W = q_width + 2 * kv_width;
  for (std::size_t n = 0; n < N; ++n) {
    const T* row = fused + n * W;
    std::copy_n(row, q_width, q + n * q_width);
    std::copy_n(row + q_width, kv_width, k + n * kv_width);
    std::copy_n(row + q_width + kv_width, kv_width, v + n * kv_width);
  }
}

/// The inverse of `split_columns`: writes q, k and v side by side into fused rows.
template <class T>
void merge_columns(cpu_t, T* fused, const T* q, const T* k, const T* v, std::size_t N, std::size_t q_width,
                   std::size_t kv_width) {
  const std::size_t W = q_width + 2 * kv_width;
  for (std::size_t n = 0; n < N; ++n) {
    T* row = fused + n * W;
    std::copy_n(q + n * q_width, q_width, row);
    std::copy_n(k + n * kv_width, kv_width, row + q_width);
    std::copy_n(v + n * kv_width, kv_width, row + q_width + kv_width);
  }
}

// ---------------------------------------------------------------------------------------------------
// Embedding

/// out[n, :] = table[ids[n], :]
/// @throws validation_error for an id outside [0, V).
template <class T>
void embedding_forward(cpu_t, T* out, const std::int32_t* ids, const T* table, std::size_t N, std::size_t C,
                       std::size_t V) {
  // out: (N, C)   ids: (N)   table: (V, C)
  for (std::size_t n = 0; n < N; ++n) {
    const auto id = ids[n];
    if (id < 0 || static_cast<std::size_t>(id) >= V)
      throw validation_error("embedding_forward: token id " + std::to_string(id) + " at position " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
    std::copy_n(table + static_cast<std::size_t>(id) * C, C, out + n * C);
  }
}

/// dtable[ids[n], :] += dout[n, :]
template <class T>
void embedding_backward(cpu_t, T* dtable, const T* dout, const std::int32_t* ids, std::size_t N, std::size_t C) {
  // dtable: (V, C)   dout: (N, C)   ids: (N)
  for (std::size_t n = 0; n < N; ++n) {
    T* row = dtable + static_cast<std::size_t>(ids[n]) * C;
    const T* g = dout + n * C;
    for (std::size_t c = 0; c < C; ++c) row[c] += g[c];
  }
}

// ---------------------------------------------------------------------------------------------------
// Linear layer

namespace detail {
/// out[n, o] = bias[o] + in[n, :] . weight[o, :] for R rows of `in` (few rows: a decode step); each
/// weight row is read once and multiplied with the R input rows while it is in cache, where a general
/// matrix product would first copy (pack) the whole weight matrix. Partial sums run in the lanes of one
/// Eigen packet per row, in a fixed order, so every result is computed the same way on any thread.
template <std::size_t R, class T>
void matmul_rows(T* out, const T* in, const T* weight, const T* bias, std::size_t C, std::size_t OC,
                 std::size_t o_begin, std::size_t o_end) {
  // out: (R, OC) rows OC apart   in: (R, C)   weight: (OC, C)   bias: (OC)
  // lanes of partial sums: one SIMD register each (R independent chains of fused multiply-adds)
  // Explicit multiply-adds (Eigen's pmadd, std::fma for the tail): left to the compiler, a * b + c may or
  // may not be contracted into a fused multiply-add depending on R, and a row's result would then depend
  // on the rows beside it (seen on hosts without AVX-512, where this path serves every decode step).
  namespace ei = Eigen::internal;
  using packet = typename ei::packet_traits<T>::type;
  constexpr int L = ei::packet_traits<T>::size;
  for (std::size_t o = o_begin; o < o_end; ++o) {
    const T* w = weight + o * C;
    packet acc[R];
    for (std::size_t r = 0; r < R; ++r) acc[r] = ei::pset1<packet>(T(0));
    std::size_t c = 0;
    for (; c + L <= C; c += L) {
      const packet wc = ei::ploadu<packet>(w + c);
      for (std::size_t r = 0; r < R; ++r) acc[r] = ei::pmadd(ei::ploadu<packet>(in + r * C + c), wc, acc[r]);
    }
    for (std::size_t r = 0; r < R; ++r) {
      T sum = ei::predux(acc[r]);
      for (std::size_t cc = c; cc < C; ++cc) sum = std::fma(in[r * C + cc], w[cc], sum);
      out[r * OC + o] = sum + (bias != nullptr ? bias[o] : T(0));
    }
  }
}

/// The matrix product of a few rows (N < small_rows) without packing: weight rows in parallel blocks.
inline constexpr std::size_t small_rows = 24;

#if defined(__AVX512F__)
/// Sums each of 16 vectors: lane j of the result is the sum of the lanes of v[j / 4 + 4 (j % 4)]. Every
/// vector is reduced in the same order (lanes l and l + 8, then + 4, + 2, + 1), whichever of the 16 it is.
inline __m512 reduce16(const __m512* v) {
  __m512 x[8], y[4];
  for (int i = 0; i < 8; ++i)
    x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)
    y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * i], x[2 * i + 1], 0x88), _mm512_shuffle_f32x4(x[2 * i], x[2 * i + 1], 0xDD));
  const __m512 z0 = _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x44), _mm512_shuffle_ps(y[0], y[1], 0xEE));
  const __m512 z1 = _mm512_add_ps(_mm512_shuffle_ps(y[2], y[3], 0x44), _mm512_shuffle_ps(y[2], y[3], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(z0, z1, 0x88), _mm512_shuffle_ps(z0, z1, 0xDD));
}

/// out[r, o + p] = bias[o + p] + in[r, :] . weight[o + p, :] for R input rows and P weight rows (R P <= 16
/// partial-sum vectors). Each dot product runs in 16 lanes of fused multiply-adds over the columns (a
/// masked load for the last C % 16) and is reduced by `reduce16`: the same operations in the same order
/// whatever R, P and the thread, so a row's result does not depend on the rows beside it.
template <int R, int P>
void dot_rows_avx512(float* out, const float* in, const float* weight, const float* bias, std::size_t C,
                     std::size_t OC, std::size_t o) {
  static_assert(R * P <= 16, "dot_rows_avx512 keeps at most 16 vectors of partial sums");
  // out: (R, OC)   in: (R, C)   weight rows o .. o + P: (P, C)
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  const std::size_t tail = C % 16, body = C - tail;
  const __mmask16 m = static_cast<__mmask16>((1u << tail) - 1u);
  // one weight row after the other, each read front to back (one stream: faster here than interleaving
  // the rows, whose reads then wait on memory longer)
  for (int p = 0; p < P; ++p) {
    const float* w = weight + (o + static_cast<std::size_t>(p)) * C;
    for (std::size_t c = 0; c < body; c += 16) {
      // fetched 4 KiB ahead: the weights stream from memory once per product, and the hardware
      // prefetchers alone leave a decode step waiting on them
      _mm_prefetch(reinterpret_cast<const char*>(w + c + 1024), _MM_HINT_T0);
      const __m512 wv = _mm512_loadu_ps(w + c);
      for (int r = 0; r < R; ++r)
        acc[r * P + p] = _mm512_fmadd_ps(_mm512_loadu_ps(in + static_cast<std::size_t>(r) * C + c), wv, acc[r * P + p]);
    }
    if (tail != 0) {
      const __m512 wv = _mm512_maskz_loadu_ps(m, w + body);
      for (int r = 0; r < R; ++r)
        acc[r * P + p] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, in + static_cast<std::size_t>(r) * C + body), wv, acc[r * P + p]);
    }
  }
  alignas(64) float sums[16];
  _mm512_store_ps(sums, reduce16(acc));
  for (int j = 0; j < 16; ++j) {
    const int v = j / 4 + 4 * (j % 4);
    if (v >= R * P) continue;
    const std::size_t r = static_cast<std::size_t>(v / P), oo = o + static_cast<std::size_t>(v % P);
    out[r * OC + oo] = sums[j] + (bias != nullptr ? bias[oo] : 0.0f);
  }
}

/// Weight rows o0 .. o1 against R input rows: P at a time (enough rows to fill half the 16 vectors of
/// partial sums that one reduction serves), the rest one at a time.
template <int R>
void dot_block_avx512(float* out, const float* in, const float* weight, const float* bias, std::size_t C,
                      std::size_t OC, std::size_t o0, std::size_t o1) {
  constexpr int P = R >= 8 ? 1 : (8 + R - 1) / R;
  std::size_t o = o0;
  for (; o + P <= o1; o += P) dot_rows_avx512<R, P>(out, in, weight, bias, C, OC, o);
  for (; o < o1; ++o) dot_rows_avx512<R, 1>(out, in, weight, bias, C, OC, o);
}

inline void matmul_rows_block(float* out, const float* in, const float* weight, const float* bias, std::size_t N,
                              std::size_t C, std::size_t OC, std::size_t o0, std::size_t o1) {
  std::size_t n = 0;
  for (; n + 8 <= N; n += 8) dot_block_avx512<8>(out + n * OC, in + n * C, weight, bias, C, OC, o0, o1);
  float* o = out + n * OC;
  const float* x = in + n * C;
  switch (N - n) {
    case 7: dot_block_avx512<7>(o, x, weight, bias, C, OC, o0, o1); break;
    case 6: dot_block_avx512<6>(o, x, weight, bias, C, OC, o0, o1); break;
    case 5: dot_block_avx512<5>(o, x, weight, bias, C, OC, o0, o1); break;
    case 4: dot_block_avx512<4>(o, x, weight, bias, C, OC, o0, o1); break;
    case 3: dot_block_avx512<3>(o, x, weight, bias, C, OC, o0, o1); break;
    case 2: dot_block_avx512<2>(o, x, weight, bias, C, OC, o0, o1); break;
    case 1: dot_block_avx512<1>(o, x, weight, bias, C, OC, o0, o1); break;
    default: break;
  }
}
#endif

template <class T>
void matmul_rows_block(T* out, const T* in, const T* weight, const T* bias, std::size_t N, std::size_t C,
                       std::size_t OC, std::size_t o0, std::size_t o1) {
  std::size_t n = 0;
  for (; n + 8 <= N; n += 8) matmul_rows<8>(out + n * OC, in + n * C, weight, bias, C, OC, o0, o1);
  if (N - n >= 4) {
    matmul_rows<4>(out + n * OC, in + n * C, weight, bias, C, OC, o0, o1);
    n += 4;
  }
  switch (N - n) {
    case 3: matmul_rows<3>(out + n * OC, in + n * C, weight, bias, C, OC, o0, o1); break;
    case 2: matmul_rows<2>(out + n * OC, in + n * C, weight, bias, C, OC, o0, o1); break;
    case 1: matmul_rows<1>(out + n * OC, in + n * C, weight, bias, C, OC, o0, o1); break;
    default: break;
  }
}

template <class T>
void matmul_forward_small(T* out, const T* in, const T* weight, const T* bias, std::size_t N, std::size_t C,
                          std::size_t OC) {
  // out: (N, OC)   in: (N, C)   weight: (OC, C)   bias: (OC)
  constexpr std::size_t block = 32;  // weight rows per parallel iteration
  const std::size_t blocks = (OC + block - 1) / block;
  CAI_PARALLEL_FOR(N * C * OC)
  for (std::size_t ob = 0; ob < blocks; ++ob)
    matmul_rows_block(out, in, weight, bias, N, C, OC, ob * block, std::min(OC, ob * block + block));
}

template <class T>
void matmul_backward(T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight, std::size_t N,
                     std::size_t C, std::size_t OC, bool overwrite_din) {
  // din: (N, C)   dweight: (OC, C)   dbias: (OC)   dout: (N, OC)   in: (N, C)   weight: (OC, C)
  const auto n = index(N), c = index(C), oc = index(OC);
  const_matrix_map<T> g(dout, n, oc);
  if (din != nullptr) {
    matrix_map<T> dx(din, n, c);
    const_matrix_map<T> w(weight, oc, c);
    for_gemm_slices(n, [&](Eigen::Index r0, Eigen::Index rows) {
      if (overwrite_din)
        dx.middleRows(r0, rows).noalias() = g.middleRows(r0, rows) * w;
      else
        dx.middleRows(r0, rows).noalias() += g.middleRows(r0, rows) * w;
    });
  }
  if (dweight != nullptr) {
    matrix_map<T> dw(dweight, oc, c);
    const_matrix_map<T> x(in, n, c);
    for_gemm_slices(oc, [&](Eigen::Index r0, Eigen::Index rows) {
      dw.middleRows(r0, rows).noalias() += g.middleCols(r0, rows).transpose() * x;
    });
  }
  if (dbias != nullptr) column_sums(dbias, N, OC, [dout, OC](std::size_t n, std::size_t c) { return dout + n * OC + c; });
}
}  // namespace detail

/// out = in @ weight^T + bias (bias may be null).
template <class T>
void matmul_forward(cpu_t, T* out, const T* in, const T* weight, const T* bias, std::size_t N, std::size_t C,
                    std::size_t OC) {
  // out: (N, OC)   in: (N, C)   weight: (OC, C)   bias: (OC)
  if (N < detail::small_rows) {
    detail::matmul_forward_small(out, in, weight, bias, N, C, OC);
    return;
  }
  detail::matrix_map<T> o(out, detail::index(N), detail::index(OC));
  detail::const_matrix_map<T> x(in, detail::index(N), detail::index(C));
  detail::const_matrix_map<T> w(weight, detail::index(OC), detail::index(C));
  if (OC > 2048) {
    // A wide output (the vocabulary head): tiles of 256 rows x 512 columns, each a serial Eigen product.
    // Eigen packs the weight for every product it runs: in slices of rows, the whole head for each
    // slice; in tiles, a slice of the head while it is in cache (and the tile of output it zero-fills
    // too). The tiles depend only on the shape: the same bits on any number of threads.
    constexpr Eigen::Index tile_rows = 256, tile_cols = 512;
    const Eigen::Index n = detail::index(N), oc = detail::index(OC);
    const Eigen::Index row_tiles = (n + tile_rows - 1) / tile_rows, tiles = row_tiles * ((oc + tile_cols - 1) / tile_cols);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (Eigen::Index t = 0; t < tiles; ++t) {
      const Eigen::Index r0 = (t % row_tiles) * tile_rows, c0 = (t / row_tiles) * tile_cols;
      const Eigen::Index rows = std::min(tile_rows, n - r0), cols = std::min(tile_cols, oc - c0);
      auto os = o.block(r0, c0, rows, cols);
      if (bias != nullptr) {
        os.rowwise() = detail::const_vector_map<T>(bias + c0, cols).transpose();
        os.noalias() += x.middleRows(r0, rows) * w.middleRows(c0, cols).transpose();
      } else {
        os.noalias() = x.middleRows(r0, rows) * w.middleRows(c0, cols).transpose();
      }
    }
    return;
  }
  detail::for_gemm_slices(detail::index(N), [&](Eigen::Index r0, Eigen::Index rows) {
    auto os = o.middleRows(r0, rows);
    if (bias != nullptr) {  // Eigen zero-fills the output before accumulating the product: start from the bias
      os.rowwise() = detail::const_vector_map<T>(bias, detail::index(OC)).transpose();
      os.noalias() += x.middleRows(r0, rows) * w.transpose();
    } else {
      os.noalias() = x.middleRows(r0, rows) * w.transpose();
    }
  });
}

/// din += dout @ weight (din = ... with grad_mode::overwrite); dweight += dout^T @ in; dbias += column
/// sums of dout. Null gradients are skipped.
template <class T>
void matmul_backward(cpu_t, T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight,
                     std::size_t N, std::size_t C, std::size_t OC, grad_mode din_mode = grad_mode::accumulate) {
  // din: (N, C)   dweight: (OC, C)   dbias: (OC)   dout: (N, OC)   in: (N, C)   weight: (OC, C)
  detail::matmul_backward(din, dweight, dbias, dout, in, weight, N, C, OC, din_mode == grad_mode::overwrite);
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm (GPT-2) and RMSNorm (Llama)

/// out = (in - mean) * rstd * weight + bias, per row; saves mean and rstd for the backward pass.
template <class T>
void layernorm_forward(cpu_t, T* out, T* mean, T* rstd, const T* in, const T* weight, const T* bias,
                       std::size_t N, std::size_t C, T eps) {
  // out: (N, C)   mean, rstd: (N)   in: (N, C)   weight, bias: (C)
  const auto c = detail::index(C);
  detail::const_array_map<T> w(weight, c);
  detail::for_row_blocks(N, N * C, [&](std::size_t n0, std::size_t n1) {
    detail::scratch<T> t(c);
    for (std::size_t n = n0; n < n1; ++n) {
      detail::const_array_map<T> x(in + n * C, c);
      t = x;
      const T m = t.sum() / static_cast<T>(C);
      t -= m;
      const T s = T(1) / std::sqrt(t.square().sum() / static_cast<T>(C) + eps);
      if (bias != nullptr)
        t = t * s * w + detail::const_array_map<T>(bias, c);
      else
        t = t * s * w;
      detail::array_map<T>(out + n * C, c) = t;
      mean[n] = m;
      rstd[n] = s;
    }
  });
}

template <class T>
void layernorm_backward(cpu_t, T* din, T* dweight, T* dbias, const T* dout, const T* in, const T* weight,
                        const T* mean, const T* rstd, std::size_t N, std::size_t C) {
  // din: (N, C)   dweight, dbias: (C)   dout, in: (N, C)   weight: (C)   mean, rstd: (N)
  const auto c = detail::index(C);
  if (din != nullptr) {
    detail::const_array_map<T> w(weight, c);
    detail::for_row_blocks(N, N * C, [&](std::size_t n0, std::size_t n1) {
      detail::scratch<T> wg(c), norm(c);
      for (std::size_t n = n0; n < n1; ++n) {
        detail::const_array_map<T> x(in + n * C, c), g(dout + n * C, c);
        const T m = mean[n], s = rstd[n];
        wg = w * g;  // dnorm
        norm = (x - m) * s;
        const T g_mean = wg.sum() / static_cast<T>(C);  // means of dnorm and dnorm * norm
        const T g_norm_mean = (wg * norm).sum() / static_cast<T>(C);
        wg = (wg - g_mean - norm * g_norm_mean) * s;
        detail::array_map<T>(din + n * C, c) += wg;
      }
    });
  }
  if (dweight == nullptr && dbias == nullptr) return;
  // the parameter gradients sum over rows: a block of 16 columns per thread, rows in order
  constexpr int W = 16;
  using lanes = Eigen::Array<T, W, 1>;
  using lanes_map = Eigen::Map<const lanes>;
  const std::size_t blocks = (C + W - 1) / W;
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t cb = 0; cb < blocks; ++cb) {
    const std::size_t c0 = cb * W;
    if (c0 + W <= C) {
      lanes dw = lanes::Zero(), db = lanes::Zero();
      for (std::size_t n = 0; n < N; ++n) {
        const lanes g = lanes_map(dout + n * C + c0);
        dw += (lanes_map(in + n * C + c0) - mean[n]) * rstd[n] * g;
        db += g;
      }
      for (int j = 0; j < W; ++j) {
        if (dweight != nullptr) dweight[c0 + static_cast<std::size_t>(j)] += dw[j];
        if (dbias != nullptr) dbias[c0 + static_cast<std::size_t>(j)] += db[j];
      }
    } else {
      for (std::size_t c = c0; c < C; ++c) {
        T dw = 0, db = 0;
        for (std::size_t n = 0; n < N; ++n) {
          const T g = dout[n * C + c];
          dw += (in[n * C + c] - mean[n]) * rstd[n] * g;
          db += g;
        }
        if (dweight != nullptr) dweight[c] += dw;
        if (dbias != nullptr) dbias[c] += db;
      }
    }
  }
}

/// out = in * rstd * weight, rstd = 1 / sqrt(mean(in^2) + eps), per row; saves rstd.
template <class T>
void rmsnorm_forward(cpu_t, T* out, T* rstd, const T* in, const T* weight, std::size_t N, std::size_t C, T eps) {
  // out: (N, C)   rstd: (N)   in: (N, C)   weight: (C)
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = in + n * C;
    T ss = 0;
    for (std::size_t c = 0; c < C; ++c) ss += x[c] * x[c];
    const T s = T(1) / std::sqrt(ss / static_cast<T>(C) + eps);
    T* o = out + n * C;
    for (std::size_t c = 0; c < C; ++c) o[c] = x[c] * s * weight[c];
    rstd[n] = s;
  }
}

template <class T>
void rmsnorm_backward(cpu_t, T* din, T* dweight, const T* dout, const T* in, const T* weight, const T* rstd,
                      std::size_t N, std::size_t C) {
  // din: (N, C)   dweight: (C)   dout, in: (N, C)   weight: (C)   rstd: (N)
  if (din != nullptr) {
    CAI_PARALLEL_FOR(N * C)
    for (std::size_t n = 0; n < N; ++n) {
      const T* x = in + n * C;
      const T* g = dout + n * C;
      const T s = rstd[n];
      T dot = 0;  // sum of dnorm * x
      for (std::size_t c = 0; c < C; ++c) dot += weight[c] * g[c] * x[c];
      const T k = dot * s * s * s / static_cast<T>(C);
      for (std::size_t c = 0; c < C; ++c) din[n * C + c] += weight[c] * g[c] * s - x[c] * k;
    }
  }
  if (dweight == nullptr) return;
  CAI_PARALLEL_FOR(N * C)
  for (std::size_t c = 0; c < C; ++c) {
    T dw = 0;
    for (std::size_t n = 0; n < N; ++n) dw += in[n * C + c] * rstd[n] * dout[n * C + c];
    dweight[c] += dw;
  }
}

// ---------------------------------------------------------------------------------------------------
// Activations

namespace detail {
template <class T>
constexpr T gelu_k0 = T(0.7978845608028654);  // sqrt(2 / pi)
template <class T>
constexpr T gelu_k1 = T(0.044715);
}  // namespace detail

/// GELU, tanh form (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Eigen's vectorised tanh.
template <class T>
void gelu_forward(cpu_t, T* out, const T* in, std::size_t n) {
  // out, in: (n)
  detail::for_chunks(n, 16, [&](std::size_t b, std::size_t len) {
    detail::const_array_map<T> x(in + b, detail::index(len));
    detail::scratch<T> t = T(0.5) * x * (T(1) + (detail::gelu_k0<T> * (x + detail::gelu_k1<T> * x.cube())).tanh());
    detail::array_map<T>(out + b, detail::index(len)) = t;
  });
}

/// din += dout * gelu'(in) (din = ... with grad_mode::overwrite).
template <class T>
void gelu_backward(cpu_t, T* din, const T* in, const T* dout, std::size_t n, grad_mode mode = grad_mode::accumulate) {
  // din, in, dout: (n)
  detail::for_chunks(n, 16, [&](std::size_t b, std::size_t len) {
    const auto l = detail::index(len);
    detail::const_array_map<T> x(in + b, l), g(dout + b, l);
    detail::scratch<T> t = (detail::gelu_k0<T> * (x + detail::gelu_k1<T> * x.cube())).tanh();
    t = g * (T(0.5) * (T(1) + t) +
             T(0.5) * x * (T(1) - t.square()) * detail::gelu_k0<T> * (T(1) + T(3) * detail::gelu_k1<T> * x.square()));
    if (mode == grad_mode::overwrite)
      detail::array_map<T>(din + b, l) = t;
    else
      detail::array_map<T>(din + b, l) += t;
  });
}

/// SwiGLU (Llama's MLP): out = silu(gate) * up, silu(x) = x / (1 + exp(-x)).
template <class T>
void swiglu_forward(cpu_t, T* out, const T* gate, const T* up, std::size_t n) {
  // out, gate, up: (n)
  CAI_PARALLEL_FOR(n * 16)
  for (std::size_t i = 0; i < n; ++i) {
    const T g = gate[i];
    out[i] = g / (T(1) + std::exp(-g)) * up[i];
  }
}

template <class T>
void swiglu_backward(cpu_t, T* dgate, T* dup, const T* gate, const T* up, const T* dout, std::size_t n) {
  // dgate, dup, gate, up, dout: (n)
  CAI_PARALLEL_FOR(n * 16)
  for (std::size_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + std::exp(-g));
    const T silu = g * sig;
    if (dup != nullptr) dup[i] += dout[i] * silu;
    if (dgate != nullptr) dgate[i] += dout[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}

// ---------------------------------------------------------------------------------------------------
// Rotary position embedding

namespace detail {
template <class T>
void rope_apply(T* x, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D, double theta,
                rope_style style, T sign) {
  const std::size_t half = D / 2;
  std::vector<double> freq(half);
  for (std::size_t i = 0; i < half; ++i) freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  CAI_PARALLEL_FOR(BT * H * D * 8)
  for (std::size_t bt = 0; bt < BT; ++bt) {
    const double p = positions[bt];
    for (std::size_t i = 0; i < half; ++i) {
      const T c = static_cast<T>(std::cos(p * freq[i]));
      const T sn = sign * static_cast<T>(std::sin(p * freq[i]));
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
}
}  // namespace detail

/// Rotates `x` in place by the angles of each token's position: x holds (B*T) rows of H heads of size D.
/// @pre D is even.
template <class T>
void rope_forward(cpu_t, T* x, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                  double theta, rope_style style = rope_style::half) {
  // x: (BT, H, D)   positions: (BT)
  if (D % 2 != 0) throw config_error("rope_forward: the head size " + std::to_string(D) + " is odd");
  detail::rope_apply(x, positions, BT, H, D, theta, style, T(1));
}

/// The backward pass of RoPE: the rotation is orthogonal, so the gradient is rotated back, in place.
template <class T>
void rope_backward(cpu_t, T* dx, const std::int32_t* positions, std::size_t BT, std::size_t H, std::size_t D,
                   double theta, rope_style style = rope_style::half) {
  // dx: (BT, H, D)   positions: (BT)
  if (D % 2 != 0) throw config_error("rope_backward: the head size " + std::to_string(D) + " is odd");
  detail::rope_apply(dx, positions, BT, H, D, theta, style, T(-1));
}

// ---------------------------------------------------------------------------------------------------
// Causal grouped-query attention

namespace detail {
/// Query rows per block of the causal attention products: block r0..r0+rows only needs keys 0..r0+rows.
inline constexpr std::size_t attention_block = 64;

/// attention_forward over q, k, v rows `ldq`, `ldk`, `ldv` elements apart and out rows `ldo` apart
/// (so q, k and v can be read in place from a fused projection).
template <class T>
void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, std::size_t B, std::size_t Tn,
                       std::size_t H, std::size_t KVH, std::size_t D, std::size_t ldo, std::size_t ldq,
                       std::size_t ldk, std::size_t ldv) {
  // out: (B, T, ldo)   att: (B, H, T, T)   q: (B, T, ldq)   k: (B, T, ldk)   v: (B, T, ldv)
  const std::size_t group = H / KVH;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  const Eigen::Index t_ = index(Tn), d_ = index(D), bs = index(attention_block);
  CAI_PARALLEL_FOR(B * H * Tn * Tn * D)
  for (std::size_t bh = 0; bh < B * H; ++bh) {
    const std::size_t b = bh / H, h = bh % H, kh = h / group;
    const_strided_map<T> Q(q + b * Tn * ldq + h * D, t_, d_, Eigen::OuterStride<>(index(ldq)));
    const_strided_map<T> K(k + b * Tn * ldk + kh * D, t_, d_, Eigen::OuterStride<>(index(ldk)));
    const_strided_map<T> V(v + b * Tn * ldv + kh * D, t_, d_, Eigen::OuterStride<>(index(ldv)));
    strided_map<T> O(out + b * Tn * ldo + h * D, t_, d_, Eigen::OuterStride<>(index(ldo)));
    matrix_map<T> A(att + bh * Tn * Tn, t_, t_);
    scratch<T> p(t_);
    for (Eigen::Index r0 = 0; r0 < t_; r0 += bs) {
      const Eigen::Index rows = std::min(bs, t_ - r0), e = r0 + rows;
      A.block(r0, 0, rows, e).noalias() = Q.middleRows(r0, rows) * K.topRows(e).transpose();
      for (Eigen::Index t = r0; t < e; ++t) {  // softmax of the scaled scores over keys 0..t
        auto a = A.row(t).head(t + 1).array();
        const T m = a.maxCoeff();
        p.head(t + 1) = ((a - m) * scale).exp();
        a = p.head(t + 1) / p.head(t + 1).sum();
        A.row(t).tail(t_ - t - 1).setZero();
      }
      O.middleRows(r0, rows).noalias() = A.block(r0, 0, rows, e) * V.topRows(e);
    }
  }
}

/// attention_backward with row strides as in attention_forward: dq rows ldq apart, dk ldk, dv ldv.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* att,
                        std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D,
                        std::size_t ldo, std::size_t ldq, std::size_t ldk, std::size_t ldv) {
  const std::size_t group = H / KVH;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  const Eigen::Index t_ = index(Tn), d_ = index(D), bs = index(attention_block);
  // one (sequence, key/value head) per iteration: it alone writes that head's dk and dv, and the dq of
  // the query heads that share it
  CAI_PARALLEL_FOR(B * H * Tn * Tn * D)
  for (std::size_t bk = 0; bk < B * KVH; ++bk) {
    const std::size_t b = bk / KVH, kh = bk % KVH;
    const_strided_map<T> K(k + b * Tn * ldk + kh * D, t_, d_, Eigen::OuterStride<>(index(ldk)));
    const_strided_map<T> V(v + b * Tn * ldv + kh * D, t_, d_, Eigen::OuterStride<>(index(ldv)));
    strided_map<T> dK(dk + b * Tn * ldk + kh * D, t_, d_, Eigen::OuterStride<>(index(ldk)));
    strided_map<T> dV(dv + b * Tn * ldv + kh * D, t_, d_, Eigen::OuterStride<>(index(ldv)));
    row_matrix<T> dS(std::min(bs, t_), t_);  // d(scores) of one block of query rows
    scratch<T> p(t_);
    for (std::size_t h = kh * group; h < (kh + 1) * group; ++h) {
      const_strided_map<T> Q(q + b * Tn * ldq + h * D, t_, d_, Eigen::OuterStride<>(index(ldq)));
      const_strided_map<T> G(dout + b * Tn * ldo + h * D, t_, d_, Eigen::OuterStride<>(index(ldo)));
      strided_map<T> dQ(dq + b * Tn * ldq + h * D, t_, d_, Eigen::OuterStride<>(index(ldq)));
      const_matrix_map<T> A(att + (b * H + h) * Tn * Tn, t_, t_);
      for (Eigen::Index r0 = 0; r0 < t_; r0 += bs) {
        const Eigen::Index rows = std::min(bs, t_ - r0), e = r0 + rows;
        const auto Ab = A.block(r0, 0, rows, e);
        auto dSb = dS.topLeftCorner(rows, e);
        // through the weighted sum of values
        dSb.noalias() = G.middleRows(r0, rows) * V.topRows(e).transpose();
        dV.topRows(e).noalias() += Ab.transpose() * G.middleRows(r0, rows);
        // through the softmax: dscore = a * (datt - sum(datt * a)) * scale
        for (Eigen::Index i = 0; i < rows; ++i) {
          const Eigen::Index len = r0 + i + 1;
          const auto a = Ab.row(i).head(len).array();
          auto da = dSb.row(i).head(len).array();
          p.head(len) = a * da;
          const T dot = p.head(len).sum();
          p.head(len) = a * (da - dot) * scale;
          da = p.head(len);
          dSb.row(i).tail(e - len).setZero();
        }
        // through the scaled dot products
        dQ.middleRows(r0, rows).noalias() += dSb * K.topRows(e);
        dK.topRows(e).noalias() += dSb.transpose() * Q.middleRows(r0, rows);
      }
    }
  }
}
}  // namespace detail

/// How many values of T `attention_forward` saves in `att` for the backward: the (B, H, T, T)
/// probabilities. (The CUDA backend saves less where it runs attention in tiles; code generic over the
/// backend sizes `att` with this function.)
template <class T>
[[nodiscard]] std::size_t attention_saved_size(cpu_t, std::size_t B, std::size_t Tn, std::size_t H,
                                               std::size_t /*D*/) {
  return B * H * Tn * Tn;
}

/// out = softmax(q k^T / sqrt(D) + causal mask) v, per sequence and head; KVH key/value heads are shared
/// by H / KVH query heads each (grouped-query attention; KVH == H is multi-head attention).
/// Saves the attention probabilities for the backward pass. The products run through Eigen, one block of
/// query rows at a time over the keys the causal mask lets it see.
/// @pre H % KVH == 0.
template <class T>
void attention_forward(cpu_t, T* out, T* att, const T* q, const T* k, const T* v, std::size_t B, std::size_t Tn,
                       std::size_t H, std::size_t KVH, std::size_t D) {
  // out: (B, T, H, D)   att: (B, H, T, T)   q: (B, T, H, D)   k, v: (B, T, KVH, D)
  if (KVH == 0 || H % KVH != 0)
    throw config_error("attention_forward: " + std::to_string(H) + " query heads cannot share " +
                       std::to_string(KVH) + " key/value heads");
  detail::attention_forward(out, att, q, k, v, B, Tn, H, KVH, D, H * D, H * D, KVH * D, KVH * D);
}

template <class T>
void attention_backward(cpu_t, T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* att,
                        std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D) {
  // dq: (B, T, H, D)   dk, dv: (B, T, KVH, D)   dout, q: (B, T, H, D)   k, v: (B, T, KVH, D)   att: (B, H, T, T)
  detail::attention_backward(dq, dk, dv, dout, q, k, v, att, B, Tn, H, KVH, D, H * D, H * D, KVH * D, KVH * D);
}

// attention_strides (row strides of q, k, v and out) is in backend/options.hpp, shared with cuda_t.

/// attention_forward over rows `strides` apart: out (B, T, strides.out), q (B, T, strides.q), k and v
/// likewise; head h of a row is at offset h * D.
template <class T>
void attention_forward(cpu_t, T* out, T* att, const T* q, const T* k, const T* v, std::size_t B, std::size_t Tn,
                       std::size_t H, std::size_t KVH, std::size_t D, attention_strides strides) {
  if (KVH == 0 || H % KVH != 0)
    throw config_error("attention_forward: " + std::to_string(H) + " query heads cannot share " +
                       std::to_string(KVH) + " key/value heads");
  detail::attention_forward(out, att, q, k, v, B, Tn, H, KVH, D, strides.out, strides.q, strides.k, strides.v);
}

/// attention_backward over rows `strides` apart: dout as out, dq as q, dk as k, dv as v.
template <class T>
void attention_backward(cpu_t, T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v, const T* att,
                        std::size_t B, std::size_t Tn, std::size_t H, std::size_t KVH, std::size_t D,
                        attention_strides strides) {
  detail::attention_backward(dq, dk, dv, dout, q, k, v, att, B, Tn, H, KVH, D, strides.out, strides.q, strides.k,
                             strides.v);
}

#if defined(__AVX512F__)
namespace detail {
/// attention_cached_forward for one query row of float (H heads of size D) over `len` cached positions
/// of one slot, reading the slot's keys and then its values front to back once (rows of KVH * D): the
/// scores of every head per key row, 16 (position, head) dot products per `reduce16`; the softmax of each
/// head in aligned scratch; then out[h] += p[h, t] v[t, h / group] over t in order.
inline void attention_cached_row_avx512(float* out, const float* q, const float* kslot, const float* vslot,
                                        std::size_t len, std::size_t H, std::size_t KVH, std::size_t D,
                                        float* scores, std::size_t ld, float* acc) {
  // out, q: (H, D)   kslot, vslot: (len, KVH, D)   scores: (H, ld), ld >= len, a multiple of 16
  // acc: (H * D), aligned scratch
  const std::size_t group = H / KVH, W = KVH * D, chunks = (D + 15) / 16, tail = D % 16;
  const __mmask16 last = tail == 0 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << tail) - 1u);
  __m512 part[16];
  int filled = 0;
  std::size_t at_h[16], at_t[16];
  alignas(64) float sums[16];
  auto flush = [&]() {
    for (int i = filled; i < 16; ++i) part[i] = _mm512_setzero_ps();
    _mm512_store_ps(sums, reduce16(part));
    for (int j = 0; j < 16; ++j) {
      const int v = j / 4 + 4 * (j % 4);
      if (v < filled) scores[at_h[v] * ld + at_t[v]] = sums[j];
    }
    filled = 0;
  };
  for (std::size_t t = 0; t < len; ++t) {
    const float* krow = kslot + t * W;
    // four rows ahead: the cache of every layer does not stay in the processor's caches between steps
    for (std::size_t c = 0; c < W; c += 16) _mm_prefetch(reinterpret_cast<const char*>(krow + 4 * W + c), _MM_HINT_T0);
    for (std::size_t h = 0; h < H; ++h) {
      const float* kh = krow + (h / group) * D;
      const float* qh = q + h * D;
      __m512 a = _mm512_setzero_ps();
      for (std::size_t c = 0; c < chunks; ++c) {
        const __mmask16 m = c + 1 == chunks ? last : static_cast<__mmask16>(0xFFFF);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qh + c * 16), _mm512_maskz_loadu_ps(m, kh + c * 16), a);
      }
      part[filled] = a;
      at_h[filled] = h, at_t[filled] = t;
      if (++filled == 16) flush();
    }
  }
  if (filled > 0) flush();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const auto n = index(len);
  for (std::size_t h = 0; h < H; ++h) {  // rows of `scores` are aligned: the same bits wherever they lie
    Eigen::Map<Eigen::ArrayXf, Eigen::Aligned64> sh(scores + h * ld, n);
    const float m = sh.maxCoeff();
    sh = ((sh - m) * scale).exp();
    sh /= sh.sum();
  }
  std::fill_n(acc, H * D, 0.0f);
  for (std::size_t t = 0; t < len; ++t) {
    const float* vrow = vslot + t * W;
    for (std::size_t c = 0; c < W; c += 16) _mm_prefetch(reinterpret_cast<const char*>(vrow + 4 * W + c), _MM_HINT_T0);
    for (std::size_t h = 0; h < H; ++h) {
      const float* vh = vrow + (h / group) * D;
      const __m512 p = _mm512_set1_ps(scores[h * ld + t]);
      float* ah = acc + h * D;
      for (std::size_t c = 0; c < chunks; ++c) {
        const __mmask16 m = c + 1 == chunks ? last : static_cast<__mmask16>(0xFFFF);
        _mm512_mask_storeu_ps(ah + c * 16, m,
                              _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(m, vh + c * 16), _mm512_maskz_loadu_ps(m, ah + c * 16)));
      }
    }
  }
  std::copy_n(acc, H * D, out);
}
}  // namespace detail
#endif

/// Attention of new query rows over a key/value cache (KV-cached decoding): row n belongs to the
/// sequence in cache slot `slots[n]` at absolute position `positions[n]`, and attends to that slot's
/// positions 0..positions[n] (its own key and value must already be in the cache).
template <class T>
void attention_cached_forward(cpu_t, T* out, const T* q, const T* kcache, const T* vcache, const std::int32_t* slots,
                              const std::int32_t* positions, std::size_t N, std::size_t max_len, std::size_t H,
                              std::size_t KVH, std::size_t D) {
  // out, q: (N, H, D)   kcache, vcache: (slots, max_len, KVH, D)   slots, positions: (N)
  const std::size_t group = H / KVH;
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  for (std::size_t n = 0; n < N; ++n)  // checked before the parallel loop, which must not throw
    if (static_cast<std::size_t>(positions[n]) >= max_len)
      throw config_error("attention_cached_forward: position " + std::to_string(positions[n]) +
                         " is beyond the cache length " + std::to_string(max_len));
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const std::size_t ld = (max_len + 15) / 16 * 16;
    CAI_PARALLEL_FOR(N * H * max_len * D)
    for (std::size_t n = 0; n < N; ++n) {
      detail::scratch<float> scores(detail::index(H * ld)), acc(detail::index(H * D));
      const std::size_t slot = static_cast<std::size_t>(slots[n]);
      detail::attention_cached_row_avx512(out + n * H * D, q + n * H * D, kcache + slot * max_len * KVH * D,
                                          vcache + slot * max_len * KVH * D, static_cast<std::size_t>(positions[n]) + 1,
                                          H, KVH, D, scores.data(), ld, acc.data());
    }
    return;
  }
#endif
  const auto d_ = detail::index(D);
  CAI_PARALLEL_FOR(N * H * max_len * D)
  for (std::size_t n = 0; n < N; ++n) {
    Eigen::Matrix<T, Eigen::Dynamic, 1> a(detail::index(max_len));
    const std::size_t slot = static_cast<std::size_t>(slots[n]);
    const auto len = detail::index(static_cast<std::size_t>(positions[n]) + 1);
    const T* kbase = kcache + slot * max_len * KVH * D;
    const T* vbase = vcache + slot * max_len * KVH * D;
    for (std::size_t h = 0; h < H; ++h) {
      const std::size_t kh = h / group;
      detail::const_strided_map<T> K(kbase + kh * D, len, d_, Eigen::OuterStride<>(detail::index(KVH * D)));
      detail::const_strided_map<T> V(vbase + kh * D, len, d_, Eigen::OuterStride<>(detail::index(KVH * D)));
      detail::const_vector_map<T> qh(q + (n * H + h) * D, d_);
      detail::vector_map<T> o(out + (n * H + h) * D, d_);
      auto s = a.head(len);
      s.noalias() = K * qh;
      const T m = s.maxCoeff();
      s = ((s.array() - m) * scale).exp().matrix();
      s /= s.sum();
      o.noalias() = V.transpose() * s;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Softmax and cross-entropy

/// Row-wise softmax: out[n, :] = softmax(in[n, :]).
template <class T>
void softmax_forward(cpu_t, T* out, const T* in, std::size_t N, std::size_t V) {
  // out, in: (N, V)
  const auto v = detail::index(V);
  detail::for_row_blocks(N, N * V, [&](std::size_t n0, std::size_t n1) {
    detail::scratch<T> p(v);
    for (std::size_t n = n0; n < n1; ++n) {
      detail::const_array_map<T> x(in + n * V, v);
      p = (x - x.maxCoeff()).exp();
      detail::array_map<T>(out + n * V, v) = p / p.sum();
    }
  });
}

/// Token cross-entropy: losses[n] = logsumexp(logits[n, :]) - logits[n, targets[n]]; a target of -1 masks
/// the row (loss 0). Saves the log-sum-exp of each row for the backward pass.
/// @throws validation_error for a target outside [-1, V).
template <class T>
void crossentropy_forward(cpu_t, T* losses, T* lse, const T* logits, const std::int32_t* targets, std::size_t N,
                          std::size_t V) {
  // losses, lse: (N)   logits: (N, V)   targets: (N)
  for (std::size_t n = 0; n < N; ++n)  // checked before the parallel loop, which must not throw
    if (targets[n] < -1 || targets[n] >= static_cast<std::int32_t>(V))
      throw validation_error("crossentropy_forward: target " + std::to_string(targets[n]) + " at row " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V));
  const auto v = detail::index(V);
  detail::for_row_blocks(N, N * V, [&](std::size_t n0, std::size_t n1) {
    detail::scratch<T> p(v);
    for (std::size_t n = n0; n < n1; ++n) {
      detail::const_array_map<T> x(logits + n * V, v);
      const T m = x.maxCoeff();
      p = (x - m).exp();
      lse[n] = m + std::log(p.sum());
      const auto target = targets[n];
      losses[n] = target < 0 ? T(0) : lse[n] - x[target];
    }
  });
}

namespace detail {
template <class T>
void crossentropy_backward(T* dlogits, const T* dlosses, const T* logits, const T* lse, const std::int32_t* targets,
                           std::size_t N, std::size_t V, bool overwrite) {
  const auto v = index(V);
  for_row_blocks(N, N * V, [&](std::size_t n0, std::size_t n1) {
    scratch<T> p(v);
    for (std::size_t n = n0; n < n1; ++n) {
      array_map<T> g(dlogits + n * V, v);
      if (targets[n] < 0) {
        if (overwrite) g.setZero();
        continue;
      }
      p = (const_array_map<T>(logits + n * V, v) - lse[n]).exp() * dlosses[n];
      if (overwrite)
        g = p;
      else
        g += p;
      g[targets[n]] -= dlosses[n];
    }
  });
}
}  // namespace detail

/// dlogits[n, :] += dlosses[n] * (softmax(logits[n, :]) - onehot(targets[n])); masked rows get nothing
/// (with grad_mode::overwrite: dlogits = ..., masked rows zero).
template <class T>
void crossentropy_backward(cpu_t, T* dlogits, const T* dlosses, const T* logits, const T* lse,
                           const std::int32_t* targets, std::size_t N, std::size_t V,
                           grad_mode mode = grad_mode::accumulate) {
  // dlogits, logits: (N, V)   dlosses, lse: (N)   targets: (N)
  detail::crossentropy_backward(dlogits, dlosses, logits, lse, targets, N, V, mode == grad_mode::overwrite);
}

}  // namespace cai
