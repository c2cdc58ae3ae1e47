/// @file backend/cuda_train.cuh
/// The training side of the CUDA backend: the losses of train/losses/ (token log-probability and entropy,
/// the Bradley-Terry preference loss of Bai et al. 2022, arXiv:2212.08073, and DPO / cDPO / IPO of
/// Rafailov et al. 2023, arXiv:2305.18290) for `cuda_t`, with the names, arguments and formulas of the CPU
/// versions, and the AdamW step (Loshchilov and Hutter 2019) with the arithmetic of train/adamw.hpp
/// (PyTorch's, with the fused multiply-adds of its vectorised kernels), plus `cuda_adamw_state`, the
/// optimizer state of one parameter tensor held on the GPU.
///
/// Every pointer is a device pointer. The scalar losses return a host value: the per-pair terms are
/// computed on the GPU in double precision and summed on the host in pair order, as the CPU sums them.
/// Their argument checks (probabilities in [0, 1], options) run on the host and throw the CPU versions'
/// errors.
#pragma once

#if !defined(__CUDACC__)
#error "cai/backend/cuda_train.cuh is CUDA code: include it from a .cu file compiled by nvcc and link the cai::cuda CMake target (the CPU losses are in <cai/train/losses.hpp>)"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "cai/backend/cuda.cuh"
#include "cai/error.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/losses/detail/common.hpp"
#include "cai/train/losses/dpo.hpp"
#include "cai/train/losses/preference.hpp"

namespace cai {

namespace detail {

__device__ inline double cuda_softplus(double x) { return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x))); }
__device__ inline double cuda_sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}

template <class T>
__global__ void token_entropy_kernel(T* entropy, const T* logits, std::size_t V) {
  __shared__ T red[32];
  const T* x = logits + blockIdx.x * V;
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) m = x[i] > m ? x[i] : m;
  m = block_max(m, red, -std::numeric_limits<T>::infinity());
  T sum = 0, weighted = 0;
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) {
    const T e = exp(x[i] - m);
    sum += e;
    weighted += e * (x[i] - m);
  }
  sum = block_sum(sum, red);
  weighted = block_sum(weighted, red);
  if (threadIdx.x == 0) entropy[blockIdx.x] = log(sum) - weighted / sum;
}

template <class T>
__global__ void token_entropy_backward_kernel(T* dlogits, const T* dentropy, const T* logits, std::size_t V) {
  __shared__ T red[32];
  const T* x = logits + blockIdx.x * V;
  T* g = dlogits + blockIdx.x * V;
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) m = x[i] > m ? x[i] : m;
  m = block_max(m, red, -std::numeric_limits<T>::infinity());
  T sum = 0, weighted = 0;
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) {
    const T e = exp(x[i] - m);
    sum += e;
    weighted += e * (x[i] - m);
  }
  sum = block_sum(sum, red);
  weighted = block_sum(weighted, red);
  const T lse = log(sum);
  const T H = lse - weighted / sum;
  const T d = dentropy[blockIdx.x];
  for (std::size_t i = threadIdx.x; i < V; i += blockDim.x) {
    const T logp = (x[i] - m) - lse;
    g[i] -= d * exp(logp) * (logp + H);
  }
}

/// Per pair: terms[i] = the pair's loss (double); with grad, the gradients are accumulated too.
template <class T>
__global__ void preference_kernel(double* terms, T* da, T* db, const T* a, const T* b, const T* p_a, std::size_t n,
                                  double margin, double scale, bool forward) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    const double p = static_cast<double>(p_a[i]);
    if (forward) {
      double t = 0;
      if (p != 0.0) t += p * cuda_softplus(margin - d);
      if (p != 1.0) t += (1.0 - p) * cuda_softplus(d + margin);
      terms[i] = t;
    } else {
      const double g = scale * (-p * cuda_sigmoid(margin - d) + (1.0 - p) * cuda_sigmoid(d + margin));
      if (da != nullptr) da[i] += static_cast<T>(g);
      if (db != nullptr) db[i] -= static_cast<T>(g);
    }
  }
}

template <class T>
__global__ void dpo_kernel(double* terms, T* chosen_rewards, T* rejected_rewards, T* dpc, T* dpr, const T* pc,
                           const T* pr, const T* rc, const T* rr, std::size_t n, double beta, double eps, bool ipo,
                           double scale, bool forward) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const double h = (static_cast<double>(pc[i]) - static_cast<double>(pr[i])) -
                     (static_cast<double>(rc[i]) - static_cast<double>(rr[i]));
    if (forward) {
      double t;
      if (!ipo) {
        t = (1.0 - eps) * cuda_softplus(-beta * h);
        if (eps != 0.0) t += eps * cuda_softplus(beta * h);
      } else {
        const double r = h - 1.0 / (2.0 * beta);
        t = r * r;
      }
      terms[i] = t;
      if (chosen_rewards != nullptr)
        chosen_rewards[i] = static_cast<T>(beta * (static_cast<double>(pc[i]) - static_cast<double>(rc[i])));
      if (rejected_rewards != nullptr)
        rejected_rewards[i] = static_cast<T>(beta * (static_cast<double>(pr[i]) - static_cast<double>(rr[i])));
    } else {
      const double dh = !ipo ? beta * (-(1.0 - eps) * cuda_sigmoid(-beta * h) + eps * cuda_sigmoid(beta * h))
                             : 2.0 * (h - 1.0 / (2.0 * beta));
      const double g = scale * dh;
      if (dpc != nullptr) dpc[i] += static_cast<T>(g);
      if (dpr != nullptr) dpr[i] -= static_cast<T>(g);
    }
  }
}

/// The mean of per-pair terms, summed on the host in pair order.
inline double cuda_mean_of_terms(const double* terms, std::size_t n) {
  const auto host = cuda_copy_to_host(terms, n);
  double total = 0;
  for (double t : host) total += t;
  return total / static_cast<double>(n);
}

/// One AdamW step per element: the operations and roundings of detail::adamw_block_step's fused path.
template <class T>
__global__ void adamw_kernel(T* theta, const T* g, T* m, T* v, T* max_v, std::size_t n, adamw_coefficients<T> c) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    T th = theta[i];
    th = th * c.decay;
    const T gi = g[i];
    T mi = m[i];
    if (c.m_weight < T(0.5))
      mi = fma(c.m_weight, gi - mi, mi);
    else
      mi = fma(mi - gi, T(1) - c.m_weight, gi);
    T vi = v[i] * c.beta2;
    vi = fma(c.v_weight * gi, gi, vi);
    T v_hat = vi;
    if (max_v != nullptr) {
      const T mv = max_v[i] < vi ? vi : max_v[i];
      max_v[i] = mv;
      v_hat = mv;
    }
    const T denom = sqrt(v_hat) / c.bc2_sqrt + c.eps;
    th = th - (c.step_size * mi) / denom;
    theta[i] = th;
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Token log-probability and entropy (train/losses/token.hpp)

/// logp[n] = logits[n, t_n] − lse[n]; lse saved for the backward pass; a negative target masks the row
/// (logp = 0).
/// @throws validation_error for a target ≥ V (targets are copied to the host first).
template <class T>
void token_logprob_forward(cuda_t, T* logp, T* lse, const T* logits, const std::int32_t* targets, std::size_t N,
                           std::size_t V) {
  // logp, lse: (N)   logits: (N, V)   targets: (N)
  detail::cuda_check_targets<T>("token_logprob_forward", targets, N, V, true);
  if (N == 0) return;
  detail::lse_target_kernel<<<static_cast<unsigned>(N), detail::cuda_row_threads(V)>>>(logp, lse, logits, targets, V,
                                                                                       T(-1));
  CAI_CUDA_CHECK_LAUNCH("token_logprob_forward");
}

/// dlogits[n, :] += dlogp[n] * (onehot(t_n) − softmax(logits[n, :])); masked rows are left untouched.
template <class T>
void token_logprob_backward(cuda_t, T* dlogits, const T* dlogp, const T* logits, const T* lse,
                            const std::int32_t* targets, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dlogp, lse, targets: (N)
  if (N == 0) return;
  detail::lse_target_backward_kernel<<<static_cast<unsigned>(N), detail::cuda_row_threads(V)>>>(
      dlogits, dlogp, logits, lse, targets, V, T(-1));
  CAI_CUDA_CHECK_LAUNCH("token_logprob_backward");
}

/// entropy[n] = logsumexp(x) − Σ softmax(x) x, x = logits[n, :].
template <class T>
void token_entropy_forward(cuda_t, T* entropy, const T* logits, std::size_t N, std::size_t V) {
  // entropy: (N)   logits: (N, V)
  if (N == 0) return;
  detail::token_entropy_kernel<<<static_cast<unsigned>(N), detail::cuda_row_threads(V)>>>(entropy, logits, V);
  CAI_CUDA_CHECK_LAUNCH("token_entropy_forward");
}

/// dlogits[n, j] += dentropy[n] * (−p_j (log p_j + H_n)).
template <class T>
void token_entropy_backward(cuda_t, T* dlogits, const T* dentropy, const T* logits, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dentropy: (N)
  if (N == 0) return;
  detail::token_entropy_backward_kernel<<<static_cast<unsigned>(N), detail::cuda_row_threads(V)>>>(dlogits, dentropy,
                                                                                                   logits, V);
  CAI_CUDA_CHECK_LAUNCH("token_entropy_backward");
}

// ---------------------------------------------------------------------------------------------------
// Preference and DPO losses (train/losses/preference.hpp, train/losses/dpo.hpp)

/// Mean Bradley-Terry loss of n preference pairs with soft targets and a symmetric margin.
/// @return the mean loss (a host value).
/// @throws as the CPU version (p_a is copied to the host and checked first).
template <class T>
[[nodiscard]] T preference_loss_forward(cuda_t, const T* reward_a, const T* reward_b, const T* p_a, std::size_t n,
                                        std::type_identity_t<T> margin = T(0)) {
  // reward_a, reward_b, p_a: (n)
  const auto p_host = detail::cuda_copy_to_host(p_a, n);
  detail::preference_loss_check("preference_loss_forward", p_host.data(), n, static_cast<T>(margin));
  double* terms = detail::cuda_scratch<double>(n);
  detail::preference_kernel<<<detail::cuda_grid(n), detail::cuda_block>>>(
      terms, static_cast<T*>(nullptr), static_cast<T*>(nullptr), reward_a, reward_b, p_a, n,
      static_cast<double>(margin), 0.0, true);
  CAI_CUDA_CHECK_LAUNCH("preference_loss_forward");
  return static_cast<T>(detail::cuda_mean_of_terms(terms, n));
}

/// dreward_a[i] += g_i, dreward_b[i] −= g_i with g_i = (dloss / n)(−p_i σ(m − d_i) + (1 − p_i) σ(d_i + m)).
template <class T>
void preference_loss_backward(cuda_t, T* dreward_a, T* dreward_b, const T* reward_a, const T* reward_b, const T* p_a,
                              std::size_t n, std::type_identity_t<T> margin, std::type_identity_t<T> dloss = T(1)) {
  // dreward_a, dreward_b, reward_a, reward_b, p_a: (n)
  const auto p_host = detail::cuda_copy_to_host(p_a, n);
  detail::preference_loss_check("preference_loss_backward", p_host.data(), n, static_cast<T>(margin));
  detail::preference_kernel<<<detail::cuda_grid(n), detail::cuda_block>>>(
      static_cast<double*>(nullptr), dreward_a, dreward_b, reward_a, reward_b, p_a, n, static_cast<double>(margin),
      static_cast<double>(dloss) / static_cast<double>(n), false);
  CAI_CUDA_CHECK_LAUNCH("preference_loss_backward");
}

/// Mean DPO / cDPO / IPO loss of n pairs; optional implicit rewards (device buffers, null to skip).
/// @return the mean loss (a host value). @throws as the CPU version.
template <class T>
[[nodiscard]] T dpo_loss_forward(cuda_t, const T* policy_chosen, const T* policy_rejected, const T* ref_chosen,
                                 const T* ref_rejected, std::size_t n, const dpo_options& opt,
                                 T* chosen_rewards = nullptr, T* rejected_rewards = nullptr) {
  // all: (n)
  detail::dpo_check("dpo_loss_forward", n, opt);
  double* terms = detail::cuda_scratch<double>(n);
  detail::dpo_kernel<<<detail::cuda_grid(n), detail::cuda_block>>>(
      terms, chosen_rewards, rejected_rewards, static_cast<T*>(nullptr), static_cast<T*>(nullptr), policy_chosen,
      policy_rejected, ref_chosen, ref_rejected, n, opt.beta, opt.label_smoothing, opt.variant == dpo_variant::ipo, 0.0,
      true);
  CAI_CUDA_CHECK_LAUNCH("dpo_loss_forward");
  return static_cast<T>(detail::cuda_mean_of_terms(terms, n));
}

/// Gradient of dloss · dpo_loss_forward(...) with respect to the policy's log-probabilities, accumulated.
template <class T>
void dpo_loss_backward(cuda_t, T* dpolicy_chosen, T* dpolicy_rejected, const T* policy_chosen, const T* policy_rejected,
                       const T* ref_chosen, const T* ref_rejected, std::size_t n, const dpo_options& opt,
                       std::type_identity_t<T> dloss = T(1)) {
  // all: (n)
  detail::dpo_check("dpo_loss_backward", n, opt);
  detail::dpo_kernel<<<detail::cuda_grid(n), detail::cuda_block>>>(
      static_cast<double*>(nullptr), static_cast<T*>(nullptr), static_cast<T*>(nullptr), dpolicy_chosen,
      dpolicy_rejected, policy_chosen, policy_rejected, ref_chosen, ref_rejected, n, opt.beta, opt.label_smoothing,
      opt.variant == dpo_variant::ipo, static_cast<double>(dloss) / static_cast<double>(n), false);
  CAI_CUDA_CHECK_LAUNCH("dpo_loss_backward");
}

// ---------------------------------------------------------------------------------------------------
// AdamW

/// The scalars of AdamW step t (1-based) for `opt`, computed as adamw::state::update computes them (in
/// double, then rounded to T).
template <class T>
[[nodiscard]] detail::adamw_coefficients<T> adamw_step_coefficients(const adamw& opt, std::size_t t) {
  const double lr = opt.learning_rate;
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(opt.beta1), static_cast<double>(t));
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(opt.beta2), static_cast<double>(t));
  detail::adamw_coefficients<T> c{};
  c.decay = static_cast<T>(1.0 - lr * static_cast<double>(opt.weight_decay));
  c.m_weight = static_cast<T>(1.0 - static_cast<double>(opt.beta1));
  c.beta2 = static_cast<T>(opt.beta2);
  c.v_weight = static_cast<T>(1.0 - static_cast<double>(opt.beta2));
  c.bc2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  c.eps = static_cast<T>(opt.eps);
  c.step_size = static_cast<T>(lr / bias_correction1);
  return c;
}

/// One AdamW step (step number t, 1-based) on n elements in place: theta, m, v (and max_v with AMSGrad,
/// else null) are device buffers; the arithmetic is train/adamw.hpp's.
/// @throws config_error if `opt.validate()` throws or t is 0.
template <class T>
void adamw_step(cuda_t, const adamw& opt, std::size_t t, T* theta, const T* grad, T* m, T* v, T* max_v,
                std::size_t n) {
  // theta, grad, m, v, max_v: (n)
  opt.validate();
  if (t == 0) throw config_error("adamw_step: the step number t is 1-based; 0 was given");
  if (opt.amsgrad && max_v == nullptr)
    throw config_error("adamw_step: amsgrad is set but no buffer for the maximum of v was given");
  if (n == 0) return;
  detail::adamw_kernel<<<detail::cuda_grid(n), detail::cuda_block>>>(theta, grad, m, v, opt.amsgrad ? max_v : nullptr,
                                                                     n, adamw_step_coefficients<T>(opt, t));
  CAI_CUDA_CHECK_LAUNCH("adamw_step");
}

/// The AdamW state of one parameter tensor on the GPU: m, v (and the maximum of v with AMSGrad) as
/// device_vectors allocated at the first step, and the step count. It reads the hyper-parameters of its
/// `adamw` at every step, as adamw::state does, so a learning-rate schedule applies.
/// @tparam T `float` or `double`.
template <class T>
class cuda_adamw_state {
 public:
  /// @pre `optimizer` outlives this state. @throws config_error if `optimizer.validate()` throws.
  cuda_adamw_state(const adamw& optimizer, std::size_t size) : optimizer_(&optimizer), size_(size) {
    optimizer.validate();
  }
  cuda_adamw_state(const adamw&& optimizer, std::size_t size) = delete;

  /// One step on a parameter of the size given at construction.
  /// @throws validation_error if a size differs.
  void update(device_vector<T>& param, const device_vector<T>& gradient) {
    if (param.size() != size_ || gradient.size() != size_)
      throw validation_error("cai::cuda_adamw_state::update: the parameter has " + std::to_string(param.size()) +
                             " elements and the gradient " + std::to_string(gradient.size()) +
                             " but this state was created for " + std::to_string(size_));
    update(param.data(), gradient.data());
  }
  /// One step on device buffers of the size given at construction.
  void update(T* param, const T* gradient) {
    const adamw& opt = *optimizer_;
    opt.validate();
    if (m_.size() != size_) {
      m_.resize(size_);
      v_.resize(size_);
    }
    if (opt.amsgrad && max_v_.size() != size_) max_v_.resize(size_);
    adamw_step(cuda, opt, steps_ + 1, param, gradient, m_.data(), v_.data(), opt.amsgrad ? max_v_.data() : nullptr,
               size_);
    ++steps_;
  }
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
  [[nodiscard]] const device_vector<T>& first_moment() const noexcept { return m_; }
  [[nodiscard]] const device_vector<T>& second_moment() const noexcept { return v_; }
  [[nodiscard]] const device_vector<T>& max_second_moment() const noexcept { return max_v_; }

 private:
  const adamw* optimizer_;
  std::size_t size_;
  std::size_t steps_ = 0;
  device_vector<T> m_, v_, max_v_;
};

}  // namespace cai
