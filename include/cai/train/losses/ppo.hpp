/// @file train/losses/ppo.hpp
/// Proximal policy optimisation (Schulman et al. 2017, arXiv:1707.06347) for language models, over the
/// tokens of a batch of responses, as TRL's PPOTrainer computes it: the clipped policy loss and the clipped
/// value loss (forward/backward pairs), the per-token KL penalty that shapes the reward (Ziegler et al.
/// 2019, arXiv:1909.08593; estimators from Schulman's note "Approximating KL divergence", 2020),
/// generalised advantage estimation (Schulman et al. 2016, arXiv:1506.02438) and TRL's masked whitening.
///
/// Token buffers are flat, (N), with a mask of 0/1 values of the same type: 1 for a response token that
/// counts, 0 for padding. Means are TRL's `masked_mean`, Σ mask·x / Σ mask. For token i, with
/// r_i = exp(logp_i − old_logp_i) and advantage A_i, clip range ε and value clip range ε_v:
///
///     policy loss  = masked_mean(max(−A r, −A clip(r, 1 − ε, 1 + ε)))
///     clip_fraction = masked_mean([−A clip(r, 1 − ε, 1 + ε) > −A r])
///     approx_kl     = masked_mean(½ (logp − old_logp)²)
///     value loss   = ½ masked_mean(max((v − R)², (clip(v, v_old − ε_v, v_old + ε_v) − R)²))
///
/// (TRL's approxkl is a plain mean over a padded batch whose padding has logp = old_logp; the masked mean
/// here is the same quantity per response token.) Gradients follow PyTorch's autograd exactly: `max` of two
/// equal values splits the gradient evenly and `clamp` passes it on its closed interval, so the gradient is
/// zero for a token whose clipped term is the larger. The scalar arithmetic is done in double precision
/// whatever T is.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "cai/backend/tags.hpp"
#include "cai/error.hpp"
#include "cai/train/losses/detail/common.hpp"

namespace cai {

/// What ppo_policy_loss_forward measures on a batch.
struct ppo_stats {
  double loss;           ///< The clipped policy loss (the value to minimise).
  double clip_fraction;  ///< Fraction of the masked tokens whose clipped term was the larger (TRL's clipfrac).
  double approx_kl;      ///< masked_mean(½ (logp − old_logp)²), TRL's approxkl.
};

namespace detail {
inline void ppo_check(const char* function, std::size_t N, double clip, const char* clip_name) {
  loss_require_nonempty(N, function, "the number of tokens N");
  loss_require(clip > 0.0 && std::isfinite(clip), function,
               std::string(clip_name) + " = " + loss_number(clip) + " must be a positive finite number");
}

/// d max(l1, l2) from the gradients of each side, as autograd's `maximum` (ties split evenly).
template <class A>
[[nodiscard]] A max_gradient(A l1, A l2, A g1, A g2) {
  if (l1 > l2) return g1;
  if (l2 > l1) return g2;
  return (g1 + g2) / A(2);
}
}  // namespace detail

/// PPO's clipped surrogate loss over N tokens (formulas in the file comment).
/// @tparam T `float` or `double`.
/// @param logp       (N) log-probability of each sampled token under the current policy.
/// @param old_logp   (N) the same under the policy that sampled the batch.
/// @param advantages (N) advantage of each token (usually whitened GAE advantages).
/// @param mask       (N) 1 for tokens that count, 0 for padding.
/// @param clip_range ε, TRL's `cliprange` (0.2 by default there).
/// @return the loss, the fraction of clipped tokens and the approximate KL to the sampling policy.
/// @throws config_error for N = 0, ε ≤ 0 or a mask with no token.
template <class T>
[[nodiscard]] ppo_stats ppo_policy_loss_forward(cpu_t, const T* logp, const T* old_logp, const T* advantages,
                                                const T* mask, std::size_t N, double clip_range) {
  // logp, old_logp, advantages, mask: (N)
  using A = detail::loss_accum_t<T>;
  constexpr const char* function = "ppo_policy_loss_forward";
  detail::ppo_check(function, N, clip_range, "clip_range");
  const A total_mask = detail::loss_mask_sum(mask, N, function);
  const A lo = A(1) - static_cast<A>(clip_range), hi = A(1) + static_cast<A>(clip_range);
  A loss = 0, clipped = 0, kl = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const A m = static_cast<A>(mask[i]);
    if (m == A(0)) continue;
    const A diff = static_cast<A>(logp[i]) - static_cast<A>(old_logp[i]);
    const A ratio = std::exp(diff), adv = static_cast<A>(advantages[i]);
    const A l1 = -adv * ratio, l2 = -adv * std::clamp(ratio, lo, hi);
    loss += m * (l1 > l2 ? l1 : l2);
    if (l2 > l1) clipped += m;
    kl += m * A(0.5) * diff * diff;
  }
  return {static_cast<double>(loss / total_mask), static_cast<double>(clipped / total_mask),
          static_cast<double>(kl / total_mask)};
}

/// Gradient of dloss · (policy loss) with respect to logp, accumulated: for an unmasked token,
/// dlogp[i] += dloss · mask_i / Σ mask · (−A_i r_i) where the unclipped term is the larger, 0 where the
/// clipped term is (r outside [1 − ε, 1 + ε] and the clip binding), half of it on an exact tie outside.
/// @param dlogp (N) accumulated gradient of logp.
/// @param dloss gradient of the training objective with respect to the loss.
/// @return nothing; accumulates into `dlogp`.
/// @throws as ppo_policy_loss_forward.
template <class T>
void ppo_policy_loss_backward(cpu_t, T* dlogp, const T* logp, const T* old_logp, const T* advantages, const T* mask,
                              std::size_t N, double clip_range, std::type_identity_t<T> dloss = T(1)) {
  // dlogp, logp, old_logp, advantages, mask: (N)
  using A = detail::loss_accum_t<T>;
  constexpr const char* function = "ppo_policy_loss_backward";
  detail::ppo_check(function, N, clip_range, "clip_range");
  const A scale = static_cast<A>(dloss) / detail::loss_mask_sum(mask, N, function);
  const A lo = A(1) - static_cast<A>(clip_range), hi = A(1) + static_cast<A>(clip_range);
  for (std::size_t i = 0; i < N; ++i) {
    const A m = static_cast<A>(mask[i]);
    if (m == A(0)) continue;
    const A ratio = std::exp(static_cast<A>(logp[i]) - static_cast<A>(old_logp[i]));
    const A adv = static_cast<A>(advantages[i]);
    const A l1 = -adv * ratio, l2 = -adv * std::clamp(ratio, lo, hi);
    const A g1 = -adv * ratio;                              // d l1 / d logp
    const A g2 = (ratio >= lo && ratio <= hi) ? g1 : A(0);  // clamp passes the gradient inside only
    dlogp[i] += static_cast<T>(scale * m * detail::max_gradient(l1, l2, g1, g2));
  }
}

/// PPO's clipped value loss: ½ masked_mean(max((v − R)², (clip(v, v_old − ε_v, v_old + ε_v) − R)²)).
/// @param values           (N) the value head's current predictions v.
/// @param old_values       (N) its predictions when the batch was sampled, v_old.
/// @param returns          (N) the regression targets R (GAE returns).
/// @param mask             (N) 1 for tokens that count, 0 for padding.
/// @param clip_range_value ε_v, TRL's `cliprange_value` (0.2 by default there).
/// @return the loss.
/// @throws config_error for N = 0, ε_v ≤ 0 or a mask with no token.
template <class T>
[[nodiscard]] T ppo_value_loss_forward(cpu_t, const T* values, const T* old_values, const T* returns, const T* mask,
                                       std::size_t N, double clip_range_value) {
  // values, old_values, returns, mask: (N)
  using A = detail::loss_accum_t<T>;
  constexpr const char* function = "ppo_value_loss_forward";
  detail::ppo_check(function, N, clip_range_value, "clip_range_value");
  const A total_mask = detail::loss_mask_sum(mask, N, function);
  const A eps = static_cast<A>(clip_range_value);
  A loss = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const A m = static_cast<A>(mask[i]);
    if (m == A(0)) continue;
    const A v = static_cast<A>(values[i]), old = static_cast<A>(old_values[i]), R = static_cast<A>(returns[i]);
    const A vc = std::clamp(v, old - eps, old + eps);
    const A l1 = (v - R) * (v - R), l2 = (vc - R) * (vc - R);
    loss += m * (l1 > l2 ? l1 : l2);
  }
  return static_cast<T>(A(0.5) * loss / total_mask);
}

/// Gradient of dloss · ppo_value_loss_forward(...) with respect to the values, accumulated:
/// dvalues[i] += dloss · mask_i / Σ mask · (v_i − R_i) where the unclipped term is the larger or v is inside
/// the clip interval, 0 where the clipped term is the larger.
/// @param dvalues (N) accumulated gradient of values.
/// @param dloss   gradient of the training objective with respect to the loss.
/// @return nothing; accumulates into `dvalues`.
/// @throws as ppo_value_loss_forward.
template <class T>
void ppo_value_loss_backward(cpu_t, T* dvalues, const T* values, const T* old_values, const T* returns, const T* mask,
                             std::size_t N, double clip_range_value, std::type_identity_t<T> dloss = T(1)) {
  // dvalues, values, old_values, returns, mask: (N)
  using A = detail::loss_accum_t<T>;
  constexpr const char* function = "ppo_value_loss_backward";
  detail::ppo_check(function, N, clip_range_value, "clip_range_value");
  const A scale = A(0.5) * static_cast<A>(dloss) / detail::loss_mask_sum(mask, N, function);
  const A eps = static_cast<A>(clip_range_value);
  for (std::size_t i = 0; i < N; ++i) {
    const A m = static_cast<A>(mask[i]);
    if (m == A(0)) continue;
    const A v = static_cast<A>(values[i]), old = static_cast<A>(old_values[i]), R = static_cast<A>(returns[i]);
    const A vc = std::clamp(v, old - eps, old + eps);
    const A l1 = (v - R) * (v - R), l2 = (vc - R) * (vc - R);
    const A g1 = A(2) * (v - R);
    const A g2 = (v >= old - eps && v <= old + eps) ? A(2) * (vc - R) : A(0);
    dvalues[i] += static_cast<T>(scale * m * detail::max_gradient(l1, l2, g1, g2));
  }
}

/// Which estimator of KL(π ‖ π_ref) kl_penalty computes per sampled token (TRL's `kl_estimator`).
enum class kl_estimator {
  k1,  ///< logp − ref_logp: unbiased, high variance, can be negative.
  k3,  ///< exp(ref_logp − logp) − (ref_logp − logp) − 1: unbiased, lower variance, never negative.
};

/// Per-token KL penalty of the sampled tokens against the reference model, the term −β·kl that PPO for
/// language models adds to each token's reward (Ziegler et al. 2019; TRL's PPOTrainer). With
/// logr = ref_logp − logp: k1 = −logr, k3 = (exp(logr) − 1) − logr (Schulman 2020, "Approximating KL
/// divergence"). No gradient: it is part of the reward.
/// @param kl       (N) output.
/// @param logp     (N) log-probability of each sampled token under the policy that sampled it.
/// @param ref_logp (N) the same under the reference model.
/// @param e        the estimator.
/// @return nothing; writes `kl`.
/// @throws config_error for an estimator that is not a kl_estimator value.
template <class T>
void kl_penalty(cpu_t, T* kl, const T* logp, const T* ref_logp, std::size_t N, kl_estimator e) {
  // kl, logp, ref_logp: (N)
  using A = detail::loss_accum_t<T>;
  detail::loss_require(e == kl_estimator::k1 || e == kl_estimator::k3, "kl_penalty",
                       "estimator = " + std::to_string(static_cast<int>(e)) + " is not a kl_estimator (k1 or k3)");
  for (std::size_t i = 0; i < N; ++i) {
    const A logr = static_cast<A>(ref_logp[i]) - static_cast<A>(logp[i]);
    kl[i] = static_cast<T>(e == kl_estimator::k1 ? -logr : std::expm1(logr) - logr);
  }
}

/// Generalised advantage estimation over one sequence of Tn tokens (Schulman et al. 2016), TRL's loop:
/// δ_t = r_t + γ V_{t+1} − V_t with V_Tn = 0 (the value after the last token), A_t = δ_t + γλ A_{t+1},
/// returns_t = A_t + V_t. With γ = λ = 1, A_t is the reward-to-go minus V_t. An empty sequence (Tn = 0)
/// writes nothing.
/// @param advantages (Tn) output advantages A.
/// @param returns    (Tn) output returns, the value head's regression targets.
/// @param rewards    (Tn) per-token rewards (the score on the last token, minus β·kl on every token).
/// @param values     (Tn) the value head's predictions.
/// @param gamma      discount γ in [0, 1] (TRL's default 1).
/// @param lambda     GAE's λ in [0, 1] (TRL's `lam`, 0.95 by default).
/// @return nothing; writes `advantages` and `returns`.
/// @throws config_error for γ or λ outside [0, 1].
template <class T>
void gae_advantages(cpu_t, T* advantages, T* returns, const T* rewards, const T* values, std::size_t Tn, double gamma,
                    double lambda) {
  // advantages, returns, rewards, values: (Tn)
  using A = detail::loss_accum_t<T>;
  detail::loss_require(gamma >= 0.0 && gamma <= 1.0, "gae_advantages",
                       "gamma = " + detail::loss_number(gamma) + " must be in [0, 1]");
  detail::loss_require(lambda >= 0.0 && lambda <= 1.0, "gae_advantages",
                       "lambda = " + detail::loss_number(lambda) + " must be in [0, 1]");
  const A g = static_cast<A>(gamma), gl = static_cast<A>(gamma) * static_cast<A>(lambda);
  A last = 0;
  for (std::size_t k = Tn; k-- > 0;) {
    const A next_value = k + 1 < Tn ? static_cast<A>(values[k + 1]) : A(0);
    const A delta = static_cast<A>(rewards[k]) + g * next_value - static_cast<A>(values[k]);
    last = delta + gl * last;
    advantages[k] = static_cast<T>(last);
    returns[k] = static_cast<T>(last + static_cast<A>(values[k]));
  }
}

/// Whitens x in place with the statistics of its masked entries, as TRL's `masked_whiten`:
/// x ← (x − μ) / sqrt(σ² + 1e-8), then + μ again unless shift_mean, where μ = masked_mean(x) and σ² the
/// masked variance with Bessel's correction (Σ mask / (Σ mask − 1)). Like TRL, every entry is transformed,
/// the masked-out ones included; zero them afterwards if they must stay zero.
/// @param x          (N) values, overwritten.
/// @param mask       (N) 1 for entries that count, 0 for padding.
/// @param shift_mean true: the result has mean 0; false: the mean is kept and only the scale changes.
/// @return nothing; overwrites `x`.
/// @throws config_error when Σ mask ≤ 1 (the unbiased variance needs two entries).
template <class T>
void whiten(cpu_t, T* x, const T* mask, std::size_t N, bool shift_mean = true) {
  // x, mask: (N)
  using A = detail::loss_accum_t<T>;
  A total = 0, sum = 0;
  for (std::size_t i = 0; i < N; ++i) {
    total += static_cast<A>(mask[i]);
    sum += static_cast<A>(mask[i]) * static_cast<A>(x[i]);
  }
  detail::loss_require(total > A(1), "whiten",
                       "the mask selects " + detail::loss_number(total) + " of " + std::to_string(N) +
                           " entries; the unbiased variance needs a mask sum above 1");
  const A mean = sum / total;
  A var = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const A c = static_cast<A>(x[i]) - mean;
    var += static_cast<A>(mask[i]) * c * c;
  }
  var = var / total * (total / (total - A(1)));
  const A rstd = A(1) / std::sqrt(var + A(1e-8));
  for (std::size_t i = 0; i < N; ++i) {
    A w = (static_cast<A>(x[i]) - mean) * rstd;
    if (!shift_mean) w += mean;
    x[i] = static_cast<T>(w);
  }
}

}  // namespace cai
