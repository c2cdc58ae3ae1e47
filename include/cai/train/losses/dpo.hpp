/// @file train/losses/dpo.hpp
/// Direct preference optimisation losses, as a forward/backward pair over sequence log-probabilities:
/// DPO (Rafailov et al. 2023, arXiv:2305.18290), its conservative form with label smoothing ε (cDPO,
/// Mitchell 2023, "A note on DPO with noisy preferences"), and IPO (Azar et al. 2023, arXiv:2310.12036).
/// The formulas are those of TRL's `DPOTrainer.dpo_loss`, term for term. For n pairs, with the policy's
/// and the frozen reference's summed log-probabilities of the chosen and rejected responses,
///
///     h_i = (π_chosen,i − π_rejected,i) − (ref_chosen,i − ref_rejected,i)
///     sigmoid:  loss_i = −(1 − ε) log σ(β h_i) − ε log σ(−β h_i)
///     ipo:      loss_i = (h_i − 1/(2β))²
///     loss = (1/n) Σ_i loss_i
///
/// and the implicit rewards are β (π_chosen − ref_chosen) and β (π_rejected − ref_rejected). As in TRL,
/// IPO expects log-probabilities averaged over each response's tokens (TRL divides them by the length
/// before `dpo_loss`); that is the caller's choice of inputs, not done here. IPO ignores ε. Every log σ is
/// evaluated as −softplus(−x); the arithmetic is done in double precision whatever T is.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "cai/backend/tags.hpp"
#include "cai/error.hpp"
#include "cai/train/losses/detail/common.hpp"

namespace cai {

/// Which objective `dpo_loss_forward` computes (TRL's `loss_type`).
enum class dpo_variant {
  sigmoid,  ///< DPO's −log σ(β h), with cDPO's label smoothing (TRL "sigmoid").
  ipo,      ///< IPO's squared loss (h − 1/(2β))² (TRL "ipo").
};

/// Hyper-parameters of the DPO family; the same for every scalar type.
struct dpo_options {
  /// β: the strength of the KL regularisation towards the reference (IPO's τ). TRL's default, 0.1.
  double beta = 0.1;
  /// ε: the assumed probability that a preference label is flipped (cDPO), in [0, 0.5). Sigmoid only.
  double label_smoothing = 0.0;
  /// The objective.
  dpo_variant variant = dpo_variant::sigmoid;

  /// @throws config_error when β is not a positive finite number, ε is outside [0, 0.5) or the variant is
  /// not one of dpo_variant's values.
  void validate() const {
    if (!(beta > 0.0) || !std::isfinite(beta))
      throw config_error("dpo_options: beta = " + detail::loss_number(beta) + " must be a positive finite number");
    if (!(label_smoothing >= 0.0 && label_smoothing < 0.5))
      throw config_error("dpo_options: label_smoothing = " + detail::loss_number(label_smoothing) +
                         " must be in [0, 0.5)");
    if (variant != dpo_variant::sigmoid && variant != dpo_variant::ipo)
      throw config_error("dpo_options: variant = " + std::to_string(static_cast<int>(variant)) +
                         " is not a dpo_variant (sigmoid or ipo)");
  }
};

namespace detail {
inline void dpo_check(const char* function, std::size_t n, const dpo_options& opt) {
  loss_require_nonempty(n, function, "the number of pairs n");
  try {
    opt.validate();
  } catch (const config_error& e) {
    throw config_error(std::string(function) + ": " + e.what());
  }
}

/// h_i of the file comment, in double precision.
template <class T>
[[nodiscard]] loss_accum_t<T> dpo_margin(const T* pc, const T* pr, const T* rc, const T* rr, std::size_t i) {
  using A = loss_accum_t<T>;
  return (static_cast<A>(pc[i]) - static_cast<A>(pr[i])) - (static_cast<A>(rc[i]) - static_cast<A>(rr[i]));
}
}  // namespace detail

/// Mean DPO / cDPO / IPO loss of n preference pairs (formulas in the file comment).
/// @tparam T `float` or `double`.
/// @param policy_chosen    (n) log π(chosen | prompt) under the trained policy.
/// @param policy_rejected  (n) log π(rejected | prompt) under the trained policy.
/// @param ref_chosen       (n) log π_ref(chosen | prompt) under the frozen reference.
/// @param ref_rejected     (n) log π_ref(rejected | prompt) under the frozen reference.
/// @param opt              β, ε and the variant.
/// @param chosen_rewards   (n) optional output: β (policy_chosen − ref_chosen); null to skip.
/// @param rejected_rewards (n) optional output: β (policy_rejected − ref_rejected); null to skip.
/// @return the mean loss over the n pairs.
/// @throws config_error for n = 0 or invalid options (see dpo_options::validate).
template <class T>
[[nodiscard]] T dpo_loss_forward(cpu_t, const T* policy_chosen, const T* policy_rejected, const T* ref_chosen,
                                 const T* ref_rejected, std::size_t n, const dpo_options& opt,
                                 T* chosen_rewards = nullptr, T* rejected_rewards = nullptr) {
  // policy_chosen, policy_rejected, ref_chosen, ref_rejected, chosen_rewards, rejected_rewards: (n)
  using A = detail::loss_accum_t<T>;
  detail::dpo_check("dpo_loss_forward", n, opt);
  const A beta = static_cast<A>(opt.beta), eps = static_cast<A>(opt.label_smoothing);
  A total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const A h = detail::dpo_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected, i);
    if (opt.variant == dpo_variant::sigmoid) {
      total += (A(1) - eps) * detail::softplus(-beta * h);  // −log σ(βh) = softplus(−βh)
      if (eps != A(0)) total += eps * detail::softplus(beta * h);
    } else {
      const A r = h - A(1) / (A(2) * beta);
      total += r * r;
    }
    if (chosen_rewards != nullptr)
      chosen_rewards[i] = static_cast<T>(beta * (static_cast<A>(policy_chosen[i]) - static_cast<A>(ref_chosen[i])));
    if (rejected_rewards != nullptr)
      rejected_rewards[i] =
          static_cast<T>(beta * (static_cast<A>(policy_rejected[i]) - static_cast<A>(ref_rejected[i])));
  }
  return static_cast<T>(total / static_cast<A>(n));
}

/// Gradient of dloss · dpo_loss_forward(...) with respect to the policy's log-probabilities, accumulated
/// (the reference is frozen and gets none): with g_i = (dloss / n) ∂loss_i/∂h_i,
///     sigmoid: ∂loss_i/∂h_i = β (−(1 − ε) σ(−β h_i) + ε σ(β h_i));   ipo: 2 (h_i − 1/(2β)),
/// dpolicy_chosen[i] += g_i and dpolicy_rejected[i] −= g_i.
/// @param dpolicy_chosen   (n) accumulated gradient of policy_chosen (null to skip).
/// @param dpolicy_rejected (n) accumulated gradient of policy_rejected (null to skip).
/// @param dloss            gradient of the training objective with respect to the mean loss.
/// @return nothing; accumulates into the gradients.
/// @throws as dpo_loss_forward.
template <class T>
void dpo_loss_backward(cpu_t, T* dpolicy_chosen, T* dpolicy_rejected, const T* policy_chosen, const T* policy_rejected,
                       const T* ref_chosen, const T* ref_rejected, std::size_t n, const dpo_options& opt,
                       std::type_identity_t<T> dloss = T(1)) {
  // all: (n)
  using A = detail::loss_accum_t<T>;
  detail::dpo_check("dpo_loss_backward", n, opt);
  const A beta = static_cast<A>(opt.beta), eps = static_cast<A>(opt.label_smoothing);
  const A scale = static_cast<A>(dloss) / static_cast<A>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const A h = detail::dpo_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected, i);
    const A dh = opt.variant == dpo_variant::sigmoid
                     ? beta * (-(A(1) - eps) * detail::sigmoid(-beta * h) + eps * detail::sigmoid(beta * h))
                     : A(2) * (h - A(1) / (A(2) * beta));
    const A g = scale * dh;
    if (dpolicy_chosen != nullptr) dpolicy_chosen[i] += static_cast<T>(g);
    if (dpolicy_rejected != nullptr) dpolicy_rejected[i] -= static_cast<T>(g);
  }
}

}  // namespace cai
