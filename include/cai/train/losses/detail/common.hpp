/// @file train/losses/detail/common.hpp
/// Private helpers of the training losses (train/losses/*.hpp): numerically stable log-sigmoid and
/// sigmoid, the accumulation type, and the messages of the argument checks. Not part of the public API.
#pragma once

#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <type_traits>

#include "cai/error.hpp"

namespace cai::detail {

/// The type the scalar losses compute and accumulate in: at least double, whatever `T` is, so that the
/// differences of sequence log-probabilities (DPO's h, PPO's ratio) lose nothing for `float` inputs.
template <class T>
using loss_accum_t = std::common_type_t<T, double>;

/// softplus(x) = log(1 + exp(x)), without overflow for large x nor loss of precision for very negative x.
template <class A>
[[nodiscard]] inline A softplus(A x) {
  return (x > A(0) ? x : A(0)) + std::log1p(std::exp(-std::abs(x)));
}

/// log σ(x) = −softplus(−x).
template <class A>
[[nodiscard]] inline A log_sigmoid(A x) {
  return -softplus(-x);
}

/// σ(x) = 1 / (1 + exp(−x)), evaluated on the side that cannot overflow.
template <class A>
[[nodiscard]] inline A sigmoid(A x) {
  if (x >= A(0)) return A(1) / (A(1) + std::exp(-x));
  const A e = std::exp(x);
  return e / (A(1) + e);
}

/// Formats a number for an error message (shortest round-trip form is not needed, 17 digits is).
template <class A>
[[nodiscard]] inline std::string loss_number(A value) {
  std::ostringstream out;
  out.precision(17);
  out << static_cast<double>(value);
  return out.str();
}

/// Throws config_error("<function>: <what>") when `bad` holds.
inline void loss_require(bool ok, const char* function, const std::string& what) {
  if (!ok) throw config_error(std::string(function) + ": " + what);
}

/// Throws config_error when n is 0 (a mean over nothing).
inline void loss_require_nonempty(std::size_t n, const char* function, const char* what) {
  loss_require(n != 0, function, std::string(what) + " is 0; the loss is a mean and needs at least one element");
}

/// Σ mask, checked to be positive (TRL's masked_mean divides by it).
template <class T>
[[nodiscard]] loss_accum_t<T> loss_mask_sum(const T* mask, std::size_t N, const char* function) {
  loss_accum_t<T> s = 0;
  for (std::size_t i = 0; i < N; ++i) s += static_cast<loss_accum_t<T>>(mask[i]);
  loss_require(s > 0, function,
               "the mask selects no token (sum of mask = " + loss_number(s) + " over " + std::to_string(N) +
                   " tokens); a masked mean needs at least one token with mask 1");
  return s;
}

}  // namespace cai::detail
