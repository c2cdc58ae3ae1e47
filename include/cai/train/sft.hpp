/// @file train/sft.hpp
/// Supervised fine-tuning (the SL-CAI stage of Bai et al. 2022, arXiv:2212.08073: fine-tune the model on
/// its own revised responses): `sft_trainer` minimises the token cross-entropy of the response tokens
/// given the prompt, the prompt's tokens masked out of the loss.
///
/// Batches are padded (each sequence a row, padded on the right to the longest of its batch) or packed
/// (sequences concatenated into rows of `max_length` tokens; as in most packing implementations, a
/// token may attend to the end of the previous sequence in its row, while the loss never crosses a
/// boundary). With gradient accumulation the loss of a step is the mean over all of the step's response
/// tokens, exactly, whatever their split into micro-batches.
///
/// Generic over the backend (through the model), the parameter set (`full_parameters` or
/// `lora_adapters`), the optimizer (`sgd`, `adamw`, ...) and the learning-rate schedule.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/train/trainer_core.hpp"

namespace cai {

/// One training sequence: the prompt (context, not learned) and the response (learned).
struct sft_sequence {
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> response;
};

/// The options of `sft_trainer`, beyond `train_options`.
struct sft_options {
  train_options train;
  /// Longest row; 0: the model's context length. Longer sequences lose their end.
  std::size_t max_length = 0;
  /// Concatenate sequences into rows of `max_length` tokens instead of padding each.
  bool packing = false;
  /// The token that fills padding (never learned, never attended to by real tokens).
  std::int32_t pad_id = 0;
};

/// A batch of rows ready for `transformer::forward_loss`.
struct token_batch_rows {
  std::size_t rows = 0, length = 0;
  std::vector<std::int32_t> ids;      // ids: (rows, length)
  std::vector<std::int32_t> targets;  // targets: (rows, length), -1 where not learned
  std::size_t learned = 0;            ///< targets >= 0
  std::size_t tokens = 0;             ///< real (non-padding) tokens
};

namespace detail {

/// One row of tokens with its per-position targets (-1: not learned).
struct sft_row {
  std::vector<std::int32_t> ids, targets;
};

inline sft_row make_sft_row(const sft_sequence& e, std::size_t max_length) {
  sft_row r;
  r.ids = e.prompt;
  r.ids.insert(r.ids.end(), e.response.begin(), e.response.end());
  if (r.ids.size() > max_length) r.ids.resize(max_length);
  r.targets.assign(r.ids.size(), -1);
  for (std::size_t t = 0; t + 1 < r.ids.size(); ++t)
    if (t + 1 >= e.prompt.size()) r.targets[t] = r.ids[t + 1];
  return r;
}

}  // namespace detail

/// Supervised fine-tuning (see the file comment).
/// @tparam Params models `trainable_parameters` (`full_parameters<Backend>` or `lora_adapters<Backend>`).
/// @tparam Optimizer models `optimizer` for `Params::storage_type` (e.g. `adamw`).
/// @tparam Schedule models `lr_schedule` (e.g. `warmup<cosine_decay>`).
template <trainable_parameters Params, class Optimizer, lr_schedule Schedule = constant_schedule>
class sft_trainer {
 public:
  /// @pre `params` (and its model) outlive the trainer.
  sft_trainer(Params& params, Optimizer optimizer, sft_options options, Schedule schedule = {})
      : params_(&params), options_(std::move(options)),
        step_(params, std::move(optimizer), std::move(schedule), options_.train.max_grad_norm) {
    options_.train.validate("sft_trainer");
    const std::size_t context = params.model().config().context_length;
    if (options_.max_length == 0 || options_.max_length > context) options_.max_length = context;
    if (options_.max_length < 2) throw config_error("sft_trainer: max_length must be >= 2");
  }

  [[nodiscard]] const sft_options& options() const noexcept { return options_; }

  /// Trains on `data` (see the file comment); resumes from `options.train.checkpoint_dir` when a
  /// checkpoint is there. With no callback, a `progress_bar` reports.
  /// @throws numeric_error when a loss or gradient is not finite (the last checkpoint stays intact);
  ///         validation_error for an empty dataset, a token outside the vocabulary or an example with
  ///         nothing to learn.
  template <class... Callbacks>
  train_result train(std::span<const sft_sequence> data, Callbacks&&... callbacks) {
    if constexpr (sizeof...(Callbacks) == 0) {
      progress_bar bar;
      return run(data, bar);
    } else {
      return run(data, callbacks...);
    }
  }
  template <class... Callbacks>
  train_result train(const std::vector<sft_sequence>& data, Callbacks&&... callbacks) {
    return train(std::span<const sft_sequence>(data), std::forward<Callbacks>(callbacks)...);
  }

  /// The rows that `train` builds from `data`: one per example, or packed.
  [[nodiscard]] std::vector<detail::sft_row> rows(std::span<const sft_sequence> data) const {
    const std::size_t V = params_->model().config().vocab_size;
    std::vector<detail::sft_row> out;
    for (std::size_t i = 0; i < data.size(); ++i) {
      const auto& e = data[i];
      for (auto id : e.prompt)
        if (id < 0 || static_cast<std::size_t>(id) >= V)
          throw validation_error("sft_trainer: example " + std::to_string(i) + " has prompt token " +
                                 std::to_string(id) + " outside the vocabulary (" + std::to_string(V) + ")");
      for (auto id : e.response)
        if (id < 0 || static_cast<std::size_t>(id) >= V)
          throw validation_error("sft_trainer: example " + std::to_string(i) + " has response token " +
                                 std::to_string(id) + " outside the vocabulary (" + std::to_string(V) + ")");
      if (e.response.empty() || e.prompt.size() >= options_.max_length)
        throw validation_error("sft_trainer: example " + std::to_string(i) +
                               (e.response.empty() ? " has an empty response"
                                                   : " has a prompt of " + std::to_string(e.prompt.size()) +
                                                         " tokens, which leaves no room for its response in " +
                                                         std::to_string(options_.max_length)));
      if (e.prompt.empty())
        throw validation_error("sft_trainer: example " + std::to_string(i) +
                               " has an empty prompt: start it with a beginning-of-text token");
      out.push_back(detail::make_sft_row(e, options_.max_length));
    }
    if (!options_.packing) return out;
    // packed: concatenate in a seeded order into rows of max_length
    std::vector<detail::sft_row> packed;
    data_order order(out.size(), derive_seed(options_.train.seed, {0x9ac4}));
    detail::sft_row current;
    for (std::size_t k = 0; k < out.size(); ++k) {
      const auto& r = out[order.at(k)];
      for (std::size_t t = 0; t < r.ids.size(); ++t) {
        current.ids.push_back(r.ids[t]);
        // the last token of a sequence has no target inside it: never predict the next sequence's start
        current.targets.push_back(t + 1 < r.ids.size() ? r.targets[t] : -1);
        if (current.ids.size() == options_.max_length) {
          current.targets.back() = -1;  // its target would be the first token of the next row
          packed.push_back(std::move(current));
          current = {};
        }
      }
    }
    if (!current.ids.empty()) packed.push_back(std::move(current));
    return packed;
  }

 private:
  template <class... Callbacks>
  train_result run(std::span<const sft_sequence> data, Callbacks&... callbacks) {
    if (data.empty()) throw validation_error("sft_trainer: the dataset is empty");
    const auto all = rows(data);
    const train_options& o = options_.train;
    detail::run_loop<decltype(step_)> loop{"sft", o, step_};
    loop.total = o.total_steps(all.size());
    train_result result;
    result.resumed = loop.resume([](const checkpoint&) {});
    loop.progress.metrics["run_steps"] = 0;
    notify_begin(loop.progress, callbacks...);
    data_order order(all.size(), o.seed);
    auto& model = params_->model();
    const std::size_t per_step = o.batch_size * o.gradient_accumulation;
    while (loop.done < loop.total) {
      const std::size_t step = loop.done + 1;
      // the step's micro-batches, and the count of learned tokens over all of them
      std::vector<token_batch_rows> micro(o.gradient_accumulation);
      std::size_t learned = 0;
      for (std::size_t m = 0; m < o.gradient_accumulation; ++m) {
        std::vector<const detail::sft_row*> picked;
        for (std::size_t i = 0; i < o.batch_size; ++i)
          picked.push_back(&all[order.at(loop.done * per_step + m * o.batch_size + i)]);
        micro[m] = batch(picked);
        learned += micro[m].learned;
      }
      step_.zero_grad();
      params_->before_forward();
      double loss = 0.0;
      for (const auto& b : micro) {
        if (b.learned == 0) continue;
        const double l = model.forward_loss(b.ids, b.targets, b.rows, b.length);
        check_loss(l, "sft", step);
        const double share = static_cast<double>(b.learned) / static_cast<double>(learned);
        loss += l * share;
        model.backward_loss(static_cast<float>(share));
        result.tokens += b.tokens;
      }
      params_->after_backward();
      const double norm = step_.apply("sft", step);
      loop.done = step;
      loop.progress.step = step;
      loop.progress.loss = loss;
      loop.progress.tokens = result.tokens;
      loop.progress.elapsed_seconds = loop.seconds();
      loop.progress.metrics["grad_norm"] = norm;
      loop.progress.metrics["learning_rate"] = step_.learning_rate();
      loop.progress.metrics["run_steps"] = static_cast<double>(step - loop.first);
      result.loss = loss;
      if (loop.after_step(step, [](checkpoint&) {}, callbacks...)) {
        result.stopped_early = true;
        break;
      }
    }
    params_->before_forward();  // the model's weights reflect the trained parameters
    loop.finish(result, [](checkpoint&) {}, callbacks...);
    return result;
  }

  token_batch_rows batch(const std::vector<const detail::sft_row*>& picked) const {
    token_batch_rows b;
    b.rows = picked.size();
    for (const auto* r : picked) b.length = std::max(b.length, r->ids.size());
    b.ids.assign(b.rows * b.length, options_.pad_id);
    b.targets.assign(b.rows * b.length, -1);
    for (std::size_t i = 0; i < b.rows; ++i) {
      const auto* r = picked[i];
      std::copy(r->ids.begin(), r->ids.end(), b.ids.begin() + static_cast<std::ptrdiff_t>(i * b.length));
      std::copy(r->targets.begin(), r->targets.end(), b.targets.begin() + static_cast<std::ptrdiff_t>(i * b.length));
      b.tokens += r->ids.size();
      b.learned += static_cast<std::size_t>(std::count_if(r->targets.begin(), r->targets.end(), [](auto t) { return t >= 0; }));
    }
    return b;
  }

  Params* params_;
  sft_options options_;
  optimizer_step<Params, Optimizer, Schedule> step_;
};

}  // namespace cai
