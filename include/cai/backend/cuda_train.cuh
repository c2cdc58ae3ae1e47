/// @file backend/cuda_train.cuh
/// The training side of the CUDA backend: the losses of train/losses/ (token log-probability and entropy,
/// the Bradley-Terry preference loss of Bai et al. 2022, arXiv:2212.08073, and DPO / cDPO / IPO of
/// Rafailov et al. 2023, arXiv:2305.18290) for `cuda_t`, with the names, arguments and formulas of the CPU
/// versions, and the AdamW step (Loshchilov and Hutter 2019) with the arithmetic of train/adamw.hpp
/// (PyTorch's, with the fused multiply-adds of its vectorised kernels), plus `cuda_adamw_state`, the
/// optimizer state of one parameter tensor held on the GPU.
///
/// Also the trainers' helpers of train/backend_ops.hpp for `cuda_t` (the first non-finite element, the
/// squared norm, an in-place scale, a vector head at chosen rows: the preference model's reward and PPO's
/// value), LoRA's `lora_merge` / `lora_backward` (train/parameters.hpp) with cuBLAS, and the mapping of
/// `adamw` on `device_vector` to `cuda_adamw_state` (with `save` / `load` in adamw::state's format), so
/// that the trainers of train/ instantiate for `transformer<cuda_t>`.
///
/// Every pointer is a device pointer. The scalar losses return a host value: the per-pair terms are
/// computed on the GPU in double precision and summed on the host in pair order, as the CPU sums them.
/// Their argument checks (probabilities in [0, 1], options) run on the host and throw the CPU versions'
/// errors.
#pragma once

#if !defined(__CUDACC__) && !defined(CAI_CUDA_EMULATION)
#error "cai/backend/cuda_train.cuh is CUDA code: include it from a .cu file compiled by nvcc and link the cai::cuda CMake target (the CPU losses are in <cai/train/losses.hpp>)"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cai/backend/cuda.cuh"
#include "cai/error.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/backend_ops.hpp"
#include "cai/train/detail/state_io.hpp"
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

/// The block's statistics of one row of logits x[0, V): its maximum m, sum_i e^(x_i - m) and
/// sum_i e^(x_i - m) (x_i - m); every thread of the block gets them.
template <class T>
struct row_entropy_stats {
  T m, sum, weighted;
  /// log-sum-exp minus m
  __device__ T lse() const { return log(sum); }
  /// the entropy of softmax(x)
  __device__ T entropy() const { return log(sum) - weighted / sum; }
};

template <class T>
__device__ row_entropy_stats<T> entropy_stats(const T* x, std::size_t V, T* red) {
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
  return {m, sum, weighted};
}

template <class T>
__global__ void token_entropy_kernel(T* entropy, const T* logits, std::size_t V) {
  __shared__ T red[32];
  const auto s = entropy_stats(logits + blockIdx.x * V, V, red);
  if (threadIdx.x == 0) entropy[blockIdx.x] = s.entropy();
}

template <class T>
__global__ void token_entropy_backward_kernel(T* dlogits, const T* dentropy, const T* logits, std::size_t V) {
  __shared__ T red[32];
  const T* x = logits + blockIdx.x * V;
  T* g = dlogits + blockIdx.x * V;
  const auto s = entropy_stats(x, V, red);
  const T m = s.m;
  const T lse = s.lse();
  const T H = s.entropy();
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

template <class T>
__global__ void first_non_finite_kernel(unsigned long long* first, const T* x, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    if (!isfinite(x[i])) atomicMin(first, static_cast<unsigned long long>(i));
}

/// Per block: the sum of x[i]² in double over a grid-stride share of the elements (a fixed grid, so the
/// partial sums and their order do not change between runs).
template <class T>
__global__ void squared_norm_kernel(double* partial, const T* x, std::size_t n) {
  __shared__ double red[32];
  double s = 0.0;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const double v = static_cast<double>(x[i]);
    s += v * v;
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <class T>
__global__ void scale_kernel(T* x, T factor, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    x[i] *= factor;
}

/// One block per b: out[b] = Σ_c head[c] hidden[rows[b], c] in double.
template <class T>
__global__ void scalar_head_kernel(T* out, const T* hidden, const T* head, const std::size_t* rows, std::size_t C) {
  __shared__ double red[32];
  const T* h = hidden + rows[blockIdx.x] * C;
  double s = 0.0;
  for (std::size_t c = threadIdx.x; c < C; c += blockDim.x) s += static_cast<double>(head[c]) * h[c];
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<T>(s);
}

/// One thread per c, the rows in b order: dhead[c] += Σ_b dout[b] h[rows[b], c]; dhidden rows written.
template <class T>
__global__ void scalar_head_backward_kernel(T* dhead, T* dhidden, const T* hidden, const T* head, const T* dout,
                                            const std::size_t* rows, std::size_t B, std::size_t C) {
  for (std::size_t c = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; c < C; c += std::size_t(gridDim.x) * blockDim.x) {
    T acc = dhead[c];
    for (std::size_t b = 0; b < B; ++b) {
      acc += dout[b] * hidden[rows[b] * C + c];
      dhidden[rows[b] * C + c] = dout[b] * head[c];
    }
    dhead[c] = acc;
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
  CAI_CUDA_LAUNCH(detail::lse_target_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(
      logp, lse, logits, targets, V, T(-1));
  CAI_CUDA_CHECK_LAUNCH("token_logprob_forward");
}

/// dlogits[n, :] += dlogp[n] * (onehot(t_n) − softmax(logits[n, :])); masked rows are left untouched.
template <class T>
void token_logprob_backward(cuda_t, T* dlogits, const T* dlogp, const T* logits, const T* lse,
                            const std::int32_t* targets, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dlogp, lse, targets: (N)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::lse_target_backward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(
      dlogits, dlogp, logits, lse, targets, V, T(-1));
  CAI_CUDA_CHECK_LAUNCH("token_logprob_backward");
}

/// entropy[n] = logsumexp(x) − Σ softmax(x) x, x = logits[n, :].
template <class T>
void token_entropy_forward(cuda_t, T* entropy, const T* logits, std::size_t N, std::size_t V) {
  // entropy: (N)   logits: (N, V)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::token_entropy_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(
      entropy, logits, V);
  CAI_CUDA_CHECK_LAUNCH("token_entropy_forward");
}

/// dlogits[n, j] += dentropy[n] * (−p_j (log p_j + H_n)).
template <class T>
void token_entropy_backward(cuda_t, T* dlogits, const T* dentropy, const T* logits, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dentropy: (N)
  if (N == 0) return;
  CAI_CUDA_LAUNCH(detail::token_entropy_backward_kernel, static_cast<unsigned>(N), detail::cuda_row_threads(V))(
      dlogits, dentropy, logits, V);
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
  CAI_CUDA_LAUNCH(detail::preference_kernel, detail::cuda_grid(n), detail::cuda_block)(
      terms, static_cast<T*>(nullptr), static_cast<T*>(nullptr), reward_a, reward_b, p_a, n, static_cast<double>(margin),
      0.0, true);
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
  CAI_CUDA_LAUNCH(detail::preference_kernel, detail::cuda_grid(n), detail::cuda_block)(
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
  CAI_CUDA_LAUNCH(detail::dpo_kernel, detail::cuda_grid(n), detail::cuda_block)(
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
  CAI_CUDA_LAUNCH(detail::dpo_kernel, detail::cuda_grid(n), detail::cuda_block)(
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
  CAI_CUDA_LAUNCH(detail::adamw_kernel, detail::cuda_grid(n), detail::cuda_block)(
      theta, grad, m, v, opt.amsgrad ? max_v : nullptr, n, adamw_step_coefficients<T>(opt, t));
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
  /// As adamw::state's constructor: the state of `param` (only its size is kept).
  cuda_adamw_state(const adamw& optimizer, const device_vector<T>& param) : cuda_adamw_state(optimizer, param.size()) {}
  cuda_adamw_state(const adamw&& optimizer, const device_vector<T>& param) = delete;

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

  /// Writes the step count and the moments (copied to the host) in adamw::state's format
  /// (train/detail/state_io.hpp, kind "adamw"): a state saved on the GPU loads on the CPU and back.
  /// @throws io_error if the stream fails.
  void save(std::ostream& out) const {
    const auto m = detail::cuda_copy_to_host(m_.data(), m_.size());
    const auto v = detail::cuda_copy_to_host(v_.data(), v_.size());
    const auto max_v = detail::cuda_copy_to_host(max_v_.data(), max_v_.size());
    detail::optimizer_state_writer w(out, "cai::cuda_adamw_state::save");
    w.header({.kind = "adamw", .value_bytes = sizeof(T), .steps = steps_, .size = size_, .buffers = 3});
    w.buffer(std::span<const T>(m));
    w.buffer(std::span<const T>(v));
    w.buffer(std::span<const T>(max_v));
  }

  /// Reads what `save` (or adamw::state::save) wrote for a parameter of this size.
  /// @throws io_error / validation_error as adamw::state::load; the state is unchanged on a throw.
  void load(std::istream& in, const std::string& source = "<stream>") {
    detail::optimizer_state_reader r(in, source, "cai::cuda_adamw_state::load");
    const auto h = r.header();
    r.expect<T>(h, "adamw", size_, 3);
    auto m = r.template buffer<T>(size_, "first moment");
    auto v = r.template buffer<T>(size_, "second moment");
    auto max_v = r.template buffer<T>(size_, "maximum of the second moment");
    if (m.size() != v.size() || (h.steps != 0 && m.empty()))
      throw validation_error(source + ": cai::cuda_adamw_state::load: the moments are missing or of unequal sizes; "
                             "the optimizer state is corrupt");
    device_vector<T> dm{std::span<const T>(m)}, dv{std::span<const T>(v)}, dmax{std::span<const T>(max_v)};
    steps_ = static_cast<std::size_t>(h.steps);
    m_ = std::move(dm);
    v_ = std::move(dv);
    max_v_ = std::move(dmax);
  }

  [[nodiscard]] const device_vector<T>& first_moment() const noexcept { return m_; }
  [[nodiscard]] const device_vector<T>& second_moment() const noexcept { return v_; }
  [[nodiscard]] const device_vector<T>& max_second_moment() const noexcept { return max_v_; }

 private:
  const adamw* optimizer_;
  std::size_t size_;
  std::size_t steps_ = 0;
  device_vector<T> m_, v_, max_v_;
};

/// The AdamW state of a parameter held in `Backend`'s storage of `T`: `adamw::state<std::vector<T>>` for
/// `cpu_t`, `cuda_adamw_state<T>` for `cuda_t`. Both are built from `(optimizer, param)` and stepped with
/// `update(param, gradient)`, so a training loop names the backend once:
/// `cai::adamw_state_for<Backend, float> state(opt, model.parameter_storage());`
template <class Backend, class T>
struct backend_adamw_state {
  using type = adamw::state<typename Backend::template storage<T>>;
};
template <class T>
struct backend_adamw_state<cuda_t, T> {
  using type = cuda_adamw_state<T>;
};
template <class Backend, class T>
using adamw_state_for = typename backend_adamw_state<Backend, T>::type;

// ---------------------------------------------------------------------------------------------------
// The trainers' helpers (train/backend_ops.hpp) for cuda_t

/// The index of the first non-finite element of x (device memory), or nothing. One synchronisation.
template <class T>
[[nodiscard]] std::optional<std::size_t> first_non_finite(cuda_t, const T* x, std::size_t n) {
  // x: (n)
  if (n == 0) return std::nullopt;
  auto* first = detail::cuda_scratch<unsigned long long>(1);
  const auto none = static_cast<unsigned long long>(n);
  CAI_CUDA_CHECK(cudaMemcpy(first, &none, sizeof none, cudaMemcpyHostToDevice));
  CAI_CUDA_LAUNCH(detail::first_non_finite_kernel, detail::cuda_grid(n), detail::cuda_block)(first, x, n);
  CAI_CUDA_CHECK_LAUNCH("first_non_finite");
  unsigned long long found = none;
  CAI_CUDA_CHECK(cudaMemcpy(&found, first, sizeof found, cudaMemcpyDeviceToHost));
  if (found >= none) return std::nullopt;
  return static_cast<std::size_t>(found);
}

/// Σ x[i]² in double: per-block partial sums on a fixed grid, added on the host in block order, so the
/// result is the same from run to run (not bit-equal to the CPU's sequential sum).
template <class T>
[[nodiscard]] double squared_norm(cuda_t, const T* x, std::size_t n) {
  // x: (n)
  if (n == 0) return 0.0;
  const unsigned blocks = 256;
  double* partial = detail::cuda_scratch<double>(blocks, 1);
  CAI_CUDA_LAUNCH(detail::squared_norm_kernel, blocks, detail::cuda_block)(partial, x, n);
  CAI_CUDA_CHECK_LAUNCH("squared_norm");
  const auto host = detail::cuda_copy_to_host(partial, blocks);
  double total = 0.0;
  for (double p : host) total += p;
  return total;
}

/// x[i] *= factor on the device.
template <class T>
void scale_in_place(cuda_t, T* x, std::type_identity_t<T> factor, std::size_t n) {
  // x: (n)
  if (n == 0) return;
  CAI_CUDA_LAUNCH(detail::scale_kernel, detail::cuda_grid(n), detail::cuda_block)(x, static_cast<T>(factor), n);
  CAI_CUDA_CHECK_LAUNCH("scale_in_place");
}

/// out[b] = Σ_c head[c] · hidden[rows[b], c] in double (all device memory, rows included).
template <class T>
void scalar_head_forward(cuda_t, T* out, const T* hidden, const T* head, const std::size_t* rows, std::size_t B,
                         std::size_t C) {
  // out: (B)   hidden: (rows of C)   head: (C)   rows: (B)
  if (B == 0) return;
  CAI_CUDA_LAUNCH(detail::scalar_head_kernel, static_cast<unsigned>(B), detail::cuda_row_threads(C))(
      out, hidden, head, rows, C);
  CAI_CUDA_CHECK_LAUNCH("scalar_head_forward");
}

/// dhead[c] += Σ_b dout[b] · hidden[rows[b], c] (in b order); dhidden[rows[b], c] = dout[b] · head[c].
template <class T>
void scalar_head_backward(cuda_t, T* dhead, T* dhidden, const T* hidden, const T* head, const T* dout,
                          const std::size_t* rows, std::size_t B, std::size_t C) {
  // dhead, head: (C)   dhidden, hidden: (rows of C)   dout, rows: (B)
  if (B == 0 || C == 0) return;
  CAI_CUDA_LAUNCH(detail::scalar_head_backward_kernel, detail::cuda_grid(C), detail::cuda_block)(
      dhead, dhidden, hidden, head, dout, rows, B, C);
  CAI_CUDA_CHECK_LAUNCH("scalar_head_backward");
}

/// w = w0 + scale · b a for a LoRA adapter (train/parameters.hpp): a device copy, then one cuBLAS product
/// into w with b scaled first.
/// @param w (out, in)   @param w0 (out, in)   @param a (r, in)   @param b (out, r); device memory.
template <class T>
void lora_merge(cuda_t, T* w, const T* w0, const T* a, const T* b, std::type_identity_t<T> scale, std::size_t out,
                std::size_t in, std::size_t r) {
  thread_local device_vector<T> scaled_b;  // (out, r)
  if (scaled_b.size() < out * r) scaled_b.resize(out * r);
  copy(cuda, w, w0, out * in);
  copy(cuda, scaled_b.data(), b, out * r);
  scale_in_place(cuda, scaled_b.data(), scale, out * r);
  // w (out, in) += scaled_b (out, r) · a (r, in): matmul_backward's input gradient with N = out, OC = r
  matmul_backward(cuda, w, static_cast<T*>(nullptr), static_cast<T*>(nullptr), scaled_b.data(),
                  static_cast<const T*>(nullptr), a, out, in, r);
}

/// da += scale · bᵀ dw, db += scale · dw aᵀ (accumulated) for a LoRA adapter, with cuBLAS.
/// @param da (r, in)   @param db (out, r)   @param dw (out, in)   @param a (r, in)   @param b (out, r).
template <class T>
void lora_backward(cuda_t, T* da, T* db, const T* dw, const T* a, const T* b, std::type_identity_t<T> scale,
                   std::size_t out, std::size_t in, std::size_t r) {
  thread_local device_vector<T> scaled_b, product;  // (out, r) each
  if (scaled_b.size() < out * r) {
    scaled_b.resize(out * r);
    product.resize(out * r);
  }
  copy(cuda, scaled_b.data(), b, out * r);
  scale_in_place(cuda, scaled_b.data(), scale, out * r);
  // da (r, in) += scaled_bᵀ (r, out) · dw (out, in): matmul_backward's weight gradient with N = out, OC = r
  matmul_backward(cuda, static_cast<T*>(nullptr), da, static_cast<T*>(nullptr), scaled_b.data(), dw,
                  static_cast<const T*>(nullptr), out, in, r);
  // product (out, r) = dw (out, in) · aᵀ (in, r); db += scale · product
  matmul_forward(cuda, product.data(), dw, a, static_cast<const T*>(nullptr), out, in, r);
  scale_in_place(cuda, product.data(), scale, out * r);
  accumulate(cuda, db, product.data(), out * r);
}

namespace detail {
template <class>
inline constexpr bool cuda_dependent_false = false;
}  // namespace detail

/// On the GPU the trainers keep a `cuda_adamw_state` for `adamw`...
template <class T>
struct optimizer_state_for<adamw, device_vector<T>> {
  using type = cuda_adamw_state<T>;
};
/// ... and refuse other optimizers, whose states are host code.
template <class Optimizer, class T>
struct optimizer_state_for<Optimizer, device_vector<T>> {
  static_assert(detail::cuda_dependent_false<Optimizer>,
                "cai: on cuda_t the trainers take cai::adamw only (cuda_adamw_state); sgd and other optimizers "
                "have host states: train on cai::cpu, or write a state for device_vector and specialise "
                "cai::optimizer_state_for");
  using type = void;
};

}  // namespace cai
