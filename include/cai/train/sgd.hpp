/// @file train/sgd.hpp
/// Stochastic gradient descent (Robbins and Monro 1951) with optional momentum, heavy-ball (Polyak 1964)
/// or Nesterov (Sutskever et al. 2013), and optional L2 weight decay: `cai::sgd`, a model of the
/// `optimizer` concept.
///
/// The step is PyTorch's `torch.optim.SGD`, term for term, so that hyper-parameters carry over. With
/// learning rate γ, momentum μ, dampening τ, weight decay λ, parameters θ and gradient g_t at step t:
///
///     if λ ≠ 0:  g_t ← g_t + λ θ_{t-1}                  (L2 penalty added to the gradient, not decoupled)
///     if μ ≠ 0:  b_t ← g_t                    if t = 1 (the first step with momentum)
///                b_t ← μ b_{t-1} + (1 − τ) g_t  otherwise
///                g_t ← g_t + μ b_t  if nesterov, else g_t ← b_t
///     θ_t ← θ_{t-1} − γ g_t
///
/// (https://pytorch.org/docs/stable/generated/torch.optim.SGD.html). For decoupled weight decay use
/// AdamW-style optimizers instead.
///
/// As in ensmallen, the per-parameter state is a nested class template created when training starts, so
/// that callers never spell its type; it reads the hyper-parameters of the `sgd` that created it at every
/// step, so a learning-rate schedule changes `opt.learning_rate` and the next `update` uses it.
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <istream>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/train/detail/state_io.hpp"

namespace cai {

namespace detail {

/// The element type that `std::ranges::data` exposes for a `P&`.
template <class P>
using sgd_element_t = std::remove_reference_t<decltype(*std::ranges::data(std::declval<P&>()))>;

/// A parameter tensor that `sgd` can update in place: a sized buffer of contiguous, writable `float` or
/// `double` (`std::vector<float>`, `std::vector<double>`, `std::span<float>`, `std::array<double, N>`,
/// `Eigen::VectorXf`, `Eigen::MatrixXd`, ...), read through `std::ranges::data` and `std::ranges::size`.
template <class P>
concept sgd_parameter = requires(P& p, const P& cp) {
  std::ranges::data(p);
  std::ranges::data(cp);
  std::ranges::size(p);
  std::ranges::size(cp);
} && (std::same_as<sgd_element_t<P>, float> || std::same_as<sgd_element_t<P>, double>);

inline std::string sgd_number(float value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace detail

/// Stochastic gradient descent with optional momentum (heavy-ball or Nesterov) and L2 weight decay, as
/// defined by PyTorch's `torch.optim.SGD` (see the file comment for the formula).
///
/// An aggregate: `cai::sgd{.learning_rate = 0.1f, .momentum = 0.9f, .nesterov = true}`. The defaults are
/// PyTorch's (learning rate 1e-2, no momentum, no weight decay).
///
/// Models `cai::optimizer<cai::sgd, Param>` for every `Param` that is a contiguous sized buffer of `float`
/// or `double`.
struct sgd {
  /// γ, the step size; finite and >= 0.
  float learning_rate = 1e-2f;
  /// μ, the momentum factor; 0 (plain SGD) or in (0, 1).
  float momentum = 0.0f;
  /// Nesterov momentum instead of heavy-ball; needs `momentum > 0` and `dampening == 0`.
  bool nesterov = false;
  /// λ, the L2 penalty added to the gradient (coupled weight decay, as in PyTorch's SGD); finite, >= 0.
  float weight_decay = 0.0f;
  /// τ, the fraction of the gradient left out of the momentum buffer after the first step; in [0, 1].
  float dampening = 0.0f;

  /// Checks the hyper-parameters.
  /// @throws cai::config_error naming the field, its value and the accepted range. Accepts what PyTorch
  ///         accepts, except that `momentum` must be below 1 (at 1 or above the velocity grows without
  ///         bound) and every value must be finite.
  void validate() const {
    auto fail = [](const char* field, float value, const char* rule) {
      throw config_error(std::string("cai::sgd: ") + field + " = " + detail::sgd_number(value) +
                         " is invalid: " + rule);
    };
    if (!(std::isfinite(learning_rate) && learning_rate >= 0.0f))
      fail("learning_rate", learning_rate, "it must be a finite number >= 0 (typical: 1e-3 to 1e-1)");
    if (!(std::isfinite(momentum) && momentum >= 0.0f && momentum < 1.0f))
      fail("momentum", momentum, "it must be 0 (plain SGD) or in (0, 1) (typical: 0.9)");
    if (!(std::isfinite(weight_decay) && weight_decay >= 0.0f))
      fail("weight_decay", weight_decay, "it must be a finite number >= 0 (typical: 0 to 1e-4)");
    if (!(std::isfinite(dampening) && dampening >= 0.0f && dampening <= 1.0f))
      fail("dampening", dampening, "it must be in [0, 1]");
    if (nesterov && momentum <= 0.0f)
      fail("momentum", momentum, "Nesterov momentum needs momentum > 0; set nesterov = false or a momentum");
    if (nesterov && dampening != 0.0f)
      fail("dampening", dampening, "Nesterov momentum needs dampening = 0 (as in PyTorch)");
  }

  /// The optimizer's state for one parameter tensor: the momentum buffer b (allocated at the first step
  /// that uses momentum) and the step count.
  ///
  /// @tparam Param a contiguous sized buffer of `float` or `double`; the gradient has the same type.
  template <detail::sgd_parameter Param>
  class state {
   public:
    /// `float` or `double`: the arithmetic of the step is done in this type.
    using value_type = detail::sgd_element_t<Param>;

    /// @param optimizer the hyper-parameters, read again at every `update`.
    /// @param param the parameter tensor this state will update; only its size is kept.
    /// @pre `optimizer` outlives this state (the state keeps a pointer to it).
    /// @throws cai::config_error if `optimizer.validate()` throws.
    state(const sgd& optimizer, const Param& param)
        : optimizer_(&optimizer), size_(static_cast<std::size_t>(std::ranges::size(param))) {
      optimizer.validate();
    }
    /// A state must not outlive its optimizer: binding a temporary `sgd` is refused.
    state(const sgd&& optimizer, const Param& param) = delete;

    /// Applies one SGD step to `param` in place.
    /// @param param the parameter tensor, with the size it had when the state was created.
    /// @param gradient d loss / d param, the same size as `param`.
    /// @throws cai::validation_error if a size differs; cai::config_error if the hyper-parameters are
    ///         invalid. On a throw, `param` and the state are unchanged.
    void update(Param& param, const Param& gradient) {
      const sgd& opt = *optimizer_;
      opt.validate();
      const auto n = static_cast<std::size_t>(std::ranges::size(param));
      const auto n_gradient = static_cast<std::size_t>(std::ranges::size(gradient));
      if (n != size_)
        throw validation_error("cai::sgd::state::update: the parameter has " + std::to_string(n) +
                               " elements but this state was created for " + std::to_string(size_) +
                               "; create one state per parameter tensor");
      if (n_gradient != n)
        throw validation_error("cai::sgd::state::update: the gradient has " +
                               std::to_string(n_gradient) + " elements but the parameter has " +
                               std::to_string(n) + "; pass the gradient of this parameter (same shape)");

      value_type* theta = std::ranges::data(param);    // theta: (n)
      const value_type* g = std::ranges::data(gradient);  // g: (n)
      const auto lr = static_cast<value_type>(opt.learning_rate);
      const auto mu = static_cast<value_type>(opt.momentum);
      const auto lambda = static_cast<value_type>(opt.weight_decay);
      const auto keep = value_type(1) - static_cast<value_type>(opt.dampening);

      if (mu == value_type(0)) {
        for (std::size_t i = 0; i < n; ++i) {
          value_type d = g[i];
          if (lambda != value_type(0)) d += lambda * theta[i];
          theta[i] -= lr * d;
        }
      } else {
        const bool first = velocity_.size() != n;
        if (first) velocity_.assign(n, value_type(0));
        value_type* b = velocity_.data();  // b: (n)
        for (std::size_t i = 0; i < n; ++i) {
          value_type d = g[i];
          if (lambda != value_type(0)) d += lambda * theta[i];
          b[i] = first ? d : mu * b[i] + keep * d;
          d = opt.nesterov ? d + mu * b[i] : b[i];
          theta[i] -= lr * d;
        }
      }
      ++steps_;
    }

    /// The number of `update` calls that succeeded.
    [[nodiscard]] std::size_t steps() const noexcept { return steps_; }
    /// The momentum buffer b: empty until the first step with momentum, then one value per parameter.
    [[nodiscard]] std::span<const value_type> velocity() const noexcept { return velocity_; }

    /// Writes the step count and the momentum buffer to `out` in the binary format of
    /// train/detail/state_io.hpp (kind "sgd", one buffer); `load` reads it back bit for bit. The
    /// hyper-parameters are not written: they belong to the `sgd`, which the checkpoint keeps with the
    /// configuration.
    /// @throws cai::io_error if the stream fails.
    void save(std::ostream& out) const {
      detail::optimizer_state_writer w(out, "cai::sgd::state::save");
      w.header({.kind = "sgd", .value_bytes = sizeof(value_type), .steps = steps_, .size = size_, .buffers = 1});
      w.buffer(std::span<const value_type>(velocity_));
    }

    /// Replaces the step count and the momentum buffer with those that `save` wrote, reading exactly those
    /// bytes.
    /// @param in a stream positioned at the start of a saved sgd state.
    /// @param source the file name, for error messages.
    /// @throws cai::io_error if the stream ends early or does not hold an optimizer state;
    ///         cai::validation_error if it holds another optimizer's state, another value type or another
    ///         parameter size. On a throw, the state is unchanged.
    void load(std::istream& in, const std::string& source = "<stream>") {
      detail::optimizer_state_reader r(in, source, "cai::sgd::state::load");
      const auto h = r.header();
      r.expect<value_type>(h, "sgd", size_, 1);
      auto velocity = r.buffer<value_type>(size_, "momentum buffer");
      steps_ = static_cast<std::size_t>(h.steps);
      velocity_ = std::move(velocity);
    }

   private:
    const sgd* optimizer_;
    std::size_t size_;
    std::size_t steps_ = 0;
    std::vector<value_type> velocity_;
  };
};

}  // namespace cai
