/// @file feedback/debiased.hpp
/// `debiased<Ranker>`: removes position bias by asking both orders. A feedback model that prefers
/// whichever response comes first (or second) gives P(A) for (A, B) and P(A) for (B, A) that do not sum
/// to one; averaging P(A | A, B) with 1 - P(A | B, A) cancels that preference, and half their excess
/// over one is the measured position bias. (An order-swap check of the kind used to evaluate LLM
/// judges; applied here to the multiple-choice feedback of Bai et al. 2022, arXiv:2212.08073.)
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"

namespace cai {

/// A ranker that labels each comparison in both orders and averages.
///
/// For each task, the inner ranker sees the task and the task with `response_a` and `response_b`
/// swapped (same principle, same seed), all in one batched `rank` call. With p = P(A | A, B) and
/// q = P(A' | B, A) (the first option of the swapped question, that is B), the label is
/// (p + (1 - q)) / 2, and the position bias of the task is (p + q) / 2 - 1/2: 0 for an order-blind
/// ranker, positive when the ranker favours the first option, negative for the second.
/// @tparam Ranker models `ranker` for the principle type of the tasks ranked.
template <class Ranker>
class debiased {
 public:
  /// @param inner an already-built ranker, moved in.
  explicit debiased(Ranker inner) : inner_(std::move(inner)) {}

  template <class P>
  std::vector<double> rank(std::span<const ranking_task<P>> tasks) {
    CAI_ASSERT_RANKER(Ranker, P);
    std::vector<ranking_task<P>> both;
    both.reserve(2 * tasks.size());
    both.insert(both.end(), tasks.begin(), tasks.end());
    for (const auto& t : tasks) {
      ranking_task<P> s = t;
      std::swap(s.pair.response_a, s.pair.response_b);
      both.push_back(std::move(s));
    }
    const std::vector<double> p = inner_.rank(std::span<const ranking_task<P>>(both));
    if (p.size() != both.size())
      throw error("debiased: the inner ranker returned " + std::to_string(p.size()) + " labels for " +
                  std::to_string(both.size()) + " tasks");
    const std::size_t n = tasks.size();
    std::vector<double> out(n);
    bias_.assign(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = (p[i] + (1.0 - p[n + i])) / 2.0;
      bias_[i] = (p[i] + p[n + i]) / 2.0 - 0.5;
    }
    return out;
  }

  /// Per task of the last `rank` call: (P(A | A, B) + P(B | B, A)) / 2 - 1/2, in [-1/2, 1/2]; positive
  /// when the inner ranker favours the first option.
  [[nodiscard]] const std::vector<double>& position_bias() const noexcept { return bias_; }
  /// The mean of `position_bias()` over the last call (0 when it ranked nothing).
  [[nodiscard]] double mean_position_bias() const noexcept {
    double sum = 0.0;
    for (double b : bias_) sum += b;
    return bias_.empty() ? 0.0 : sum / static_cast<double>(bias_.size());
  }
  [[nodiscard]] Ranker& inner() noexcept { return inner_; }
  [[nodiscard]] const Ranker& inner() const noexcept { return inner_; }

 private:
  Ranker inner_;
  std::vector<double> bias_;
};

}  // namespace cai
