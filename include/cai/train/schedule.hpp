/// @file train/schedule.hpp
/// Learning-rate schedules as small composable policies: each gives the factor by which the base learning
/// rate is multiplied at a (0-based) optimizer step, and `apply_schedule` writes base × factor into an
/// optimizer's `learning_rate` before the step.
///
///  - `constant_schedule`: 1.
///  - `linear_decay{T, r}`: from 1 at step 0 down to r at step T, then r.
///  - `cosine_decay{T, r}`: half a cosine from 1 at step 0 down to r at step T (Loshchilov and Hutter
///    2017, SGDR, arXiv:1608.03983, without restarts), then r.
///  - `warmup<Inner>{W, inner}`: s / W for s < W (a linear warm-up from 0), then inner(s − W).
///
/// The values are those of Hugging Face transformers' schedules (transformers/optimization.py), computed
/// in double in the same order: `warmup{W, linear_decay{T − W}}` is `get_linear_schedule_with_warmup(W, T)`,
/// `warmup{W, cosine_decay{T − W}}` is `get_cosine_schedule_with_warmup(W, T)` (num_cycles = 0.5),
/// `warmup{W, cosine_decay{T − W, r}}` is `get_cosine_with_min_lr_schedule_with_warmup(W, T,
/// min_lr_rate = r)` and `warmup{W, constant_schedule{}}` is `get_constant_schedule_with_warmup(W)`, for
/// every step up to T. Like them, the warm-up starts at 0: the first step (s = 0) has learning rate 0.
/// Past T, the cosine holds r where Hugging Face's formula would rise again. The cosine is also PyTorch's
/// `CosineAnnealingLR(T_max = T, eta_min = r × lr)` in its closed form.
///
/// TODO: the `lr_schedule` concept belongs in concepts.hpp with the others; it is here until it moves.
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <numbers>
#include <string>

#include "cai/error.hpp"

namespace cai {

/// A learning-rate schedule.
///
/// Requirements:
///  1. `s(step)` on a `const S` with a `std::size_t` step (0-based: the step about to be taken) returns a
///     `double`: the factor by which the base learning rate is multiplied at that step.
///  2. The factor is finite and >= 0, and depends on nothing but `s` and the step (no hidden state), so a
///     run resumed from a checkpoint at step k continues the schedule exactly.
///  3. Optionally, `s.validate()` throws `cai::config_error` for values that cannot work;
///     `apply_schedule` calls it when it exists.
///
/// Modelled by: `constant_schedule`, `linear_decay`, `cosine_decay`, `warmup<Inner>`.
template <class S>
concept lr_schedule = requires(const S& s, std::size_t step) {
  { s(step) } -> std::same_as<double>;
};

namespace detail {

inline std::string schedule_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

inline void check_schedule_length(const char* who, std::size_t total_steps) {
  if (total_steps == 0)
    throw config_error(std::string(who) + ": total_steps = 0 is invalid: the decay needs at least one step "
                                          "(set it to the number of optimizer steps after the warm-up)");
}

inline void check_schedule_ratio(const char* who, const char* field, double ratio) {
  if (!(ratio >= 0.0 && ratio <= 1.0))
    throw config_error(std::string(who) + ": " + field + " = " + schedule_number(ratio) +
                       " is invalid: it must be in [0, 1] (a fraction of the base learning rate; typical: 0 "
                       "or 0.1)");
}

}  // namespace detail

/// The factor 1 at every step: the base learning rate throughout.
struct constant_schedule {
  /// Nothing can be wrong.
  void validate() const noexcept {}
  /// @return 1.
  [[nodiscard]] double operator()(std::size_t /*step*/) const noexcept { return 1.0; }
};

/// A linear decay from 1 at step 0 to `final_ratio` at step `total_steps`, then `final_ratio`:
///
///     f(s) = r + (1 − r) (T − min(s, T)) / T
///
/// With r = 0 this is, value for value, the decay of Hugging Face's `get_linear_schedule_with_warmup`,
/// max(0, (T − s) / T), when wrapped in `warmup` (see the file comment).
struct linear_decay {
  /// T, the number of steps of the decay; >= 1.
  std::size_t total_steps = 1;
  /// r, the factor reached at step T and kept afterwards; in [0, 1].
  double final_ratio = 0.0;

  /// @throws cai::config_error if `total_steps` is 0 or `final_ratio` is outside [0, 1].
  void validate() const {
    detail::check_schedule_length("cai::linear_decay", total_steps);
    detail::check_schedule_ratio("cai::linear_decay", "final_ratio", final_ratio);
  }
  /// @pre `validate()` does not throw.
  [[nodiscard]] double operator()(std::size_t step) const noexcept {
    const std::size_t s = step < total_steps ? step : total_steps;
    const double left = static_cast<double>(total_steps - s) / static_cast<double>(total_steps);
    return final_ratio + (1.0 - final_ratio) * left;
  }
};

/// Half a cosine from 1 at step 0 to `min_ratio` at step `total_steps`, then `min_ratio`:
///
///     f(s) = r + (1 − r) · ½ (1 + cos(π min(s, T) / T))
///
/// computed in Hugging Face's order (`get_cosine_with_min_lr_schedule_with_warmup` with num_cycles = 0.5:
/// ½ (1 + cos(π p)) (1 − r) + r with p = s / T), so wrapped in `warmup` it gives the same doubles for
/// s <= T. This is also PyTorch's `CosineAnnealingLR` closed form, η_min + (η − η_min)(1 + cos(π s/T))/2.
struct cosine_decay {
  /// T, the number of steps of the decay; >= 1.
  std::size_t total_steps = 1;
  /// r, the factor reached at step T and kept afterwards; in [0, 1].
  double min_ratio = 0.0;

  /// @throws cai::config_error if `total_steps` is 0 or `min_ratio` is outside [0, 1].
  void validate() const {
    detail::check_schedule_length("cai::cosine_decay", total_steps);
    detail::check_schedule_ratio("cai::cosine_decay", "min_ratio", min_ratio);
  }
  /// @pre `validate()` does not throw.
  [[nodiscard]] double operator()(std::size_t step) const noexcept {
    const std::size_t s = step < total_steps ? step : total_steps;
    const double progress = static_cast<double>(s) / static_cast<double>(total_steps);
    const double factor = 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress));
    const double scaled = factor * (1.0 - min_ratio) + min_ratio;
    return scaled > 0.0 ? scaled : 0.0;
  }
};

/// A linear warm-up from 0 over `warmup_steps` steps, then `inner`, restarted at 0:
///
///     f(s) = s / W          for s < W
///     f(s) = inner(s − W)   for s >= W
///
/// as Hugging Face's `get_*_schedule_with_warmup` do (whose decays last T − W steps after the warm-up:
/// give `inner` that length). With W = 0 it is `inner`.
/// @tparam Inner the schedule after the warm-up.
template <lr_schedule Inner = constant_schedule>
struct warmup {
  /// W, the number of warm-up steps; 0 for none.
  std::size_t warmup_steps = 0;
  /// The schedule from step W on, evaluated at s − W.
  Inner inner{};

  /// @throws cai::config_error if `inner.validate()` throws (when `Inner` has `validate`).
  void validate() const {
    if constexpr (requires { inner.validate(); }) inner.validate();
  }
  /// @pre `validate()` does not throw.
  [[nodiscard]] double operator()(std::size_t step) const {
    if (step < warmup_steps) return static_cast<double>(step) / static_cast<double>(warmup_steps);
    return inner(step - warmup_steps);
  }
};

template <class Inner>
warmup(std::size_t, Inner) -> warmup<Inner>;

/// Sets `opt.learning_rate` to `base_lr × schedule(step)`; call it before the optimizer step `step`
/// (0-based), as PyTorch's `LambdaLR` has set the rate before `optimizer.step()`.
/// @tparam Optimizer has a `learning_rate` member (`sgd`, `adamw`).
/// @param opt the optimizer whose states read `learning_rate` at their next `update`.
/// @param base_lr the learning rate that the factors multiply; finite and >= 0.
/// @param schedule the schedule; validated first when it has `validate()`.
/// @param step the 0-based index of the step about to be taken.
/// @throws cai::config_error if `base_lr` or the schedule is invalid, or the schedule returns a factor that
///         is not a finite number >= 0; `opt` is then unchanged.
template <class Optimizer, lr_schedule S>
  requires requires(Optimizer& o) { o.learning_rate = 1.0f; }
void apply_schedule(Optimizer& opt, float base_lr, const S& schedule, std::size_t step) {
  if (!(std::isfinite(base_lr) && base_lr >= 0.0f))
    throw config_error("cai::apply_schedule: base_lr = " + detail::schedule_number(base_lr) +
                       " is invalid: it must be a finite number >= 0 (typical: 1e-5 to 1e-3)");
  if constexpr (requires { schedule.validate(); }) schedule.validate();
  const double factor = schedule(step);
  if (!(std::isfinite(factor) && factor >= 0.0))
    throw config_error("cai::apply_schedule: the schedule returned " + detail::schedule_number(factor) +
                       " at step " + std::to_string(step) +
                       "; a schedule must return a finite factor >= 0: fix the schedule");
  opt.learning_rate = static_cast<float>(static_cast<double>(base_lr) * factor);
}

}  // namespace cai
