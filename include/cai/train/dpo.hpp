/// @file train/dpo.hpp
/// Direct preference optimisation (Rafailov et al. 2023, arXiv:2305.18290), the direct alternative to a
/// preference model and PPO in RLAIF: `dpo_trainer` trains a policy on (prompt, chosen, rejected) triples
/// against a frozen reference model, whose log-probabilities are computed once, before the first step,
/// and kept in the checkpoint. Sigmoid DPO, conservative DPO (label smoothing) and IPO, with the losses of
/// `train/losses/dpo.hpp`. Also `response_logprobs`: the summed log-probability of each response given
/// its prompt, batched, the quantity DPO and PPO are built on.
///
/// On every backend the logits and their gradient stay in the backend's memory; the per-token
/// log-probabilities of a batch come to the host, where they are summed per response and the pair loss
/// is computed on the 2B sums (with the CPU loss functions); the per-token gradient goes back.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/model/transformer.hpp"
#include "cai/train/losses.hpp"
#include "cai/train/trainer_core.hpp"

namespace cai {

/// A preference triple in tokens: the shared prompt and the two responses (without the prompt).
struct dpo_example {
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> chosen;
  std::vector<std::int32_t> rejected;
};

namespace detail {

/// A right-padded batch of prompt + response rows whose targets are the response tokens only.
struct response_rows {
  std::size_t rows = 0, length = 0;
  std::vector<std::int32_t> ids, targets;  // (rows, length)
  std::vector<std::size_t> response_tokens;  // per row
  std::size_t tokens = 0;
};

inline response_rows make_response_rows(std::span<const std::vector<std::int32_t>* const> prompts,
                                        std::span<const std::vector<std::int32_t>* const> responses,
                                        std::size_t context, std::int32_t pad_id) {
  response_rows b;
  b.rows = prompts.size();
  for (std::size_t i = 0; i < b.rows; ++i) {
    const std::size_t len = prompts[i]->size() + responses[i]->size();
    if (prompts[i]->empty()) throw validation_error("dpo: example prompt " + std::to_string(i) + " is empty");
    if (responses[i]->empty()) throw validation_error("dpo: a response of row " + std::to_string(i) + " is empty");
    if (len > context)
      throw config_error("dpo: a prompt and response of " + std::to_string(len) + " tokens exceed the context of " +
                         std::to_string(context));
    b.length = std::max(b.length, len);
  }
  b.ids.assign(b.rows * b.length, pad_id);
  b.targets.assign(b.rows * b.length, -1);
  b.response_tokens.resize(b.rows);
  for (std::size_t i = 0; i < b.rows; ++i) {
    const auto& p = *prompts[i];
    const auto& r = *responses[i];
    std::int32_t* row = b.ids.data() + i * b.length;
    std::copy(p.begin(), p.end(), row);
    std::copy(r.begin(), r.end(), row + p.size());
    for (std::size_t k = 0; k < r.size(); ++k) b.targets[i * b.length + p.size() - 1 + k] = r[k];
    b.response_tokens[i] = r.size();
    b.tokens += p.size() + r.size();
  }
  return b;
}

}  // namespace detail

/// Per-token log-probabilities of a batch of rows on the model's backend, and the buffers they need:
/// the logits stay in the backend's memory, the N log-probabilities come to the host (they are summed per
/// response there, in token order), and the gradient with respect to them goes back.
template <class Backend>
struct token_logprob_buffers {
  using storage = typename Backend::template storage<float>;
  typename Backend::template storage<std::int32_t> targets;  // (N)
  storage logp, lse, dlogp, dlogits;                          // (N), (N), (N), (N, V)
  std::vector<float> host_logp, host_dlogp;                   // (N)

  /// host_logp = log P(target) of each row of `logits` (N, V), 0 where the target is negative.
  void forward(const float* logits, const std::vector<std::int32_t>& host_targets, std::size_t N, std::size_t V) {
    const Backend be{};
    if (targets.size() != N) targets = typename Backend::template storage<std::int32_t>(N);
    if (logp.size() != N) {
      logp = storage(N);
      lse = storage(N);
    }
    copy_from_host(be, targets.data(), host_targets.data(), N);
    token_logprob_forward(be, logp.data(), lse.data(), logits, targets.data(), N, V);
    host_logp.resize(N);
    copy_to_host(be, host_logp.data(), logp.data(), N);
  }

  /// dlogits (N, V) = the gradient of Σ host_dlogp[n] logp[n] (host_dlogp filled by the caller).
  /// @return dlogits, backend memory.
  std::span<const float> backward(const float* logits, std::size_t N, std::size_t V) {
    const Backend be{};
    if (dlogp.size() != N) dlogp = storage(N);
    copy_from_host(be, dlogp.data(), host_dlogp.data(), N);
    if (dlogits.size() != N * V) dlogits = storage(N * V);
    fill(be, dlogits.data(), 0.0f, N * V);
    token_logprob_backward(be, dlogits.data(), dlogp.data(), logits, lse.data(), targets.data(), N, V);
    return {dlogits.data(), N * V};
  }
};

/// log P(response | prompt) of each pair, summed over the response's tokens, `batch_size` rows at a time.
template <class Backend>
std::vector<double> response_logprobs(transformer<Backend, float>& model,
                                      std::span<const std::vector<std::int32_t>* const> prompts,
                                      std::span<const std::vector<std::int32_t>* const> responses,
                                      std::size_t batch_size = 8, std::int32_t pad_id = 0) {
  std::vector<double> out;
  const std::size_t V = model.config().vocab_size;
  token_logprob_buffers<Backend> buffers;
  for (std::size_t i = 0; i < prompts.size(); i += batch_size) {
    const std::size_t n = std::min(batch_size, prompts.size() - i);
    const auto b = detail::make_response_rows(prompts.subspan(i, n), responses.subspan(i, n),
                                              model.config().context_length, pad_id);
    const auto logits = model.forward(b.ids, b.rows, b.length);
    buffers.forward(logits.data(), b.targets, b.rows * b.length, V);
    const auto& logp = buffers.host_logp;
    for (std::size_t r = 0; r < b.rows; ++r) {
      double s = 0.0;
      for (std::size_t t = 0; t < b.length; ++t) s += logp[r * b.length + t];
      out.push_back(s);
    }
  }
  return out;
}

/// The options of `dpo_trainer` beyond `train_options`.
struct dpo_trainer_options {
  train_options train;
  /// β, label smoothing (cDPO) and the variant (sigmoid or IPO).
  dpo_options dpo;
  std::int32_t pad_id = 0;
};

/// Trains a policy by DPO against a frozen reference (see the file comment). The progress metrics hold
/// "margin" (mean implicit reward of chosen minus rejected) and "reward_accuracy" (fraction of pairs whose
/// chosen implicit reward is the higher).
/// @tparam Params the policy's parameters: `full_parameters` or `lora_adapters`.
template <trainable_parameters Params, class Optimizer, lr_schedule Schedule = constant_schedule>
class dpo_trainer {
 public:
  using backend_type = typename Params::backend_type;
  using model_type = transformer<backend_type, float>;

  /// @param reference the frozen reference policy (usually the policy's starting point); it is only
  ///        read, once, at the start of `train`. @pre `params` and `reference` outlive the trainer.
  dpo_trainer(Params& params, model_type& reference, Optimizer optimizer, dpo_trainer_options options,
              Schedule schedule = {})
      : params_(&params), reference_(&reference), options_(std::move(options)),
        step_(params, std::move(optimizer), std::move(schedule), options_.train.max_grad_norm) {
    options_.train.validate("dpo_trainer");
    options_.dpo.validate();
    if (reference.config().vocab_size != params.model().config().vocab_size)
      throw config_error("dpo_trainer: the reference's vocabulary differs from the policy's");
  }

  /// Trains on `data`; resumes from a checkpoint in `options.train.checkpoint_dir`.
  template <class... Callbacks>
  train_result train(std::span<const dpo_example> data, Callbacks&&... callbacks) {
    if constexpr (sizeof...(Callbacks) == 0) {
      progress_bar bar;
      return run(data, bar);
    } else {
      return run(data, callbacks...);
    }
  }
  template <class... Callbacks>
  train_result train(const std::vector<dpo_example>& data, Callbacks&&... callbacks) {
    return train(std::span<const dpo_example>(data), std::forward<Callbacks>(callbacks)...);
  }

  /// Implicit-reward margin and accuracy of the current policy on `data` (no gradients).
  std::pair<double, double> evaluate(std::span<const dpo_example> data) {
    params_->before_forward();
    const auto ref = reference_logprobs(data);
    const auto pol = logprobs(params_->model(), data);
    const std::size_t n = data.size();
    double margin = 0.0;
    std::size_t right = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double c = options_.dpo.beta * (pol[i] - ref[i]), r = options_.dpo.beta * (pol[n + i] - ref[n + i]);
      margin += c - r;
      right += c > r ? 1 : 0;
    }
    return {margin / static_cast<double>(n), static_cast<double>(right) / static_cast<double>(n)};
  }

 private:
  // chosen log-probs (n) then rejected (n); IPO averages over response tokens, as TRL does
  std::vector<double> logprobs(model_type& model, std::span<const dpo_example> data) {
    std::vector<const std::vector<std::int32_t>*> prompts, responses;
    for (const auto& e : data) prompts.push_back(&e.prompt), responses.push_back(&e.chosen);
    for (const auto& e : data) prompts.push_back(&e.prompt), responses.push_back(&e.rejected);
    auto out = response_logprobs(model, prompts, responses, options_.train.batch_size, options_.pad_id);
    if (options_.dpo.variant == dpo_variant::ipo)
      for (std::size_t i = 0; i < out.size(); ++i) out[i] /= static_cast<double>(responses[i]->size());
    return out;
  }
  std::vector<double> reference_logprobs(std::span<const dpo_example> data) { return logprobs(*reference_, data); }

  template <class... Callbacks>
  train_result run(std::span<const dpo_example> data, Callbacks&... callbacks) {
    if (data.empty()) throw validation_error("dpo_trainer: the dataset is empty");
    const train_options& o = options_.train;
    const std::size_t n = data.size(), V = params_->model().config().vocab_size;
    std::vector<float> ref_chosen(n), ref_rejected(n);
    detail::run_loop<decltype(step_)> loop{"dpo", o, step_};
    loop.total = o.total_steps(n);
    train_result result;
    result.resumed = loop.resume([&](const checkpoint& c) {
      ref_chosen = c.tensor("reference.chosen", n);
      ref_rejected = c.tensor("reference.rejected", n);
    });
    if (!result.resumed) {
      const auto ref = reference_logprobs(data);
      for (std::size_t i = 0; i < n; ++i) {
        ref_chosen[i] = static_cast<float>(ref[i]);
        ref_rejected[i] = static_cast<float>(ref[n + i]);
        check_loss(ref[i] + ref[n + i], "dpo", 0, "a reference log-probability");
      }
    }
    auto save_refs = [&](checkpoint& c) {
      c.tensors["reference.chosen"] = ref_chosen;
      c.tensors["reference.rejected"] = ref_rejected;
    };
    notify_begin(loop.progress, callbacks...);
    data_order order(n, o.seed);
    auto& model = params_->model();
    const std::size_t per_step = o.batch_size * o.gradient_accumulation;
    token_logprob_buffers<backend_type> buffers;
    const auto& logp = buffers.host_logp;
    auto& dlogp = buffers.host_dlogp;
    while (loop.done < loop.total) {
      const std::size_t step = loop.done + 1;
      step_.zero_grad();
      params_->before_forward();
      double loss = 0.0, margin = 0.0;
      std::size_t right = 0;
      for (std::size_t m = 0; m < o.gradient_accumulation; ++m) {
        const std::size_t b = o.batch_size;
        std::vector<std::size_t> idx(b);
        std::vector<const std::vector<std::int32_t>*> prompts, responses;
        for (std::size_t i = 0; i < b; ++i) idx[i] = order.at(loop.done * per_step + m * b + i);
        for (std::size_t i : idx) prompts.push_back(&data[i].prompt), responses.push_back(&data[i].chosen);
        for (std::size_t i : idx) prompts.push_back(&data[i].prompt), responses.push_back(&data[i].rejected);
        const auto rows = detail::make_response_rows(prompts, responses, model.config().context_length, options_.pad_id);
        const std::size_t N = rows.rows * rows.length;
        const auto logits = model.forward(rows.ids, rows.rows, rows.length);  // (N, V), backend memory
        buffers.forward(logits.data(), rows.targets, N, V);
        const bool ipo = options_.dpo.variant == dpo_variant::ipo;
        std::vector<float> seq(2 * b), ref_c(b), ref_r(b);
        for (std::size_t r = 0; r < 2 * b; ++r) {
          double s = 0.0;
          for (std::size_t t = 0; t < rows.length; ++t) s += logp[r * rows.length + t];
          if (ipo) s /= static_cast<double>(rows.response_tokens[r]);
          seq[r] = static_cast<float>(s);
        }
        for (std::size_t i = 0; i < b; ++i) ref_c[i] = ref_chosen[idx[i]], ref_r[i] = ref_rejected[idx[i]];
        std::vector<float> rc(b), rr(b);
        const float share = 1.0f / static_cast<float>(o.gradient_accumulation);
        const double l = dpo_loss_forward(cpu, seq.data(), seq.data() + b, ref_c.data(), ref_r.data(), b,
                                          options_.dpo, rc.data(), rr.data());
        check_loss(l, "dpo", step);
        loss += l * share;
        for (std::size_t i = 0; i < b; ++i) {
          margin += (rc[i] - rr[i]) / static_cast<double>(b * o.gradient_accumulation);
          right += rc[i] > rr[i] ? 1 : 0;
        }
        std::vector<float> dseq(2 * b, 0.0f);
        dpo_loss_backward(cpu, dseq.data(), dseq.data() + b, seq.data(), seq.data() + b, ref_c.data(),
                          ref_r.data(), b, options_.dpo, share);
        dlogp.assign(N, 0.0f);
        for (std::size_t r = 0; r < 2 * b; ++r) {
          const float d = ipo ? dseq[r] / static_cast<float>(rows.response_tokens[r]) : dseq[r];
          for (std::size_t t = 0; t < rows.length; ++t)
            if (rows.targets[r * rows.length + t] >= 0) dlogp[r * rows.length + t] = d;
        }
        model.backward(buffers.backward(logits.data(), N, V));
        result.tokens += rows.tokens;
      }
      params_->after_backward();
      const double norm = step_.apply("dpo", step);
      loop.done = step;
      auto& pr = loop.progress;
      pr.step = step;
      pr.loss = loss;
      pr.tokens = result.tokens;
      pr.elapsed_seconds = loop.seconds();
      pr.metrics["margin"] = margin;
      pr.metrics["reward_accuracy"] = static_cast<double>(right) / static_cast<double>(per_step);
      pr.metrics["grad_norm"] = norm;
      pr.metrics["run_steps"] = static_cast<double>(step - loop.first);
      result.loss = loss;
      if (loop.after_step(step, save_refs, callbacks...)) {
        result.stopped_early = true;
        break;
      }
    }
    params_->before_forward();
    loop.finish(result, save_refs, callbacks...);
    return result;
  }

  Params* params_;
  model_type* reference_;
  dpo_trainer_options options_;
  optimizer_step<Params, Optimizer, Schedule> step_;
};

}  // namespace cai
