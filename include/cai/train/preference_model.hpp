/// @file train/preference_model.hpp
/// The preference model of RLAIF (Bai et al. 2022, arXiv:2212.08073, section 4; Bai et al. 2022a,
/// arXiv:2204.05862): a transformer with a scalar head read at the last token of a sequence, trained on
/// pairs (prompt + chosen, prompt + rejected) with soft labels p = P(chosen is better) by the
/// Bradley-Terry loss -(p log σ(r_c - r_r) + (1 - p) log σ(r_r - r_c)) (`preference_loss_forward`).
///
/// On every backend the body, the head and their gradients stay in the backend's memory; the B rewards of
/// a batch come to the host, where the pair loss and its gradient are computed on those scalars (with the
/// CPU loss functions), and the B reward gradients go back.
///
/// `preference_model<Backend>` holds the body and the head; `preference_trainer` trains it with any
/// optimizer, schedule and parameter set (full or LoRA on the body; the head is always trained), and
/// `evaluate` reports the loss, the accuracy on held-out pairs and the calibration of the model's
/// probabilities (reliability bins and expected calibration error), as the paper's figures do.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/model/load.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/model/transformer.hpp"
#include "cai/random.hpp"
#include "cai/train/losses.hpp"
#include "cai/train/trainer_core.hpp"

namespace cai {

/// A transformer with a scalar reward head on the final hidden state of each sequence's last token.
template <class Backend = CAI_DEFAULT_BACKEND>
class preference_model {
 public:
  using backend_type = Backend;
  using model_type = transformer<Backend, float>;
  using storage_type = typename Backend::template storage<float>;

  /// A head drawn from N(0, 0.02²) with `seed` (Hugging Face's initialisation of `score`) on `body`,
  /// which is usually the policy after SL-CAI.
  explicit preference_model(model_type body, std::uint64_t seed = 0)
      : body_(std::move(body)), head_(body_.config().d_model), head_grad_(head_.size()) {
    rng g(derive_seed(seed, {0x5c0e}));
    std::vector<float> host(head_.size());  // drawn on the host, then copied into the backend's storage
    for (auto& w : host) {
      const double u1 = 1.0 - g.uniform_real(), u2 = g.uniform_real();
      w = static_cast<float>(0.02 * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    copy_from_host(Backend{}, head_.data(), host.data(), host.size());
  }

  [[nodiscard]] model_type& body() noexcept { return body_; }
  [[nodiscard]] const model_type& body() const noexcept { return body_; }
  /// The head's weights: (d_model), backend memory. @return the buffer an optimizer updates.
  [[nodiscard]] storage_type& head() noexcept { return head_; }
  [[nodiscard]] storage_type& head_gradient() noexcept { return head_grad_; }
  /// A host copy of the head's weights.
  [[nodiscard]] std::vector<float> host_head() const {
    std::vector<float> host(head_.size());
    copy_to_host(Backend{}, host.data(), head_.data(), head_.size());
    return host;
  }

  /// Rewards of a batch of sequences, right-padded with `pad_id`: r_b = w · h_b at the last token of b.
  /// Keeps what `backward` needs. @return the B rewards, in host memory (on every backend: they are
  /// scalars the trainer reads). @throws validation_error for an empty sequence.
  std::span<const float> forward(std::span<const std::vector<std::int32_t>> sequences, std::int32_t pad_id = 0) {
    const std::size_t B = sequences.size(), C = body_.config().d_model;
    std::size_t T = 0;
    for (std::size_t b = 0; b < B; ++b) {
      if (sequences[b].empty()) throw validation_error("preference_model: sequence " + std::to_string(b) + " is empty");
      T = std::max(T, sequences[b].size());
    }
    if (T > body_.config().context_length)
      throw config_error("preference_model: a sequence of " + std::to_string(T) + " tokens exceeds the context of " +
                         std::to_string(body_.config().context_length));
    ids_.assign(B * T, pad_id);
    last_.resize(B);
    for (std::size_t b = 0; b < B; ++b) {
      std::copy(sequences[b].begin(), sequences[b].end(), ids_.begin() + static_cast<std::ptrdiff_t>(b * T));
      last_[b] = b * T + sequences[b].size() - 1;
    }
    T_ = T;
    const Backend be{};
    if (last_rows_.size() != B) last_rows_ = index_storage(B);
    copy_from_host(be, last_rows_.data(), last_.data(), B);
    const auto hidden = body_.forward_hidden(ids_, B, T);  // hidden: (B, T, C), backend memory
    if (rewards_dev_.size() != B) rewards_dev_ = storage_type(B);
    scalar_head_forward(be, rewards_dev_.data(), hidden.data(), head_.data(), last_rows_.data(), B, C);
    rewards_.resize(B);
    copy_to_host(be, rewards_.data(), rewards_dev_.data(), B);
    return rewards_;
  }

  /// Accumulates the gradients of the body and the head given d(loss)/d(reward) of the last `forward`.
  /// @param drewards (B), host memory.
  void backward(std::span<const float> drewards) {
    const std::size_t B = last_.size(), C = body_.config().d_model;
    if (drewards.size() != B)
      throw config_error("preference_model::backward: " + std::to_string(drewards.size()) + " reward gradients for " +
                         std::to_string(B) + " sequences");
    const Backend be{};
    const auto hidden = body_.hidden();
    if (drewards_dev_.size() != B) drewards_dev_ = storage_type(B);
    copy_from_host(be, drewards_dev_.data(), drewards.data(), B);
    const std::size_t n = B * T_ * C;
    if (dhidden_.size() != n) dhidden_ = storage_type(n);
    fill(be, dhidden_.data(), 0.0f, n);
    scalar_head_backward(be, head_grad_.data(), dhidden_.data(), hidden.data(), head_.data(), drewards_dev_.data(),
                         last_rows_.data(), B, C);
    body_.backward({}, std::span<const float>(dhidden_.data(), n));
  }

  /// Rewards of `sequences`, `batch_size` at a time. @return one reward per sequence.
  std::vector<double> rewards(std::span<const std::vector<std::int32_t>> sequences, std::size_t batch_size = 8,
                              std::int32_t pad_id = 0) {
    std::vector<double> out;
    out.reserve(sequences.size());
    for (std::size_t i = 0; i < sequences.size(); i += batch_size) {
      const auto r = forward(sequences.subspan(i, std::min(batch_size, sequences.size() - i)), pad_id);
      out.insert(out.end(), r.begin(), r.end());
    }
    return out;
  }

  /// Writes the body as a Hugging Face directory (`save_model`) and the head as `score.safetensors`
  /// (tensor "score.weight", (1, d_model): the `score` layer of transformers' *ForSequenceClassification).
  /// On another backend than the CPU the body is first copied into a CPU model (the file writers read
  /// host memory).
  void save(const std::filesystem::path& dir) const {
    if constexpr (std::is_same_v<Backend, cpu_t>) {
      save_model(body_, dir);
    } else {
      transformer<cpu_t, float> host(body_.config());
      host.load_parameters(body_.host_parameters());
      save_model(host, dir);
    }
    const auto head = host_head();
    const std::vector<named_tensor> t{{"score.weight", {1, static_cast<std::int64_t>(head.size())}, head}};
    save_safetensors(dir / "score.safetensors", t, {{"format", "pt"}});
  }

  /// Reads a directory written by `save`. @throws io_error / validation_error naming the file.
  [[nodiscard]] static preference_model load(const std::filesystem::path& dir) {
    preference_model pm = [&] {
      if constexpr (std::is_same_v<Backend, cpu_t>) {
        return preference_model(load_model<Backend>(dir));
      } else {  // the file readers write host memory: read into a CPU model, then copy its parameters
        const auto host = load_model<cpu_t>(dir);
        model_type body(host.config());
        body.load_parameters(std::span<const float>(host.data(), host.num_parameters()));
        return preference_model(std::move(body));
      }
    }();
    std::vector<float> head(pm.head_.size());
    safetensors_file::open(dir / "score.safetensors").read_f32("score.weight", head);
    copy_from_host(Backend{}, pm.head_.data(), head.data(), head.size());
    return pm;
  }

 private:
  using index_storage = typename Backend::template storage<std::size_t>;

  model_type body_;
  storage_type head_, head_grad_;
  std::vector<std::int32_t> ids_;
  std::vector<std::size_t> last_;
  index_storage last_rows_;                        // last_ in backend memory
  std::vector<float> rewards_;                     // (B), host
  storage_type rewards_dev_, drewards_dev_, dhidden_;
  std::size_t T_ = 0;
};

/// A compared pair: the full token sequences (prompt + response) and p = P(chosen is better) in [0, 1].
struct preference_pair {
  std::vector<std::int32_t> chosen;
  std::vector<std::int32_t> rejected;
  double p_chosen = 1.0;
};

/// Loss, accuracy and calibration of a preference model on pairs.
struct preference_metrics {
  double loss = 0.0;
  /// Fraction of pairs with p != 0.5 where the model prefers the side the label prefers.
  double accuracy = 0.0;
  /// Expected calibration error: sum over bins of (pairs in bin / pairs) |mean predicted - mean label|.
  double calibration_error = 0.0;
  /// Reliability data: per bin of predicted P(chosen) (10 bins of width 0.1), the number of pairs, the
  /// mean predicted probability and the mean label.
  struct bin {
    std::size_t count = 0;
    double predicted = 0.0;
    double observed = 0.0;
  };
  std::vector<bin> bins;
  std::size_t pairs = 0;
};

/// Loss, accuracy and calibration of `pm` on `pairs` (see `preference_metrics`).
template <class Backend>
preference_metrics evaluate_preferences(preference_model<Backend>& pm, std::span<const preference_pair> pairs,
                                        std::size_t batch_size = 8, double margin = 0.0, std::int32_t pad_id = 0) {
  preference_metrics m;
  m.bins.resize(10);
  m.pairs = pairs.size();
  if (pairs.empty()) return m;
  std::size_t right = 0, counted = 0;
  double loss = 0.0;
  for (std::size_t i = 0; i < pairs.size(); i += batch_size) {
    const std::size_t b = std::min(batch_size, pairs.size() - i);
    std::vector<std::vector<std::int32_t>> seqs;
    std::vector<float> p;
    for (std::size_t k = 0; k < b; ++k) seqs.push_back(pairs[i + k].chosen), p.push_back(static_cast<float>(pairs[i + k].p_chosen));
    for (std::size_t k = 0; k < b; ++k) seqs.push_back(pairs[i + k].rejected);
    const auto r = pm.forward(seqs, pad_id);
    loss += preference_loss_forward(cpu, r.data(), r.data() + b, p.data(), b, static_cast<float>(margin)) *
            static_cast<double>(b);
    for (std::size_t k = 0; k < b; ++k) {
      const double predicted = 1.0 / (1.0 + std::exp(-(static_cast<double>(r[k]) - r[b + k])));
      auto& bin = m.bins[std::min<std::size_t>(9, static_cast<std::size_t>(predicted * 10.0))];
      ++bin.count;
      bin.predicted += predicted;
      bin.observed += p[k];
      if (p[k] != 0.5f) {
        ++counted;
        right += (r[k] > r[b + k]) == (p[k] > 0.5f) ? 1 : 0;
      }
    }
  }
  m.loss = loss / static_cast<double>(pairs.size());
  m.accuracy = counted == 0 ? 0.0 : static_cast<double>(right) / static_cast<double>(counted);
  for (auto& bin : m.bins)
    if (bin.count != 0) {
      bin.predicted /= static_cast<double>(bin.count);
      bin.observed /= static_cast<double>(bin.count);
      m.calibration_error += static_cast<double>(bin.count) / static_cast<double>(pairs.size()) *
                             std::abs(bin.predicted - bin.observed);
    }
  return m;
}

/// The options of `preference_trainer` beyond `train_options`.
struct preference_options {
  train_options train;
  /// m in the loss -log σ(r_c - r_r - m) (TRL's margin); 0: none.
  double margin = 0.0;
  std::int32_t pad_id = 0;
};

/// Trains a `preference_model` (see the file comment).
/// @tparam Params parameters of the body: `full_parameters` or `lora_adapters` on `pm.body()`.
template <trainable_parameters Params, class Optimizer, lr_schedule Schedule = constant_schedule>
class preference_trainer {
 public:
  using backend_type = typename Params::backend_type;

  /// @pre `params.model()` is `pm.body()`; `pm` and `params` outlive the trainer.
  preference_trainer(preference_model<backend_type>& pm, Params& params, Optimizer optimizer,
                     preference_options options, Schedule schedule = {})
      : pm_(&pm), params_(&params), options_(std::move(options)),
        step_(params, std::move(optimizer), std::move(schedule), options_.train.max_grad_norm) {
    options_.train.validate("preference_trainer");
    if (&params.model() != &pm.body())
      throw config_error("preference_trainer: the parameters must be those of the preference model's body");
    step_.add_group("score.weight", pm.head(), pm.head_gradient());
  }

  /// Trains on `pairs`; resumes from a checkpoint in `options.train.checkpoint_dir`. The progress
  /// metrics hold the step's "accuracy".
  template <class... Callbacks>
  train_result train(std::span<const preference_pair> pairs, Callbacks&&... callbacks) {
    if constexpr (sizeof...(Callbacks) == 0) {
      progress_bar bar;
      return run(pairs, bar);
    } else {
      return run(pairs, callbacks...);
    }
  }
  template <class... Callbacks>
  train_result train(const std::vector<preference_pair>& pairs, Callbacks&&... callbacks) {
    return train(std::span<const preference_pair>(pairs), std::forward<Callbacks>(callbacks)...);
  }

  /// Loss, accuracy and calibration on `pairs` (no gradients).
  preference_metrics evaluate(std::span<const preference_pair> pairs) {
    params_->before_forward();
    return evaluate_preferences(*pm_, pairs, options_.train.batch_size, options_.margin, options_.pad_id);
  }

 private:
  template <class... Callbacks>
  train_result run(std::span<const preference_pair> pairs, Callbacks&... callbacks) {
    if (pairs.empty()) throw validation_error("preference_trainer: there are no pairs");
    for (std::size_t i = 0; i < pairs.size(); ++i)
      if (!(pairs[i].p_chosen >= 0.0 && pairs[i].p_chosen <= 1.0))
        throw validation_error("preference_trainer: pair " + std::to_string(i) + " has p_chosen = " +
                               std::to_string(pairs[i].p_chosen) + "; it must be in [0, 1]");
    const train_options& o = options_.train;
    detail::run_loop<decltype(step_)> loop{"preference", o, step_};
    loop.total = o.total_steps(pairs.size());
    train_result result;
    result.resumed = loop.resume([](const checkpoint&) {});
    notify_begin(loop.progress, callbacks...);
    data_order order(pairs.size(), o.seed);
    const std::size_t per_step = o.batch_size * o.gradient_accumulation;
    while (loop.done < loop.total) {
      const std::size_t step = loop.done + 1;
      step_.zero_grad();
      params_->before_forward();
      double loss = 0.0;
      std::size_t right = 0, counted = 0;
      for (std::size_t m = 0; m < o.gradient_accumulation; ++m) {
        std::vector<std::vector<std::int32_t>> seqs;
        std::vector<float> p;
        for (std::size_t i = 0; i < o.batch_size; ++i) {
          const auto& pair = pairs[order.at(loop.done * per_step + m * o.batch_size + i)];
          seqs.push_back(pair.chosen);
          p.push_back(static_cast<float>(pair.p_chosen));
          result.tokens += pair.chosen.size() + pair.rejected.size();
        }
        for (std::size_t i = 0; i < o.batch_size; ++i)
          seqs.push_back(pairs[order.at(loop.done * per_step + m * o.batch_size + i)].rejected);
        const std::size_t b = o.batch_size;
        const auto r = pm_->forward(seqs, options_.pad_id);
        const std::vector<float> rewards(r.begin(), r.end());
        const float share = 1.0f / static_cast<float>(o.gradient_accumulation);
        const double l = preference_loss_forward(cpu, rewards.data(), rewards.data() + b, p.data(), b,
                                                 static_cast<float>(options_.margin));
        check_loss(l, "preference", step);
        loss += l * share;
        for (std::size_t i = 0; i < b; ++i)
          if (p[i] != 0.5f) {
            ++counted;
            right += (rewards[i] > rewards[b + i]) == (p[i] > 0.5f) ? 1 : 0;
          }
        std::vector<float> dr(2 * b, 0.0f);
        preference_loss_backward(cpu, dr.data(), dr.data() + b, rewards.data(), rewards.data() + b, p.data(), b,
                                 static_cast<float>(options_.margin), share);
        pm_->backward(dr);
      }
      params_->after_backward();
      const double norm = step_.apply("preference", step);
      loop.done = step;
      auto& pr = loop.progress;
      pr.step = step;
      pr.loss = loss;
      pr.tokens = result.tokens;
      pr.elapsed_seconds = loop.seconds();
      pr.metrics["accuracy"] = counted == 0 ? 0.0 : static_cast<double>(right) / static_cast<double>(counted);
      pr.metrics["grad_norm"] = norm;
      pr.metrics["run_steps"] = static_cast<double>(step - loop.first);
      result.loss = loss;
      if (loop.after_step(step, [](checkpoint&) {}, callbacks...)) {
        result.stopped_early = true;
        break;
      }
    }
    params_->before_forward();
    loop.finish(result, [](checkpoint&) {}, callbacks...);
    return result;
  }

  preference_model<backend_type>* pm_;
  Params* params_;
  preference_options options_;
  optimizer_step<Params, Optimizer, Schedule> step_;
};

}  // namespace cai
