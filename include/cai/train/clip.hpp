/// @file train/clip.hpp
/// Gradient-norm clipping (Pascanu et al. 2013, "On the difficulty of training recurrent neural
/// networks", arXiv:1211.5063) with PyTorch's `torch.nn.utils.clip_grad_norm_` semantics, over a flat
/// gradient buffer: `global_norm` and `clip_grad_norm`.
///
/// With ‖g‖ the L2 norm of the whole gradient (all parameters in one buffer) and c the maximum norm:
///
///     k = c / (‖g‖ + 10⁻⁶);   g ← k g  if k < 1
///
/// so, as in PyTorch, a gradient is scaled when ‖g‖ > c − 10⁻⁶ and its norm afterwards is slightly below
/// c. The norm is accumulated in double (PyTorch accumulates in the gradient's type), in fixed chunks of
/// 4096 elements whose sums are added in order, so the result does not depend on the number of threads.
/// Unlike PyTorch (which then scales every gradient by NaN), a gradient that holds a NaN or an infinity is
/// left as it is and its non-finite norm returned: the caller decides (the trainer raises an error).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cai/error.hpp"
#include "cai/train/detail/elementwise.hpp"

namespace cai {

namespace detail {

/// Σ x[i]² for i < n in double, with eight independent partial sums (so the loop vectorises) added in a
/// fixed order.
template <class T>
double sum_of_squares(const T* x, std::size_t n) {
  // x: (n)
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t k = 0; k < 8; ++k) {
      const auto v = static_cast<double>(x[i + k]);
      lanes[k] += v * v;
    }
  for (; i < n; ++i) {
    const auto v = static_cast<double>(x[i]);
    lanes[i % 8] += v * v;
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

}  // namespace detail

/// The L2 norm of `gradient`, √(Σ gᵢ²), accumulated in double; the same value for any number of threads.
/// NaN if an element is NaN, +∞ if one is infinite (and none is NaN) or the sum overflows double.
/// @tparam T `float` or `double`.
template <class T>
  requires std::floating_point<T>
[[nodiscard]] double global_norm(std::span<const T> gradient) {
  constexpr std::size_t chunk = 4096;
  const std::size_t n = gradient.size();
  const std::size_t chunks = (n + chunk - 1) / chunk;
  std::vector<double> partial(chunks, 0.0);  // partial: (chunks)
  const T* g = gradient.data();              // g: (n)
  CAI_DETAIL_TRAIN_PARALLEL_FOR(n)
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t begin = c * chunk;
    partial[c] = detail::sum_of_squares(g + begin, std::min(chunk, n - begin));
  }
  double total = 0.0;
  for (const double p : partial) total += p;
  return std::sqrt(total);
}

/// The L2 norm of a writable `gradient` (the same as the overload for `std::span<const T>`), so that
/// `global_norm(std::span(vector))` works.
/// @tparam T `float` or `double`.
template <class T>
  requires std::floating_point<T> && (!std::is_const_v<T>)
[[nodiscard]] double global_norm(std::span<T> gradient) {
  return global_norm(std::span<const T>(gradient));
}

/// Scales `gradient` in place so that its L2 norm is at most `max_norm`, as PyTorch's
/// `torch.nn.utils.clip_grad_norm_` does (see the file comment): each element is multiplied by
/// `max_norm / (norm + 1e-6)` when that factor is below 1.
/// @tparam T `float` or `double`.
/// @param gradient the gradient of every parameter, in one flat buffer.
/// @param max_norm c, the largest norm allowed; >= 0 (+∞ disables clipping).
/// @return the norm before clipping. When it is not finite (the gradient holds NaN or ±∞) nothing is
///         modified: check the result with `std::isfinite` and skip the step or stop.
/// @throws cai::config_error if `max_norm` is negative or NaN.
template <class T>
  requires std::floating_point<T>
double clip_grad_norm(std::span<T> gradient, double max_norm) {
  if (!(max_norm >= 0.0)) {
    char buffer[32];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, max_norm).ptr;
    throw config_error("cai::clip_grad_norm: max_norm = " + std::string(buffer, end) +
                       " is invalid: it must be >= 0 (typical: 1.0), or +inf to disable clipping");
  }
  const double norm = global_norm(std::span<const T>(gradient));
  if (!std::isfinite(norm)) return norm;
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1.0) {
    const auto k = static_cast<T>(factor);
    const std::size_t n = gradient.size();
    T* g = gradient.data();  // g: (n)
    CAI_DETAIL_TRAIN_PARALLEL_FOR(n)
    for (std::size_t i = 0; i < n; ++i) g[i] *= k;
  }
  return norm;
}

}  // namespace cai
