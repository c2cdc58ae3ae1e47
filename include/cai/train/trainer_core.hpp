/// @file train/trainer_core.hpp
/// What every trainer of `train/` shares: the options of a run, the order in which it visits its data,
/// and `optimizer_step`, which turns accumulated gradients into an update: it checks that every gradient
/// is finite (naming the tensor when one is not), clips by global norm, applies the learning-rate
/// schedule and steps the optimizer state of each parameter group; and it saves and restores all of
/// that in a checkpoint, so that a resumed run gives the uninterrupted run's weights bit for bit.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"
#include "cai/random.hpp"
#include "cai/train/backend_ops.hpp"
#include "cai/train/callbacks.hpp"
#include "cai/train/checkpoint.hpp"
#include "cai/train/parameters.hpp"
#include "cai/train/schedule.hpp"

namespace cai {

/// The options every trainer shares.
struct train_options {
  /// Sequences (SFT), pairs (preference model, DPO) or prompts (PPO) per micro-batch.
  std::size_t batch_size = 8;
  /// Micro-batches whose gradients are summed into one optimizer step.
  std::size_t gradient_accumulation = 1;
  /// Passes over the data; used when `max_steps` is 0.
  std::size_t epochs = 1;
  /// Optimizer steps of the run; 0: as many as `epochs` passes need.
  std::size_t max_steps = 0;
  /// Clip the global gradient norm to this; 0: no clipping.
  double max_grad_norm = 1.0;
  /// Fixes the data order, the initialisation of new heads and sampling: equal seeds, equal runs.
  std::uint64_t seed = 0;
  /// Where checkpoints go (empty: none). A run finding a checkpoint there resumes from it.
  std::filesystem::path checkpoint_dir;
  /// A checkpoint every this many steps (0: only at the end), and always after the last step.
  std::size_t checkpoint_every = 0;

  void validate(const char* who) const {
    auto fail = [who](const std::string& what) { throw config_error(std::string(who) + ": " + what); };
    if (batch_size == 0) fail("batch_size = 0 is invalid: it must be >= 1");
    if (gradient_accumulation == 0) fail("gradient_accumulation = 0 is invalid: it must be >= 1");
    if (max_steps == 0 && epochs == 0) fail("epochs and max_steps are both 0: the run would do nothing");
    if (!(std::isfinite(max_grad_norm) && max_grad_norm >= 0.0))
      fail("max_grad_norm = " + std::to_string(max_grad_norm) + " is invalid: it must be >= 0 (0: no clipping)");
  }

  /// The optimizer steps of a run over `examples` items.
  [[nodiscard]] std::size_t total_steps(std::size_t examples) const {
    if (max_steps != 0) return max_steps;
    const std::size_t per_step = batch_size * gradient_accumulation;
    return (epochs * examples + per_step - 1) / per_step;
  }
};

/// What a trainer's `train` returns.
struct train_result {
  std::size_t steps = 0;         ///< optimizer steps done in total (counting those before a resume)
  std::size_t run_steps = 0;     ///< steps done by this call
  double loss = 0.0;             ///< the mean loss of the last step
  std::size_t tokens = 0;        ///< tokens processed by this call
  double seconds = 0.0;          ///< wall time of this call
  bool resumed = false;          ///< started from a checkpoint
  bool stopped_early = false;    ///< a callback asked to stop
  std::map<std::string, double> metrics;  ///< the last step's further numbers
};

/// The order in which a run visits `n` items: a fresh permutation per epoch, from the seed. Item k of
/// the run's stream (k = step * items per step + i) is `at(k)`; the same on every platform.
class data_order {
 public:
  data_order(std::size_t n, std::uint64_t seed) : n_(n), seed_(seed) {}
  [[nodiscard]] std::size_t at(std::size_t k) {
    const std::size_t epoch = k / n_;
    if (epoch != epoch_ || order_.empty()) {
      order_.resize(n_);
      std::iota(order_.begin(), order_.end(), std::size_t{0});
      rng g(derive_seed(seed_, {epoch, 0x0da7a}));
      for (std::size_t i = n_; i > 1; --i) std::swap(order_[i - 1], order_[g.uniform_index(i)]);
      epoch_ = epoch;
    }
    return order_[k % n_];
  }

 private:
  std::size_t n_;
  std::uint64_t seed_;
  std::size_t epoch_ = 0;
  std::vector<std::size_t> order_;
};

/// Finds the first non-finite value of `values`. @return its index, or nothing.
template <class T>
[[nodiscard]] std::optional<std::size_t> first_non_finite(std::span<const T> values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i])) return i;
  return std::nullopt;
}

/// Throws `numeric_error` for a loss that is not finite.
inline void check_loss(double loss, const char* phase, std::size_t step, const char* what = "the loss") {
  if (!std::isfinite(loss))
    throw numeric_error(phase, step, what, std::isnan(loss) ? "is NaN" : "is infinite");
}

namespace detail {

template <class P>
struct params_backend {
  using type = cpu_t;
};
template <class P>
  requires requires { typename P::backend_type; }
struct params_backend<P> {
  using type = typename P::backend_type;
};

}  // namespace detail

/// The backend of a parameter set: its `backend_type`, or `cpu_t` for a set that names none.
template <class Params>
using params_backend_t = typename detail::params_backend<Params>::type;

/// One optimizer over the trainable parameters of a model, plus further parameter groups (a reward or
/// value head): the update of a training step, and its checkpoint. Every buffer stays in the backend's
/// memory: the checks, the norm and the clipping are backend functions (train/backend_ops.hpp, and
/// backend/cuda_train.cuh for `cuda_t`); only scalars, the element named in an error and the
/// checkpoint's copies cross to the host.
/// @tparam Params models `trainable_parameters`. @tparam Optimizer models `optimizer` for its storage
/// (on `cuda_t`: `adamw`). @tparam Schedule models `lr_schedule`.
template <trainable_parameters Params, class Optimizer, lr_schedule Schedule = constant_schedule>
class optimizer_step {
 public:
  using backend_type = params_backend_t<Params>;
  using storage_type = typename Params::storage_type;
  using state_type = optimizer_state_t<Optimizer, storage_type>;

  optimizer_step(Params& params, Optimizer optimizer, Schedule schedule, double max_grad_norm)
      : params_(&params), optimizer_(std::move(optimizer)), schedule_(std::move(schedule)),
        base_lr_(optimizer_.learning_rate), max_grad_norm_(max_grad_norm) {
    optimizer_.validate();
  }
  optimizer_step(const optimizer_step&) = delete;  // states point at optimizer_
  optimizer_step& operator=(const optimizer_step&) = delete;

  /// A further parameter group (a head); `values` and `gradients` must outlive this object.
  void add_group(std::string name, storage_type& values, storage_type& gradients) {
    groups_.push_back({std::move(name), &values, &gradients, std::nullopt});
  }

  /// Sets every gradient (the parameters' and the groups') to zero.
  void zero_grad() {
    params_->zero_grad();
    for (auto& g : groups_) fill(backend_type{}, g.gradients->data(), 0.0f, g.gradients->size());
  }

  /// Checks, clips and applies the gradients as step `step` (1-based) of `phase`.
  /// @return the global gradient norm before clipping.
  /// @throws numeric_error naming the tensor whose gradient is not finite; nothing is updated then.
  double apply(const char* phase, std::size_t step) {
    const backend_type be{};
    auto& grads = params_->gradients();
    if (auto bad = first_non_finite(be, grads.data(), grads.size())) {
      float x = 0.0f;
      copy_to_host(be, &x, grads.data() + *bad, 1);
      throw numeric_error(phase, step, "the gradient of " + params_->tensor_name(*bad),
                          std::string("holds ") + (std::isnan(x) ? "NaN" : "an infinity") + " (element " +
                              std::to_string(*bad) + ")");
    }
    for (auto& g : groups_)
      if (auto bad = first_non_finite(be, g.gradients->data(), g.gradients->size()))
        throw numeric_error(phase, step, "the gradient of " + g.name,
                            "is not finite (element " + std::to_string(*bad) + ")");
    double total = squared_norm(be, grads.data(), grads.size());
    for (auto& g : groups_) total += squared_norm(be, g.gradients->data(), g.gradients->size());
    const double norm = std::sqrt(total);
    if (max_grad_norm_ > 0.0 && norm > max_grad_norm_) {
      const auto factor = static_cast<float>(max_grad_norm_ / (norm + 1e-6));
      scale_in_place(be, grads.data(), factor, grads.size());
      for (auto& g : groups_) scale_in_place(be, g.gradients->data(), factor, g.gradients->size());
    }
    optimizer_.learning_rate = static_cast<float>(base_lr_ * schedule_(step - 1));
    if (!state_) state_.emplace(optimizer_, params_->values());
    state_->update(params_->values(), grads);
    for (auto& g : groups_) {
      if (!g.state) g.state.emplace(optimizer_, *g.values);
      g.state->update(*g.values, *g.gradients);
    }
    return norm;
  }

  /// The learning rate of the last step.
  [[nodiscard]] double learning_rate() const noexcept { return optimizer_.learning_rate; }

  /// Puts the trainable values, the groups' values and every optimizer state into `c`.
  /// @throws numeric_error when a value is not finite (an update overflowed): a checkpoint is never
  ///         written with it, so the last good one stays.
  void save(checkpoint& c, const char* phase = "train", std::size_t step = 0) const {
    const backend_type be{};
    const auto& v = params_->values();
    if (auto bad = first_non_finite(be, v.data(), v.size()))
      throw numeric_error(phase, step, "the parameter " + params_->tensor_name(*bad),
                          "is not finite after the update (element " + std::to_string(*bad) + ")");
    for (const auto& g : groups_)
      if (auto bad = first_non_finite(be, g.values->data(), g.values->size()))
        throw numeric_error(phase, step, "the parameter " + g.name, "is not finite after the update");
    c.tensors["values"] = host_copy(v);
    for (const auto& g : groups_) c.tensors["group." + g.name] = host_copy(*g.values);
    if (state_) c.blobs["optimizer"] = state_blob(*state_);
    for (const auto& g : groups_)
      if (g.state) c.blobs["optimizer." + g.name] = state_blob(*g.state);
  }

  /// Restores what `save` put into `c`.
  void load(const checkpoint& c) {
    const backend_type be{};
    auto& v = params_->values();
    const auto& saved = c.tensor("values", v.size());
    copy_from_host(be, v.data(), saved.data(), saved.size());
    for (auto& g : groups_) {
      const auto& s = c.tensor("group." + g.name, g.values->size());
      copy_from_host(be, g.values->data(), s.data(), s.size());
    }
    if (c.blobs.count("optimizer") != 0) {
      state_.emplace(optimizer_, params_->values());
      std::istringstream in(c.blob("optimizer"));
      state_->load(in, "checkpoint optimizer.bin");
    }
    for (auto& g : groups_)
      if (c.blobs.count("optimizer." + g.name) != 0) {
        g.state.emplace(optimizer_, *g.values);
        std::istringstream in(c.blob("optimizer." + g.name));
        g.state->load(in, "checkpoint optimizer." + g.name + ".bin");
      }
  }

 private:
  struct group {
    std::string name;
    storage_type* values;
    storage_type* gradients;
    std::optional<state_type> state;
  };
  static std::vector<float> host_copy(const storage_type& s) {
    std::vector<float> host(s.size());
    copy_to_host(backend_type{}, host.data(), s.data(), s.size());
    return host;
  }
  static std::string state_blob(const state_type& s) {
    std::ostringstream out;
    s.save(out);
    return std::move(out).str();
  }

  Params* params_;
  Optimizer optimizer_;
  Schedule schedule_;
  double base_lr_;
  double max_grad_norm_;
  std::optional<state_type> state_;
  std::vector<group> groups_;
};

namespace detail {

/// The bookkeeping of a run: progress, timing, checkpoints and callbacks, shared by the trainers.
template <class Step>
struct run_loop {
  const char* phase;
  const train_options& options;
  Step& step;
  std::size_t total = 0;
  std::size_t done = 0;       ///< steps done (counting a resumed checkpoint's)
  std::size_t first = 0;      ///< the step this call started from
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  train_progress progress;

  /// Restores from options.checkpoint_dir when a checkpoint is there, checking it is one of this phase.
  /// @param extra restores the trainer's own records from the checkpoint.
  template <class Extra>
  bool resume(Extra&& extra) {
    progress.phase = phase;
    progress.total_steps = total;
    if (options.checkpoint_dir.empty()) return false;
    auto c = checkpoint::load(options.checkpoint_dir);
    if (!c) return false;
    const std::string where = options.checkpoint_dir.string();
    if (c->meta.value("phase", std::string()) != phase)
      throw validation_error(where + ": the checkpoint is of phase '" + c->meta.value("phase", std::string()) +
                             "', not '" + phase + "'; use another checkpoint_dir");
    step.load(*c);
    extra(*c);
    done = first = c->meta.value("step", std::size_t{0});
    return true;
  }

  template <class Extra>
  void save(Extra&& extra) {
    if (options.checkpoint_dir.empty()) return;
    checkpoint c;
    c.meta = {{"phase", phase}, {"step", done}, {"total_steps", total}, {"seed", std::to_string(options.seed)}};
    step.save(c, phase, done);
    extra(c);
    c.save(options.checkpoint_dir);
  }

  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  /// After step `step` (its progress filled in): the periodic checkpoint, then the callbacks.
  /// @return true when a callback asks to stop.
  template <class Extra, class... Callbacks>
  bool after_step(std::size_t step, Extra&& extra, Callbacks&... callbacks) {
    if (options.checkpoint_every != 0 && step % options.checkpoint_every == 0 && step < total) {
      save(extra);
      notify_checkpoint(progress, options.checkpoint_dir, callbacks...);
    }
    return notify_step(progress, callbacks...);
  }

  /// After the last step: the final checkpoint (unless a resumed run had nothing left to do), the
  /// callbacks' `on_end`, and the counters of `result`.
  template <class Extra, class... Callbacks>
  void finish(train_result& result, Extra&& extra, Callbacks&... callbacks) {
    if (done != first || !result.resumed) {
      save(extra);
      if (!options.checkpoint_dir.empty()) notify_checkpoint(progress, options.checkpoint_dir, callbacks...);
    }
    notify_end(progress, callbacks...);
    result.steps = done;
    result.run_steps = done - first;
    result.seconds = seconds();
    result.metrics = progress.metrics;
    result.metrics.erase("run_steps");
  }
};

}  // namespace detail

}  // namespace cai
