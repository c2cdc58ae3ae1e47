/// @file train/ppo.hpp
/// Reinforcement learning from (AI) feedback with PPO (Schulman et al. 2017, arXiv:1707.06347), as RLAIF
/// runs it (Bai et al. 2022, arXiv:2212.08073, section 4; the per-token KL penalty of Ziegler et al. 2019,
/// arXiv:1909.08593; TRL's PPOTrainer as the reading of each step):
///
///  1. rollout: the policy samples a response to each prompt of the batch (`sample_responses`: KV-cached,
///     temperature / top-k / top-p, one seeded generator per prompt, so a response does not depend on
///     the rest of the batch);
///  2. scoring: the reward policy scores each (prompt, response) — a preference model
///     (`preference_reward`) or any callable; the policy's and the frozen reference's log-probabilities
///     and the value head's values are computed for every response token;
///  3. rewards per token: -kl_coef * KL_t (k1 or k3 estimator), plus the score at the last token;
///     advantages by GAE(gamma, lambda) per sequence, whitened over the batch;
///  4. `ppo_epochs` passes over the batch in `minibatches` shuffled minibatches, each one optimizer step on
///     the clipped policy loss + vf_coef * the clipped value loss - ent_coef * the entropy.
///
/// The value head is a vector on the policy's final hidden states (TRL's ValueHead), trained with the
/// policy (full or LoRA parameters). A checkpoint after each iteration holds the parameters, the value
/// head, the optimizer states and the counters; a resumed run repeats the uninterrupted one exactly.
///
/// On every backend the parameters, the value head, the logits and their gradients stay in the backend's
/// memory. To the host go what is per token or per sampled row: the logits row a token is sampled from,
/// the per-token log-probabilities, entropies and values of a batch (rewards, GAE, whitening and the PPO
/// losses are computed there, with the CPU functions); the per-token gradients go back.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/model/native_model.hpp"
#include "cai/model/transformer.hpp"
#include "cai/random.hpp"
#include "cai/train/dpo.hpp"
#include "cai/train/losses.hpp"
#include "cai/train/preference_model.hpp"
#include "cai/train/trainer_core.hpp"

namespace cai {

/// How `sample_responses` samples.
struct sampling_options {
  std::size_t max_new_tokens = 32;
  double temperature = 1.0;  ///< 0: greedy
  std::size_t top_k = 0;
  double top_p = 1.0;
  /// Tokens that end a response (kept as its last token, so that the policy learns to stop).
  std::vector<std::int32_t> end_tokens;
};

/// Samples a response to each prompt from `model`: prefill of every prompt in one pass, then one token
/// per unfinished prompt per step. Prompt i draws from `rng(seeds[i])`.
/// @return the responses' tokens (an end token, when drawn, is the last).
template <class Backend>
std::vector<std::vector<std::int32_t>> sample_responses(transformer<Backend, float>& model,
                                                        std::span<const std::vector<std::int32_t>> prompts,
                                                        const sampling_options& options,
                                                        std::span<const std::uint64_t> seeds) {
  const std::size_t R = prompts.size(), V = model.config().vocab_size, context = model.config().context_length;
  if (seeds.size() != R) throw config_error("sample_responses: one seed per prompt is needed");
  std::vector<std::vector<std::int32_t>> out(R);
  if (R == 0) return out;
  std::size_t longest = 1;
  for (std::size_t i = 0; i < R; ++i) {
    if (prompts[i].empty()) throw validation_error("sample_responses: prompt " + std::to_string(i) + " is empty");
    if (prompts[i].size() >= context)
      throw config_error("sample_responses: prompt " + std::to_string(i) + " has " + std::to_string(prompts[i].size()) +
                         " tokens; the context holds " + std::to_string(context));
    longest = std::max(longest, prompts[i].size() + options.max_new_tokens);
  }
  kv_cache<Backend, float> cache(model.config(), R, std::min(longest, context));
  std::vector<rng> gens;
  for (auto s : seeds) gens.emplace_back(s);
  generation_options g;
  g.temperature = options.temperature;
  g.top_k = options.top_k;
  g.top_p = options.top_p;
  std::vector<cache_segment> segments;
  for (std::size_t i = 0; i < R; ++i) segments.push_back({i, prompts[i]});
  std::vector<std::vector<float>> last(R);
  {
    // backend memory, each prompt's last row only: sampled on the host
    const auto logits = model.forward_cached(cache, segments, cached_logits::last);
    for (std::size_t i = 0; i < R; ++i) {
      last[i].resize(V);
      copy_to_host(Backend{}, last[i].data(), logits.data() + i * V, V);
    }
  }
  std::vector<bool> done(R, false);
  std::vector<std::int32_t> next(R);
  for (;;) {
    segments.clear();
    for (std::size_t i = 0; i < R; ++i) {
      if (done[i]) continue;
      next[i] = sample_token(last[i], g, gens[i]);
      out[i].push_back(next[i]);
      const bool end = std::find(options.end_tokens.begin(), options.end_tokens.end(), next[i]) != options.end_tokens.end();
      if (end || out[i].size() >= options.max_new_tokens || cache.length(i) + 1 >= cache.max_len()) {
        done[i] = true;
        continue;
      }
      segments.push_back({i, std::span<const std::int32_t>(&next[i], 1)});
    }
    if (segments.empty()) break;
    const auto logits = model.forward_cached(cache, segments);
    for (std::size_t s = 0; s < segments.size(); ++s) {
      auto& l = last[segments[s].slot];
      l.resize(V);
      copy_to_host(Backend{}, l.data(), logits.data() + s * V, V);
    }
  }
  return out;
}

/// The reward of a preference model: r(prompt + response) read at the last token.
template <class Backend>
struct preference_reward {
  preference_model<Backend>* model;
  std::size_t batch_size = 8;
  std::vector<double> operator()(std::span<const std::vector<std::int32_t>> prompts,
                                 std::span<const std::vector<std::int32_t>> responses) const {
    std::vector<std::vector<std::int32_t>> seqs(prompts.size());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      seqs[i] = prompts[i];
      seqs[i].insert(seqs[i].end(), responses[i].begin(), responses[i].end());
    }
    return model->rewards(seqs, batch_size);
  }
};

/// A reward policy for `ppo_trainer`: scores each (prompt, response) pair of a batch.
template <class F>
concept reward_function = requires(F& f, std::span<const std::vector<std::int32_t>> p) {
  { f(p, p) } -> std::convertible_to<std::vector<double>>;
};

/// The options of `ppo_trainer` beyond `train_options` (whose `batch_size` is the number of prompts per
/// rollout and `max_steps` the number of rollout-and-update iterations).
struct ppo_options {
  train_options train;
  sampling_options sampling;
  std::size_t ppo_epochs = 4;      ///< passes over each rollout batch
  std::size_t minibatches = 2;     ///< optimizer steps per pass
  double clip_range = 0.2;         ///< ε of the clipped policy loss
  double clip_range_value = 0.2;   ///< ε of the clipped value loss
  double vf_coef = 0.1;            ///< weight of the value loss
  double ent_coef = 0.0;           ///< weight of the entropy bonus
  double kl_coef = 0.05;           ///< β of the per-token KL penalty
  kl_estimator kl = kl_estimator::k1;
  double gamma = 1.0;
  double lambda = 0.95;
  bool whiten_advantages = true;
  std::int32_t pad_id = 0;

  void validate() const {
    train.validate("ppo_trainer");
    if (ppo_epochs == 0 || minibatches == 0) throw config_error("ppo_trainer: ppo_epochs and minibatches must be >= 1");
    if (minibatches > train.batch_size)
      throw config_error("ppo_trainer: " + std::to_string(minibatches) + " minibatches of a batch of " +
                         std::to_string(train.batch_size) + " prompts leave some empty");
    if (sampling.max_new_tokens == 0) throw config_error("ppo_trainer: sampling.max_new_tokens must be >= 1");
    if (!(kl_coef >= 0.0) || !(vf_coef >= 0.0) || !(ent_coef >= 0.0))
      throw config_error("ppo_trainer: kl_coef, vf_coef and ent_coef must be >= 0");
  }
};

/// PPO against a reward policy and a frozen reference (see the file comment). The progress metrics of
/// each iteration hold "score" (mean reward), "kl" (mean summed KL to the reference per response),
/// "policy_loss", "value_loss", "clip_fraction", "entropy" and "response_length".
/// @tparam Params the policy's parameters (`full_parameters` or `lora_adapters`).
template <trainable_parameters Params, class Optimizer, lr_schedule Schedule = constant_schedule>
class ppo_trainer {
 public:
  using backend_type = typename Params::backend_type;
  using model_type = transformer<backend_type, float>;
  using storage_type = typename Params::storage_type;

  /// @pre `params`, `reference` outlive the trainer.
  ppo_trainer(Params& params, model_type& reference, Optimizer optimizer, ppo_options options, Schedule schedule = {})
      : params_(&params), reference_(&reference), options_(std::move(options)),
        value_head_(params.model().config().d_model), value_grad_(value_head_.size()),
        step_(params, std::move(optimizer), std::move(schedule), options_.train.max_grad_norm) {
    options_.validate();
    if (reference.config().vocab_size != params.model().config().vocab_size)
      throw config_error("ppo_trainer: the reference's vocabulary differs from the policy's");
    step_.add_group("value_head", value_head_, value_grad_);
  }

  /// The value head: (d_model), backend memory.
  [[nodiscard]] storage_type& value_head() noexcept { return value_head_; }

  /// Runs `options.train.max_steps` iterations (or `epochs` passes over `prompts`, `batch_size` prompts
  /// per iteration) of rollout and update; resumes from `options.train.checkpoint_dir`.
  template <reward_function Reward, class... Callbacks>
  train_result train(std::span<const std::vector<std::int32_t>> prompts, Reward&& reward, Callbacks&&... callbacks) {
    if constexpr (sizeof...(Callbacks) == 0) {
      progress_bar bar(stderr, 1);
      return run(prompts, reward, bar);
    } else {
      return run(prompts, reward, callbacks...);
    }
  }
  template <reward_function Reward, class... Callbacks>
  train_result train(const std::vector<std::vector<std::int32_t>>& prompts, Reward&& reward, Callbacks&&... callbacks) {
    return train(std::span<const std::vector<std::int32_t>>(prompts), std::forward<Reward>(reward),
                 std::forward<Callbacks>(callbacks)...);
  }

 private:
  // One sequence of a rollout: prompt + response with per-response-token quantities.
  struct rollout {
    std::vector<std::int32_t> prompt, response;
    std::vector<float> old_logp, ref_logp, old_values, advantages, returns;
    double score = 0.0, kl = 0.0;
  };

  // Per-response-token log-probabilities (and values when `values` is set) of `rows` under `model`.
  void evaluate(model_type& model, const std::vector<const rollout*>& rows, bool policy, bool with_values,
                std::vector<std::vector<float>>& logps, std::vector<std::vector<float>>* values) {
    std::vector<const std::vector<std::int32_t>*> ps, rs;
    for (const auto* r : rows) ps.push_back(&r->prompt), rs.push_back(&r->response);
    const auto batch = detail::make_response_rows(ps, rs, model.config().context_length, options_.pad_id);
    const std::size_t N = batch.rows * batch.length, V = model.config().vocab_size, C = model.config().d_model;
    const auto logits = model.forward(batch.ids, batch.rows, batch.length);
    buffers_.forward(logits.data(), batch.targets, N, V);
    const auto& logp = buffers_.host_logp;
    std::vector<std::size_t> where;  // the batch row of every response token, in order
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (std::size_t k = 0; k < rows[i]->response.size(); ++k) where.push_back(i * batch.length + rows[i]->prompt.size() - 1 + k);
    std::vector<float> all_values;
    if (values && with_values) all_values = head_values(model, where, C);
    logps.assign(rows.size(), {});
    if (values) values->assign(rows.size(), {});
    std::size_t at = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::size_t start = i * batch.length + rows[i]->prompt.size() - 1;
      logps[i].assign(logp.begin() + static_cast<std::ptrdiff_t>(start),
                      logp.begin() + static_cast<std::ptrdiff_t>(start + rows[i]->response.size()));
      if (values && with_values)
        for (std::size_t k = 0; k < rows[i]->response.size(); ++k) (*values)[i].push_back(all_values[at++]);
    }
    (void)policy;
  }

  // The value head on the rows `where` of the model's last hidden states: (M) values, on the host.
  std::vector<float> head_values(model_type& model, const std::vector<std::size_t>& where, std::size_t C) {
    const backend_type be{};
    const std::size_t M = where.size();
    if (where_.size() != M) where_ = index_storage(M);
    copy_from_host(be, where_.data(), where.data(), M);
    if (values_dev_.size() != M) values_dev_ = storage_type(M);
    scalar_head_forward(be, values_dev_.data(), model.hidden().data(), value_head_.data(), where_.data(), M, C);
    std::vector<float> out(M);
    copy_to_host(be, out.data(), values_dev_.data(), M);
    return out;
  }

  template <class Reward, class... Callbacks>
  train_result run(std::span<const std::vector<std::int32_t>> prompts, Reward& reward, Callbacks&... callbacks) {
    if (prompts.empty()) throw validation_error("ppo_trainer: there are no prompts");
    const train_options& o = options_.train;
    const std::size_t B = o.batch_size;
    std::size_t optimizer_steps = 0;
    detail::run_loop<decltype(step_)> loop{"ppo", o, step_};
    loop.total = o.max_steps != 0 ? o.max_steps : (o.epochs * prompts.size() + B - 1) / B;
    train_result result;
    result.resumed = loop.resume([&](const checkpoint& c) { optimizer_steps = c.meta.value("optimizer_steps", std::size_t{0}); });
    auto save_extra = [&](checkpoint& c) { c.meta["optimizer_steps"] = optimizer_steps; };
    notify_begin(loop.progress, callbacks...);
    data_order order(prompts.size(), o.seed);
    auto& model = params_->model();
    const std::size_t V = model.config().vocab_size, C = model.config().d_model;
    while (loop.done < loop.total) {
      const std::size_t iteration = loop.done + 1;
      // 1. rollout
      params_->before_forward();
      std::vector<std::vector<std::int32_t>> batch_prompts(B);
      std::vector<std::uint64_t> seeds(B);
      for (std::size_t i = 0; i < B; ++i) {
        batch_prompts[i] = prompts[order.at(loop.done * B + i)];
        seeds[i] = derive_seed(o.seed, {iteration, i, 0x9e0});
      }
      auto responses = sample_responses(model, std::span<const std::vector<std::int32_t>>(batch_prompts),
                                        options_.sampling, seeds);
      // 2. scoring
      const std::vector<double> scores = reward(std::span<const std::vector<std::int32_t>>(batch_prompts),
                                                std::span<const std::vector<std::int32_t>>(responses));
      if (scores.size() != B) throw validation_error("ppo_trainer: the reward returned " + std::to_string(scores.size()) +
                                                     " scores for " + std::to_string(B) + " responses");
      std::vector<rollout> rolls(B);
      std::vector<const rollout*> rows;
      for (std::size_t i = 0; i < B; ++i) {
        rolls[i].prompt = batch_prompts[i];
        rolls[i].response = std::move(responses[i]);
        rolls[i].score = scores[i];
        check_loss(scores[i], "ppo", iteration, "a reward");
        rows.push_back(&rolls[i]);
      }
      std::vector<std::vector<float>> old_logp, ref_logp, old_values;
      evaluate(model, rows, true, true, old_logp, &old_values);
      evaluate(*reference_, rows, false, false, ref_logp, nullptr);
      // 3. rewards, GAE, whitening
      std::size_t tokens = 0;
      double kl_total = 0.0, score_total = 0.0, length_total = 0.0;
      for (std::size_t i = 0; i < B; ++i) {
        auto& r = rolls[i];
        const std::size_t T = r.response.size();
        r.old_logp = old_logp[i];
        r.ref_logp = ref_logp[i];
        r.old_values = old_values[i];
        std::vector<float> kl(T), rewards(T);
        kl_penalty(cpu, kl.data(), r.old_logp.data(), r.ref_logp.data(), T, options_.kl);
        for (std::size_t t = 0; t < T; ++t) {
          rewards[t] = static_cast<float>(-options_.kl_coef * kl[t]);
          r.kl += kl[t];
        }
        rewards[T - 1] += static_cast<float>(r.score);
        r.advantages.resize(T);
        r.returns.resize(T);
        gae_advantages(cpu, r.advantages.data(), r.returns.data(), rewards.data(), r.old_values.data(), T,
                       options_.gamma, options_.lambda);
        tokens += T;
        kl_total += r.kl;
        score_total += r.score;
        length_total += static_cast<double>(T);
        result.tokens += r.prompt.size() + T;
      }
      if (options_.whiten_advantages && tokens > 1) {
        std::vector<float> all, mask;
        for (const auto& r : rolls) all.insert(all.end(), r.advantages.begin(), r.advantages.end());
        mask.assign(all.size(), 1.0f);
        whiten(cpu, all.data(), mask.data(), all.size(), true);
        std::size_t at = 0;
        for (auto& r : rolls)
          for (auto& a : r.advantages) a = all[at++];
      }
      // 4. PPO epochs over shuffled minibatches
      double policy_loss = 0.0, value_loss = 0.0, clip_fraction = 0.0, entropy_mean = 0.0;
      std::size_t updates = 0;
      std::vector<std::size_t> perm(B);
      for (std::size_t epoch = 0; epoch < options_.ppo_epochs; ++epoch) {
        std::iota(perm.begin(), perm.end(), std::size_t{0});
        rng shuffle(derive_seed(o.seed, {iteration, epoch, 0x5b}));
        for (std::size_t i = B; i > 1; --i) std::swap(perm[i - 1], perm[shuffle.uniform_index(i)]);
        for (std::size_t mb = 0; mb < options_.minibatches; ++mb) {
          const std::size_t from = mb * B / options_.minibatches, to = (mb + 1) * B / options_.minibatches;
          std::vector<const rollout*> members;
          for (std::size_t k = from; k < to; ++k) members.push_back(&rolls[perm[k]]);
          step_.zero_grad();
          params_->before_forward();
          const auto stats = update(model, members, V, C, iteration);
          params_->after_backward();
          ++optimizer_steps;
          step_.apply("ppo", optimizer_steps);
          policy_loss += stats[0];
          value_loss += stats[1];
          clip_fraction += stats[2];
          entropy_mean += stats[3];
          ++updates;
        }
      }
      loop.done = iteration;
      auto& pr = loop.progress;
      const double u = static_cast<double>(updates);
      pr.step = iteration;
      pr.loss = policy_loss / u + options_.vf_coef * value_loss / u;
      pr.tokens = result.tokens;
      pr.elapsed_seconds = loop.seconds();
      pr.metrics["score"] = score_total / static_cast<double>(B);
      pr.metrics["kl"] = kl_total / static_cast<double>(B);
      pr.metrics["policy_loss"] = policy_loss / u;
      pr.metrics["value_loss"] = value_loss / u;
      pr.metrics["clip_fraction"] = clip_fraction / u;
      pr.metrics["entropy"] = entropy_mean / u;
      pr.metrics["response_length"] = length_total / static_cast<double>(B);
      pr.metrics["run_steps"] = static_cast<double>(iteration - loop.first);
      result.loss = pr.loss;
      if (loop.after_step(iteration, save_extra, callbacks...)) {
        result.stopped_early = true;
        break;
      }
    }
    params_->before_forward();
    loop.finish(result, save_extra, callbacks...);
    return result;
  }

  // One minibatch's forward and backward. @return policy loss, value loss, clip fraction, mean entropy.
  std::array<double, 4> update(model_type& model, const std::vector<const rollout*>& members, std::size_t V,
                               std::size_t C, std::size_t iteration) {
    std::vector<const std::vector<std::int32_t>*> ps, rs;
    for (const auto* r : members) ps.push_back(&r->prompt), rs.push_back(&r->response);
    const auto batch = detail::make_response_rows(ps, rs, model.config().context_length, options_.pad_id);
    const std::size_t N = batch.rows * batch.length;
    const auto logits = model.forward(batch.ids, batch.rows, batch.length);  // (N, V), backend memory
    buffers_.forward(logits.data(), batch.targets, N, V);
    const auto& logp = buffers_.host_logp;
    // gather the response tokens of every member: (M)
    std::vector<float> lp, old_lp, adv, old_val, ret, mask;
    std::vector<std::size_t> where;  // row of each gathered token in the batch
    for (std::size_t i = 0; i < members.size(); ++i) {
      const auto& r = *members[i];
      const std::size_t start = i * batch.length + r.prompt.size() - 1;
      for (std::size_t k = 0; k < r.response.size(); ++k) {
        const std::size_t at = start + k;
        where.push_back(at);
        lp.push_back(logp[at]);
        old_lp.push_back(r.old_logp[k]);
        adv.push_back(r.advantages[k]);
        old_val.push_back(r.old_values[k]);
        ret.push_back(r.returns[k]);
        mask.push_back(1.0f);
      }
    }
    const std::vector<float> val = head_values(model, where, C);
    const std::size_t M = lp.size();
    const auto stats = ppo_policy_loss_forward(cpu, lp.data(), old_lp.data(), adv.data(), mask.data(), M,
                                               options_.clip_range);
    const double vloss = ppo_value_loss_forward(cpu, val.data(), old_val.data(), ret.data(), mask.data(), M,
                                                options_.clip_range_value);
    check_loss(stats.loss, "ppo", iteration, "the policy loss");
    check_loss(vloss, "ppo", iteration, "the value loss");
    std::vector<float> dlp(M, 0.0f), dval(M, 0.0f);
    ppo_policy_loss_backward(cpu, dlp.data(), lp.data(), old_lp.data(), adv.data(), mask.data(), M,
                             options_.clip_range, 1.0f);
    ppo_value_loss_backward(cpu, dval.data(), val.data(), old_val.data(), ret.data(), mask.data(), M,
                            options_.clip_range_value, static_cast<float>(options_.vf_coef));
    // scatter to (N) and (N, V) / (N, C), on the backend
    const backend_type be{};
    buffers_.host_dlogp.assign(N, 0.0f);
    for (std::size_t m = 0; m < M; ++m) buffers_.host_dlogp[where[m]] = dlp[m];
    (void)buffers_.backward(logits.data(), N, V);
    float* dlogits = buffers_.dlogits.data();  // (N, V)
    double entropy = 0.0;
    {
      if (entropy_.size() != N) {
        entropy_ = storage_type(N);
        dentropy_ = storage_type(N);
      }
      token_entropy_forward(be, entropy_.data(), logits.data(), N, V);
      std::vector<float> ent(N, 0.0f), dent(N, 0.0f);
      copy_to_host(be, ent.data(), entropy_.data(), N);
      for (std::size_t m = 0; m < M; ++m) entropy += ent[where[m]] / static_cast<double>(M);
      if (options_.ent_coef > 0.0) {
        for (std::size_t m = 0; m < M; ++m) dent[where[m]] = static_cast<float>(-options_.ent_coef / static_cast<double>(M));
        copy_from_host(be, dentropy_.data(), dent.data(), N);
        token_entropy_backward(be, dlogits, dentropy_.data(), logits.data(), N, V);
      }
    }
    if (dval_.size() != M) dval_ = storage_type(M);
    copy_from_host(be, dval_.data(), dval.data(), M);
    if (dhidden_.size() != N * C) dhidden_ = storage_type(N * C);
    fill(be, dhidden_.data(), 0.0f, N * C);
    // where_ holds `where` (head_values above)
    scalar_head_backward(be, value_grad_.data(), dhidden_.data(), model.hidden().data(), value_head_.data(), dval_.data(),
                         where_.data(), M, C);
    model.backward(std::span<const float>(dlogits, N * V), std::span<const float>(dhidden_.data(), N * C));
    return {stats.loss, vloss, stats.clip_fraction, entropy};
  }

  using index_storage = typename backend_type::template storage<std::size_t>;

  Params* params_;
  model_type* reference_;
  ppo_options options_;
  storage_type value_head_, value_grad_;
  // per-batch buffers in backend memory
  token_logprob_buffers<backend_type> buffers_;
  index_storage where_;
  storage_type values_dev_, dval_, entropy_, dentropy_, dhidden_;
  optimizer_step<Params, Optimizer, Schedule> step_;
};

}  // namespace cai
