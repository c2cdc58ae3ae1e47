/// @file backend/cpu_q8.hpp
/// 8-bit weights for the CPU's decode steps: `q8_0_matrix` holds a (rows, cols) float matrix as blocks of
/// 32 signed bytes with one float scale each (llama.cpp's Q8_0 layout: w ≈ d · q, d = max |w| / 127), and
/// `matmul_forward_q8_0` multiplies a few float rows by it, quantising each input row the same way and
/// summing the byte products in 32-bit integers.
///
/// A decode step reads every weight once per token: at 1 byte and 1/8 of a scale per weight instead of 4,
/// the step streams 3.8 times less memory. With AVX-512 VNNI (`-march=native` on a CPU that has it) a
/// 64-byte slice of a weight row takes one `vpdpbusd` per input row; elsewhere a plain loop.
///
/// Accuracy: each weight and each input value is off by at most half its block's step (d / 2); the
/// relative error of a product is about 1e-3 to 1e-2 of the magnitude of its terms. Results are the same on
/// any number of threads (each output is summed in a fixed order by one thread).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/error.hpp"

namespace cai {

/// A (rows, cols) matrix in blocks of 32 int8 values with a float scale each; cols is a multiple of 32.
struct q8_0_matrix {
  static constexpr std::size_t block = 32;
  std::size_t rows = 0, cols = 0;
  std::vector<std::int8_t> q;  ///< (rows, cols)
  std::vector<float> d;        ///< (rows, cols / 32): the scale of each block

  /// Whether a matrix of `cols` columns can be held (cols a positive multiple of 32).
  [[nodiscard]] static constexpr bool fits(std::size_t cols) noexcept { return cols != 0 && cols % block == 0; }

  /// w ≈ d q with d = max |w| / 127 per block of 32 (round to nearest).
  /// @param w (rows, cols), row-major. @throws config_error when cols is not a multiple of 32.
  static q8_0_matrix quantize(const float* w, std::size_t rows, std::size_t cols) {
    q8_0_matrix m;
    m.assign(w, rows, cols);
    return m;
  }

  /// Replaces the contents by the quantised w (reusing the buffers when the shape is the same).
  /// @throws config_error when cols is not a multiple of 32.
  void assign(const float* w, std::size_t rows_, std::size_t cols_) {
    if (!fits(cols_))
      throw config_error("q8_0_matrix: " + std::to_string(cols_) + " columns is not a positive multiple of 32");
    rows = rows_, cols = cols_;
    q.resize(rows * cols);
    d.resize(rows * cols / block);
    const std::size_t blocks = rows * cols / block;
    std::int8_t* qp = q.data();
    float* dp = d.data();
    CAI_PARALLEL_FOR(rows * cols)
    for (std::size_t b = 0; b < blocks; ++b) dp[b] = quantize_block(w + b * block, qp + b * block);
  }

  /// The float value of element (r, c).
  [[nodiscard]] float at(std::size_t r, std::size_t c) const {
    return d[(r * cols + c) / block] * static_cast<float>(q[r * cols + c]);
  }

  /// Quantises 32 floats into q (to nearest, ties to even); returns the scale.
  static float quantize_block(const float* x, std::int8_t* q) {
#if defined(__AVX512F__)
    const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    const float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 s = _mm512_set1_ps(inv);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a, s))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16),
                     _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(b, s))));
    return d;
#else
    float amax = 0.0f;
    for (std::size_t i = 0; i < block; ++i) amax = std::max(amax, std::abs(x[i]));
    const float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (std::size_t i = 0; i < block; ++i) q[i] = static_cast<std::int8_t>(std::nearbyint(x[i] * inv));
    return d;
#endif
  }
};

namespace detail {

/// Σ over the blocks of one row: d_w[b] d_x[b] Σ_i q_w[b, i] q_x[b, i], block after block.
inline float q8_0_dot(const std::int8_t* qw, const float* dw, const std::int8_t* qx, const float* dx,
                      std::size_t blocks) {
  float sum = 0.0f;
  for (std::size_t b = 0; b < blocks; ++b) {
    std::int32_t s = 0;
    for (std::size_t i = 0; i < q8_0_matrix::block; ++i)
      s += static_cast<std::int32_t>(qw[b * 32 + i]) * static_cast<std::int32_t>(qx[b * 32 + i]);
    sum += dw[b] * dx[b] * static_cast<float>(s);
  }
  return sum;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define CAI_Q8_0_VNNI 1
/// out[r, o] for R input rows and one weight row: two blocks (64 bytes) per step. vpdpbusd multiplies
/// unsigned by signed bytes, so the weight's sign moves onto the input (|w| · (sign(w) x) = w x); each
/// 32-bit lane then holds a partial sum of one block, scaled by that block's d_w d_x in float.
template <int R>
void q8_0_rows_vnni(float* out, const std::int8_t* qx, const float* dx, const q8_0_matrix& w, const float* bias,
                    std::size_t OC, std::size_t o) {
  const std::size_t C = w.cols, blocks = C / 32;
  const std::int8_t* qw = w.q.data() + o * C;
  const float* dw = w.d.data() + o * blocks;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  std::size_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(qw + b * 32 + 1024), _MM_HINT_T0);
    const __m512i wv = _mm512_loadu_si512(qw + b * 32);
    const __m512i wabs = _mm512_abs_epi8(wv);
    const __mmask64 negative = _mm512_movepi8_mask(wv);
    for (int r = 0; r < R; ++r) {
      const std::int8_t* x = qx + static_cast<std::size_t>(r) * C + b * 32;
      const __m512i xv = _mm512_loadu_si512(x);
      const __m512i xs = _mm512_mask_sub_epi8(xv, negative, _mm512_setzero_si512(), xv);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wabs, xs);
      const float* dxr = dx + static_cast<std::size_t>(r) * blocks;
      const __m512 scale = _mm512_insertf32x8(_mm512_set1_ps(dw[b] * dxr[b]), _mm256_set1_ps(dw[b + 1] * dxr[b + 1]), 1);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float sum = _mm512_reduce_add_ps(acc[r]);
    if (b < blocks)  // an odd last block
      sum += q8_0_dot(qw + b * 32, dw + b, qx + static_cast<std::size_t>(r) * C + b * 32,
                      dx + static_cast<std::size_t>(r) * blocks + b, 1);
    out[static_cast<std::size_t>(r) * OC + o] = sum + (bias != nullptr ? bias[o] : 0.0f);
  }
}
#else
#define CAI_Q8_0_VNNI 0
#endif

}  // namespace detail

/// out = in @ w^T + bias for a few rows (a decode step), with w in 8-bit blocks and each row of `in`
/// quantised the same way.
/// @param out (N, w.rows)   @param in (N, w.cols)   @param bias (w.rows) or null.
inline void matmul_forward_q8_0(cpu_t, float* out, const float* in, const q8_0_matrix& w, const float* bias,
                                std::size_t N) {
  // out: (N, OC)   in: (N, C)   w: (OC, C)   bias: (OC)
  const std::size_t C = w.cols, OC = w.rows, blocks = C / q8_0_matrix::block;
  if (N == 0 || OC == 0) return;
  thread_local std::vector<std::int8_t> qx;
  thread_local std::vector<float> dx;
  qx.resize(N * C);
  dx.resize(N * blocks);
  for (std::size_t i = 0; i < N * blocks; ++i) dx[i] = q8_0_matrix::quantize_block(in + i * 32, qx.data() + i * 32);
  const std::int8_t* qxp = qx.data();
  const float* dxp = dx.data();
  constexpr std::size_t chunk = 32;  // weight rows per parallel iteration
  const std::size_t chunks = (OC + chunk - 1) / chunk;
  CAI_PARALLEL_FOR(N * C * OC)
  for (std::size_t ch = 0; ch < chunks; ++ch) {
    const std::size_t o1 = std::min(OC, ch * chunk + chunk);
    for (std::size_t o = ch * chunk; o < o1; ++o) {
#if CAI_Q8_0_VNNI
      std::size_t n = 0;
      for (; n + 4 <= N; n += 4) detail::q8_0_rows_vnni<4>(out + n * OC, qxp + n * C, dxp + n * blocks, w, bias, OC, o);
      for (; n < N; ++n) detail::q8_0_rows_vnni<1>(out + n * OC, qxp + n * C, dxp + n * blocks, w, bias, OC, o);
#else
      for (std::size_t n = 0; n < N; ++n)
        out[n * OC + o] = detail::q8_0_dot(w.q.data() + o * C, w.d.data() + o * blocks, qxp + n * C,
                                           dxp + n * blocks, blocks) +
                          (bias != nullptr ? bias[o] : 0.0f);
#endif
    }
  }
}

}  // namespace cai
