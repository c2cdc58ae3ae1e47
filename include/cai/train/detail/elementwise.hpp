/// @file train/detail/elementwise.hpp
/// Private helpers of the optimizers and of gradient clipping: the loop-splitting macro and a square
/// root over a buffer that always uses the CPU's vector instructions.
///
/// `CAI_DETAIL_TRAIN_PARALLEL_FOR(work)` follows `CAI_PARALLEL_FOR` of backend/cpu.hpp (OpenMP, static
/// schedule, only above 32768 elements of work) without pulling in Eigen and the kernels; the loops it
/// splits write disjoint outputs, so results do not depend on the number of threads.
///
/// `sqrt_into` exists because a plain `std::sqrt` loop is not vectorised by GCC or Clang under their
/// default `-fmath-errno` (the call may set `errno` for a negative input), which made the AdamW step two
/// to four times slower on one core. The SSE/AVX/NEON square roots are correctly rounded, like
/// `std::sqrt`, so the result is the same bit for bit whichever path runs. (AVX-512 is left out: GCC 12's
/// own intrinsics headers then warn with -Wmaybe-uninitialized, and the step is bound by memory anyway.)
#pragma once

#include <cmath>
#include <cstddef>

#if defined(__SSE2__) || defined(__AVX__)
#include <immintrin.h>
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#endif

#if defined(_OPENMP)
#define CAI_DETAIL_TRAIN_PRAGMA(x) _Pragma(#x)
#define CAI_DETAIL_TRAIN_PARALLEL_FOR(work) \
  CAI_DETAIL_TRAIN_PRAGMA(omp parallel for schedule(static) if ((work) > 32768))
#else
#define CAI_DETAIL_TRAIN_PARALLEL_FOR(work)
#endif

namespace cai::detail {

/// out[i] = sqrt(in[i]) for i < n, correctly rounded (the same values as `std::sqrt`).
inline void sqrt_into(float* out, const float* in, std::size_t n) {
  // out, in: (n)
  std::size_t i = 0;
#if defined(__AVX__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_sqrt_ps(_mm256_loadu_ps(in + i)));
#elif defined(__SSE2__)
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, _mm_sqrt_ps(_mm_loadu_ps(in + i)));
#elif defined(__ARM_NEON) && defined(__aarch64__)
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vsqrtq_f32(vld1q_f32(in + i)));
#endif
  for (; i < n; ++i) out[i] = std::sqrt(in[i]);
}

/// out[i] = sqrt(in[i]) for i < n, correctly rounded (the same values as `std::sqrt`).
inline void sqrt_into(double* out, const double* in, std::size_t n) {
  // out, in: (n)
  std::size_t i = 0;
#if defined(__AVX__)
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(out + i, _mm256_sqrt_pd(_mm256_loadu_pd(in + i)));
#elif defined(__SSE2__)
  for (; i + 2 <= n; i += 2) _mm_storeu_pd(out + i, _mm_sqrt_pd(_mm_loadu_pd(in + i)));
#elif defined(__ARM_NEON) && defined(__aarch64__)
  for (; i + 2 <= n; i += 2) vst1q_f64(out + i, vsqrtq_f64(vld1q_f64(in + i)));
#endif
  for (; i < n; ++i) out[i] = std::sqrt(in[i]);
}

}  // namespace cai::detail
