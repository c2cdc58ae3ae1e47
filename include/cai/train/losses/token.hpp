/// @file train/losses/token.hpp
/// Per-token quantities of a language model's output distribution, as forward/backward pairs over
/// row-major logits (llm.c's habit, backend tag first): the log-probability of each target token, from
/// which DPO (Rafailov et al. 2023) and PPO (Schulman et al. 2017) build sequence log-probabilities, and the
/// entropy of each token's softmax, PPO's entropy bonus. Both follow TRL's formulas (`selective_log_softmax`
/// and `entropy_from_logits`): log p = logits[t] − logsumexp(logits), H = logsumexp(logits) − Σ softmax·logits.
/// Backward functions accumulate (`+=`) into their gradient buffers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cai/backend/cpu.hpp"
#include "cai/backend/tags.hpp"
#include "cai/error.hpp"

namespace cai {

/// Log-probability of each row's target under the row's softmax: logp[n] = logits[n, t_n] − lse[n], with
/// lse[n] = logsumexp(logits[n, :]) saved for the backward pass. A negative target masks the row: logp = 0
/// (lse is still written).
/// @tparam T `float` or `double`.
/// @param logp    (N) output log-probabilities.
/// @param lse     (N) output log-sum-exp of each row, for `token_logprob_backward`.
/// @param logits  (N, V) row-major.
/// @param targets (N) token ids in [0, V), or negative to mask the row.
/// @return nothing; writes `logp` and `lse`.
/// @throws validation_error for a target ≥ V.
template <class T>
void token_logprob_forward(cpu_t, T* logp, T* lse, const T* logits, const std::int32_t* targets, std::size_t N,
                           std::size_t V) {
  // logp, lse: (N)   logits: (N, V)   targets: (N)
  for (std::size_t n = 0; n < N; ++n)  // checked before the parallel loop, which must not throw
    if (targets[n] >= static_cast<std::int64_t>(V))
      throw validation_error("token_logprob_forward: target " + std::to_string(targets[n]) + " at row " +
                             std::to_string(n) + " is outside the vocabulary of " + std::to_string(V) +
                             " (a negative target masks the row)");
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    const T m = *std::max_element(x, x + V);
    T sum = 0;
    for (std::size_t i = 0; i < V; ++i) sum += std::exp(x[i] - m);
    lse[n] = m + std::log(sum);
    const auto target = targets[n];
    logp[n] = target < 0 ? T(0) : x[target] - lse[n];
  }
}

/// dlogits[n, :] += dlogp[n] * (onehot(t_n) − softmax(logits[n, :])); masked rows (negative target) are
/// left untouched.
/// @param dlogits (N, V) accumulated gradient of the logits.
/// @param dlogp   (N) gradient of the loss with respect to `logp`.
/// @param logits  (N, V) the forward pass's logits.
/// @param lse     (N) the forward pass's log-sum-exp.
/// @param targets (N) the forward pass's targets.
/// @return nothing; accumulates into `dlogits`.
template <class T>
void token_logprob_backward(cpu_t, T* dlogits, const T* dlogp, const T* logits, const T* lse,
                            const std::int32_t* targets, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dlogp, lse, targets: (N)
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    const T* x = logits + n * V;
    T* g = dlogits + n * V;
    const T d = dlogp[n];
    for (std::size_t i = 0; i < V; ++i) g[i] -= d * std::exp(x[i] - lse[n]);
    g[targets[n]] += d;
  }
}

/// Entropy of each row's softmax (PPO's entropy bonus, Schulman et al. 2017):
/// entropy[n] = −Σ_i p_i log p_i = logsumexp(x) − Σ_i p_i x_i with p = softmax(x), x = logits[n, :]
/// (TRL's `entropy_from_logits`).
/// @param entropy (N) output, in nats.
/// @param logits  (N, V) row-major.
/// @return nothing; writes `entropy`.
template <class T>
void token_entropy_forward(cpu_t, T* entropy, const T* logits, std::size_t N, std::size_t V) {
  // entropy: (N)   logits: (N, V)
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    const T m = *std::max_element(x, x + V);
    T sum = 0, weighted = 0;  // Σ exp(x − m), Σ exp(x − m) (x − m)
    for (std::size_t i = 0; i < V; ++i) {
      const T e = std::exp(x[i] - m);
      sum += e;
      weighted += e * (x[i] - m);
    }
    entropy[n] = std::log(sum) - weighted / sum;  // lse − Σ p x, both shifted by m
  }
}

/// dlogits[n, j] += dentropy[n] * (−p_j (log p_j + H_n)), the gradient of the entropy with respect to the
/// logits (recomputed from the logits; nothing is saved by the forward pass).
/// @param dlogits  (N, V) accumulated gradient of the logits.
/// @param dentropy (N) gradient of the loss with respect to `entropy`.
/// @param logits   (N, V) the forward pass's logits.
/// @return nothing; accumulates into `dlogits`.
template <class T>
void token_entropy_backward(cpu_t, T* dlogits, const T* dentropy, const T* logits, std::size_t N, std::size_t V) {
  // dlogits, logits: (N, V)   dentropy: (N)
  CAI_PARALLEL_FOR(N * V)
  for (std::size_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    T* g = dlogits + n * V;
    const T m = *std::max_element(x, x + V);
    T sum = 0, weighted = 0;
    for (std::size_t i = 0; i < V; ++i) {
      const T e = std::exp(x[i] - m);
      sum += e;
      weighted += e * (x[i] - m);
    }
    const T lse = std::log(sum);  // relative to m
    const T H = lse - weighted / sum;
    const T d = dentropy[n];
    for (std::size_t i = 0; i < V; ++i) {
      const T logp = (x[i] - m) - lse;
      g[i] -= d * std::exp(logp) * (logp + H);
    }
  }
}

}  // namespace cai
