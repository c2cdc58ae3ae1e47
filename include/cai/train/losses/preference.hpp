/// @file train/losses/preference.hpp
/// The Bradley-Terry preference-model loss with soft targets, as a forward/backward pair: the loss with
/// which Constitutional AI trains its preference model on AI feedback (Bai et al. 2022, arXiv:2212.08073,
/// which uses the feedback model's normalised probabilities as soft targets), and the reward-model loss of
/// Ouyang et al. 2022 (arXiv:2203.02155) and of TRL's RewardTrainer when the targets are hard.
///
/// For n pairs of scalar rewards (a_i, b_i), the probability p_i that a_i's response is the preferred one,
/// and a margin m (usually ≥ 0; Touvron et al. 2023, TRL's `margin` column):
///
///     loss = (1/n) Σ_i −[ p_i log σ(a_i − b_i − m) + (1 − p_i) log σ(b_i − a_i − m) ]
///
/// The margin applies symmetrically: whichever response is preferred must beat the other by m. So p = 1
/// gives TRL RewardTrainer's −log σ(r_chosen − r_rejected − margin) exactly, p = 0 gives the same with
/// the roles swapped, and swapping (a, b) together with p ↔ 1 − p leaves the loss unchanged; with p = ½
/// and any m the minimum is at a = b. (The other reading, a binary cross-entropy on the shifted logit
/// a − b − m, would tilt soft targets towards a: at p = ½ its minimum is at a − b = m.)
/// Every log σ is evaluated as −softplus(−x), stable for any difference of rewards; the arithmetic is
/// done in double precision whatever T is.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "cai/backend/tags.hpp"
#include "cai/error.hpp"
#include "cai/train/losses/detail/common.hpp"

namespace cai {

namespace detail {
template <class T>
void preference_loss_check(const char* function, const T* p_a, std::size_t n, T margin) {
  loss_require_nonempty(n, function, "the number of pairs n");
  loss_require(std::isfinite(static_cast<double>(margin)), function,
               "margin = " + loss_number(margin) + " is not finite");
  for (std::size_t i = 0; i < n; ++i)
    if (!(p_a[i] >= T(0) && p_a[i] <= T(1)))  // also catches NaN
      throw validation_error(std::string(function) + ": p_a[" + std::to_string(i) + "] = " + loss_number(p_a[i]) +
                             " is not a probability in [0, 1]");
}
}  // namespace detail

/// Mean Bradley-Terry loss of n preference pairs with soft targets and a symmetric margin (see the file
/// comment for the formula and the reading of the margin).
/// @tparam T `float` or `double`.
/// @param reward_a (n) reward of the first response of each pair.
/// @param reward_b (n) reward of the second response.
/// @param p_a      (n) probability that the first response is preferred (1: a is chosen, 0: b is chosen).
/// @param n        number of pairs.
/// @param margin   m, by which the preferred reward should exceed the other (0: the plain Bradley-Terry loss).
/// @return the mean loss over the n pairs.
/// @throws config_error for n = 0 or a margin that is not finite; validation_error for p_a outside [0, 1].
template <class T>
[[nodiscard]] T preference_loss_forward(cpu_t, const T* reward_a, const T* reward_b, const T* p_a, std::size_t n,
                                        std::type_identity_t<T> margin = T(0)) {
  // reward_a, reward_b, p_a: (n)
  using A = detail::loss_accum_t<T>;
  detail::preference_loss_check("preference_loss_forward", p_a, n, margin);
  const A m = static_cast<A>(margin);
  A total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const A d = static_cast<A>(reward_a[i]) - static_cast<A>(reward_b[i]);
    const A p = static_cast<A>(p_a[i]);
    // −p log σ(d − m) − (1 − p) log σ(−d − m); a zero weight skips its term (0 · ∞ would be NaN)
    if (p != A(0)) total += p * detail::softplus(m - d);
    if (p != A(1)) total += (A(1) - p) * detail::softplus(d + m);
  }
  return static_cast<T>(total / static_cast<A>(n));
}

/// Gradient of dloss · preference_loss_forward(...) with respect to both rewards, accumulated:
/// with d_i = a_i − b_i and g_i = (dloss / n) (−p_i σ(m − d_i) + (1 − p_i) σ(d_i + m)),
/// dreward_a[i] += g_i and dreward_b[i] −= g_i.
/// @param dreward_a (n) accumulated gradient of reward_a (may be null to skip it).
/// @param dreward_b (n) accumulated gradient of reward_b (may be null to skip it).
/// @param dloss     gradient of the training objective with respect to the mean loss.
/// @return nothing; accumulates into `dreward_a` and `dreward_b`.
/// @throws as preference_loss_forward.
template <class T>
void preference_loss_backward(cpu_t, T* dreward_a, T* dreward_b, const T* reward_a, const T* reward_b, const T* p_a,
                              std::size_t n, std::type_identity_t<T> margin, std::type_identity_t<T> dloss = T(1)) {
  // dreward_a, dreward_b, reward_a, reward_b, p_a: (n)
  using A = detail::loss_accum_t<T>;
  detail::preference_loss_check("preference_loss_backward", p_a, n, margin);
  const A m = static_cast<A>(margin);
  const A scale = static_cast<A>(dloss) / static_cast<A>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const A d = static_cast<A>(reward_a[i]) - static_cast<A>(reward_b[i]);
    const A p = static_cast<A>(p_a[i]);
    const A g = scale * (-p * detail::sigmoid(m - d) + (A(1) - p) * detail::sigmoid(d + m));
    if (dreward_a != nullptr) dreward_a[i] += static_cast<T>(g);
    if (dreward_b != nullptr) dreward_b[i] -= static_cast<T>(g);
  }
}

}  // namespace cai
