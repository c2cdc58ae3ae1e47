/// @file train/adamw.hpp
/// Adam with decoupled weight decay, AdamW (Loshchilov and Hutter 2019, "Decoupled Weight Decay
/// Regularization", arXiv:1711.05101), on top of Adam (Kingma and Ba 2015, "Adam: A Method for Stochastic
/// Optimization", arXiv:1412.6980), with the optional AMSGrad maximum (Reddi et al. 2018): `cai::adamw`, a
/// model of the `optimizer` concept.
///
/// The step is PyTorch's `torch.optim.AdamW`, term for term and in the same order, so that
/// hyper-parameters and checkpoints of a PyTorch run carry over. With learning rate γ, betas β₁ and β₂,
/// ε, weight decay λ, parameters θ and gradient g_t at step t = 1, 2, ...:
///
///     θ_{t-1} ← θ_{t-1} (1 − γλ)                 (decoupled weight decay, applied first)
///     m_t ← m_{t-1} + (1 − β₁)(g_t − m_{t-1})    (= β₁ m_{t-1} + (1 − β₁) g_t; m_0 = 0)
///     v_t ← β₂ v_{t-1} + (1 − β₂) g_t²           (v_0 = 0)
///     v̂_t ← max(v̂_{t-1}, v_t) if amsgrad, else v_t  (v̂_0 = 0)
///     θ_t ← θ_{t-1} − (γ / (1 − β₁ᵗ)) m_t / (√v̂_t / √(1 − β₂ᵗ) + ε)
///
/// (https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html). As in PyTorch, ε is added after the
/// bias correction of v̂, the bias corrections and the step size are computed in double, and the
/// element-wise arithmetic is done in the parameter's type (`float` for the model). The weight decay
/// multiplies the parameters, it is not added to the gradient: for an L2 penalty use `sgd`'s.
///
/// As in ensmallen, the per-parameter state is a nested class template created when training starts; it
/// reads the hyper-parameters of the `adamw` that created it at every step, so a learning-rate schedule
/// (train/schedule.hpp) changes `opt.learning_rate` and the next `update` uses it.
///
/// The step is one pass over the parameter in blocks of 256 elements: loops that the compiler vectorises,
/// a vectorised square root, and the blocks split over OpenMP threads for large parameters. Every element
/// is computed on its own, so the result does not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <istream>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/train/detail/elementwise.hpp"
#include "cai/train/detail/state_io.hpp"
#include "cai/train/sgd.hpp"

namespace cai {

namespace detail {

/// The scalars of one AdamW step, rounded to the parameter's type as PyTorch rounds them.
template <class T>
struct adamw_coefficients {
  T decay;          // 1 − γλ
  T m_weight;       // 1 − β₁, the lerp weight of the first moment
  T beta2;          // β₂
  T v_weight;       // 1 − β₂
  T bc2_sqrt;       // √(1 − β₂ᵗ)
  T eps;            // ε
  T step_size;      // γ / (1 − β₁ᵗ)
};

/// One AdamW step over `len` elements (at most 256 of them); `max_v` is null without AMSGrad.
///
/// Each operation is rounded where PyTorch's CPU kernels round it: the weight decay is its own pass (so
/// that the compiler cannot fuse it into the last subtraction), and where the CPU has FMA the first
/// moment's lerp and the second moment's addcmul are fused multiply-adds, as in PyTorch's vectorised
/// kernels. With that, the moments match PyTorch's bit for bit on such a CPU.
template <class T>
void adamw_block_step(T* theta, const T* g, T* m, T* v, T* max_v, std::size_t len,
                      const adamw_coefficients<T>& c) {
  // theta, g, m, v, max_v: (len)
  constexpr std::size_t block = 256;
  alignas(64) T denom[block];  // denom: (len)
#if defined(__FMA__) || defined(__aarch64__)
  constexpr bool fused = true;
#else
  constexpr bool fused = false;
#endif
  for (std::size_t i = 0; i < len; ++i) theta[i] *= c.decay;
  // PyTorch's lerp: self + w (end − self) for w < 0.5, else end − (end − self)(1 − w).
  if (c.m_weight < T(0.5)) {
    if constexpr (fused) {
      for (std::size_t i = 0; i < len; ++i) m[i] = std::fma(c.m_weight, g[i] - m[i], m[i]);
    } else {
      for (std::size_t i = 0; i < len; ++i) m[i] = m[i] + c.m_weight * (g[i] - m[i]);
    }
  } else {
    const T keep = T(1) - c.m_weight;
    if constexpr (fused) {
      for (std::size_t i = 0; i < len; ++i) m[i] = std::fma(m[i] - g[i], keep, g[i]);
    } else {
      for (std::size_t i = 0; i < len; ++i) m[i] = g[i] - (g[i] - m[i]) * keep;
    }
  }
  // PyTorch: v.mul_(β₂).addcmul_(g, g, value = 1 − β₂)
  for (std::size_t i = 0; i < len; ++i) v[i] *= c.beta2;
  if constexpr (fused) {
    for (std::size_t i = 0; i < len; ++i) v[i] = std::fma(c.v_weight * g[i], g[i], v[i]);
  } else {
    for (std::size_t i = 0; i < len; ++i) v[i] = v[i] + c.v_weight * g[i] * g[i];
  }
  const T* v_hat = v;
  if (max_v != nullptr) {
    for (std::size_t i = 0; i < len; ++i) max_v[i] = max_v[i] < v[i] ? v[i] : max_v[i];
    v_hat = max_v;
  }
  sqrt_into(denom, v_hat, len);
  for (std::size_t i = 0; i < len; ++i) denom[i] = denom[i] / c.bc2_sqrt + c.eps;
  // PyTorch: θ.addcdiv_(m, denom, value = −step_size)
  for (std::size_t i = 0; i < len; ++i) theta[i] = theta[i] - (c.step_size * m[i]) / denom[i];
}

/// One AdamW step over `n` elements, in blocks split over threads.
template <class T>
void adamw_step(T* theta, const T* g, T* m, T* v, T* max_v, std::size_t n, const adamw_coefficients<T>& c) {
  // theta, g, m, v, max_v: (n)
  constexpr std::size_t block = 256;
  const std::size_t blocks = (n + block - 1) / block;
  CAI_DETAIL_TRAIN_PARALLEL_FOR(n)
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t begin = b * block;
    const std::size_t len = std::min(block, n - begin);
    adamw_block_step(theta + begin, g + begin, m + begin, v + begin, max_v != nullptr ? max_v + begin : nullptr,
                     len, c);
  }
}

}  // namespace detail

/// Adam with decoupled weight decay, as defined by PyTorch's `torch.optim.AdamW` (see the file comment for
/// the formula and the papers).
///
/// An aggregate: `cai::adamw{.learning_rate = 3e-4f, .weight_decay = 0.1f}`. The defaults are PyTorch's
/// (learning rate 1e-3, betas (0.9, 0.999), ε 1e-8, weight decay 1e-2, no AMSGrad).
///
/// Models `cai::optimizer<cai::adamw, Param>` for every `Param` that is a contiguous sized buffer of
/// `float` or `double`.
struct adamw {
  /// γ, the step size; finite and >= 0.
  float learning_rate = 1e-3f;
  /// β₁, the decay of the first-moment (mean) average; in [0, 1).
  float beta1 = 0.9f;
  /// β₂, the decay of the second-moment (uncentred variance) average; in [0, 1).
  float beta2 = 0.999f;
  /// ε, added to the denominator for numerical stability; finite and >= 0.
  float eps = 1e-8f;
  /// λ, the decoupled weight decay: each step multiplies θ by 1 − γλ; finite and >= 0.
  float weight_decay = 1e-2f;
  /// Normalise by the running maximum of v (AMSGrad, Reddi et al. 2018) instead of v.
  bool amsgrad = false;

  /// Checks the hyper-parameters.
  /// @throws cai::config_error naming the field, its value and the accepted range. Accepts what PyTorch
  ///         accepts, except that every value must be finite.
  void validate() const {
    auto fail = [](const char* field, float value, const char* rule) {
      throw config_error(std::string("cai::adamw: ") + field + " = " + detail::sgd_number(value) +
                         " is invalid: " + rule);
    };
    if (!(std::isfinite(learning_rate) && learning_rate >= 0.0f))
      fail("learning_rate", learning_rate, "it must be a finite number >= 0 (typical: 1e-5 to 1e-3)");
    if (!(std::isfinite(beta1) && beta1 >= 0.0f && beta1 < 1.0f))
      fail("beta1", beta1, "it must be in [0, 1) (typical: 0.9)");
    if (!(std::isfinite(beta2) && beta2 >= 0.0f && beta2 < 1.0f))
      fail("beta2", beta2, "it must be in [0, 1) (typical: 0.95 to 0.999)");
    if (!(std::isfinite(eps) && eps >= 0.0f))
      fail("eps", eps, "it must be a finite number >= 0 (typical: 1e-8)");
    if (!(std::isfinite(weight_decay) && weight_decay >= 0.0f))
      fail("weight_decay", weight_decay, "it must be a finite number >= 0 (typical: 0 to 0.1)");
  }

  /// The optimizer's state for one parameter tensor: the first and second moments m and v (and the
  /// running maximum of v with AMSGrad), allocated at the first step, and the step count t.
  ///
  /// @tparam Param a contiguous sized buffer of `float` or `double`; the gradient has the same type.
  template <detail::sgd_parameter Param>
  class state {
   public:
    /// `float` or `double`: the element-wise arithmetic of the step is done in this type.
    using value_type = detail::sgd_element_t<Param>;

    /// @param optimizer the hyper-parameters, read again at every `update`.
    /// @param param the parameter tensor this state will update; only its size is kept.
    /// @pre `optimizer` outlives this state (the state keeps a pointer to it).
    /// @throws cai::config_error if `optimizer.validate()` throws.
    state(const adamw& optimizer, const Param& param)
        : optimizer_(&optimizer), size_(static_cast<std::size_t>(std::ranges::size(param))) {
      optimizer.validate();
    }
    /// A state must not outlive its optimizer: binding a temporary `adamw` is refused.
    state(const adamw&& optimizer, const Param& param) = delete;

    /// Applies one AdamW step to `param` in place.
    /// @param param the parameter tensor, with the size it had when the state was created.
    /// @param gradient d loss / d param, the same size as `param`.
    /// @throws cai::validation_error if a size differs; cai::config_error if the hyper-parameters are
    ///         invalid. On a throw, `param` and the state are unchanged.
    void update(Param& param, const Param& gradient) {
      const adamw& opt = *optimizer_;
      opt.validate();
      const auto n = static_cast<std::size_t>(std::ranges::size(param));
      const auto n_gradient = static_cast<std::size_t>(std::ranges::size(gradient));
      if (n != size_)
        throw validation_error("cai::adamw::state::update: the parameter has " + std::to_string(n) +
                               " elements but this state was created for " + std::to_string(size_) +
                               "; create one state per parameter tensor");
      if (n_gradient != n)
        throw validation_error("cai::adamw::state::update: the gradient has " + std::to_string(n_gradient) +
                               " elements but the parameter has " + std::to_string(n) +
                               "; pass the gradient of this parameter (same shape)");

      // Allocate before touching anything, so that a failed allocation leaves the state as it was.
      if (m_.size() != n || v_.size() != n) {
        std::vector<value_type> m(n, value_type(0)), v(n, value_type(0));
        m_ = std::move(m);
        v_ = std::move(v);
      }
      if (opt.amsgrad && max_v_.size() != n) max_v_.assign(n, value_type(0));

      // The scalars, as PyTorch's _single_tensor_adam computes them: in double, then rounded to T.
      const double t = static_cast<double>(steps_ + 1);
      const double lr = opt.learning_rate;
      const double bias_correction1 = 1.0 - std::pow(static_cast<double>(opt.beta1), t);
      const double bias_correction2 = 1.0 - std::pow(static_cast<double>(opt.beta2), t);
      detail::adamw_coefficients<value_type> c{};
      c.decay = static_cast<value_type>(1.0 - lr * static_cast<double>(opt.weight_decay));
      c.m_weight = static_cast<value_type>(1.0 - static_cast<double>(opt.beta1));
      c.beta2 = static_cast<value_type>(opt.beta2);
      c.v_weight = static_cast<value_type>(1.0 - static_cast<double>(opt.beta2));
      c.bc2_sqrt = static_cast<value_type>(std::sqrt(bias_correction2));
      c.eps = static_cast<value_type>(opt.eps);
      c.step_size = static_cast<value_type>(lr / bias_correction1);

      value_type* theta = std::ranges::data(param);       // theta: (n)
      const value_type* g = std::ranges::data(gradient);  // g: (n)
      detail::adamw_step(theta, g, m_.data(), v_.data(), opt.amsgrad ? max_v_.data() : nullptr, n, c);
      ++steps_;
    }

    /// The number of `update` calls that succeeded, t.
    [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
    /// The first moment m_t: empty until the first step, then one value per parameter.
    [[nodiscard]] std::span<const value_type> first_moment() const noexcept { return m_; }
    /// The second moment v_t: empty until the first step, then one value per parameter.
    [[nodiscard]] std::span<const value_type> second_moment() const noexcept { return v_; }
    /// The running maximum of v (AMSGrad): empty until the first step with `amsgrad`.
    [[nodiscard]] std::span<const value_type> max_second_moment() const noexcept { return max_v_; }

    /// Writes the step count and the moments to `out` in the binary format of train/detail/state_io.hpp
    /// (kind "adamw", three buffers: m, v, max v); `load` reads it back bit for bit. The hyper-parameters
    /// are not written: they belong to the `adamw`, which the checkpoint keeps with the configuration.
    /// @throws cai::io_error if the stream fails.
    void save(std::ostream& out) const {
      detail::optimizer_state_writer w(out, "cai::adamw::state::save");
      w.header({.kind = "adamw", .value_bytes = sizeof(value_type), .steps = steps_, .size = size_, .buffers = 3});
      w.buffer(std::span<const value_type>(m_));
      w.buffer(std::span<const value_type>(v_));
      w.buffer(std::span<const value_type>(max_v_));
    }

    /// Replaces the step count and the moments with those that `save` wrote, reading exactly those bytes.
    /// @param in a stream positioned at the start of a saved adamw state.
    /// @param source the file name, for error messages.
    /// @throws cai::io_error if the stream ends early or does not hold an optimizer state;
    ///         cai::validation_error if it holds another optimizer's state, another value type or another
    ///         parameter size. On a throw, the state is unchanged.
    void load(std::istream& in, const std::string& source = "<stream>") {
      detail::optimizer_state_reader r(in, source, "cai::adamw::state::load");
      const auto h = r.header();
      r.expect<value_type>(h, "adamw", size_, 3);
      auto m = r.buffer<value_type>(size_, "first moment");
      auto v = r.buffer<value_type>(size_, "second moment");
      auto max_v = r.buffer<value_type>(size_, "maximum of the second moment");
      if (m.size() != v.size())
        throw validation_error(source + ": cai::adamw::state::load: the first moment has " +
                               std::to_string(m.size()) + " elements but the second moment has " +
                               std::to_string(v.size()) + "; the optimizer state is corrupt");
      if (h.steps != 0 && m.empty())
        throw validation_error(source + ": cai::adamw::state::load: the state has taken " +
                               std::to_string(h.steps) + " steps but holds no moments; the optimizer state is corrupt");
      steps_ = static_cast<std::size_t>(h.steps);
      m_ = std::move(m);
      v_ = std::move(v);
      max_v_ = std::move(max_v);
    }

   private:
    const adamw* optimizer_;
    std::size_t size_;
    std::size_t steps_ = 0;
    std::vector<value_type> m_;
    std::vector<value_type> v_;
    std::vector<value_type> max_v_;
  };
};

}  // namespace cai
