/// @file feedback/critic_ensemble.hpp
/// The ensemble idea on the critique side of Constitutional AI (Bai et al. 2022, arXiv:2212.08073):
/// several critics (over several models, or one model sampled several times) each critique and revise
/// the response, and a ranker picks the best revision. `best_revision<Ranker, Critics...>` models
/// `critic`, so it slots into `multi_turn` and `until_satisfied` wherever a single critic does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/random.hpp"

namespace cai {

/// How `best_revision` compares revisions.
struct best_revision_options {
  /// The comparison question used when the task's principle has none (critique-only principles).
  std::string fallback_question =
      "Which of these assistant responses is less harmful? Choose the response that a wise, ethical, polite "
      "and friendly person would more likely say.";
};

/// Several critics revise; a ranker picks the best revision.
///
/// For each task, critic c sees the task with seed `derive_seed(task.seed, {c})`. Every pair of
/// revisions (a < b) is then compared by the ranker, as responses A and B to the exchange's context,
/// under the task's principle (its comparison question, or `fallback_question` when it has none), with
/// seed `derive_seed(task.seed, {N + pair})`; all pairs of all tasks go in one `rank` call. Revision a
/// scores the sum of its win probabilities, P(a beats b); the highest wins (the first critic on a tie),
/// and its step (principle, critique, revision) is returned. With one critic, nothing is ranked.
/// @tparam Ranker models `ranker` for the principle type of the tasks.
/// @tparam Critics at least one; each models `critic` for that principle type.
template <class Ranker, class... Critics>
class best_revision {
  static_assert(sizeof...(Critics) >= 1, "cai::best_revision needs at least one critic");

 public:
  static constexpr std::size_t size = sizeof...(Critics);

  /// @param ranker and @param critics already-built policies, moved in.
  explicit best_revision(Ranker ranker, Critics... critics)
      : ranker_(std::move(ranker)), critics_(std::move(critics)...) {}
  best_revision(best_revision_options options, Ranker ranker, Critics... critics)
      : ranker_(std::move(ranker)), critics_(std::move(critics)...), options_(std::move(options)) {}

  template <class P>
  std::vector<critique_step> critique(std::span<const critique_task<P>> tasks) {
    CAI_ASSERT_PRINCIPLE(P);
    CAI_ASSERT_RANKER(Ranker, P);
    static_assert((critiques<Critics, P> && ...),
                  "cai: every critic of a best_revision needs a member critique(std::span<const "
                  "cai::critique_task<P>>) returning std::vector<cai::critique_step>");
    std::vector<std::vector<critique_step>> steps(size);  // (critic, task)
    run_critics<P>(tasks, steps, std::make_index_sequence<size>{});

    const std::size_t n = tasks.size();
    choices_.assign(n, 0);
    scores_.assign(n, std::vector<double>(size, 0.0));
    if constexpr (size > 1) {
      std::vector<ranking_task<P>> duels;
      duels.reserve(n * size * (size - 1) / 2);
      for (std::size_t i = 0; i < n; ++i) {
        P principle = tasks[i].principle;
        if (std::string_view(principle.comparison_question).empty()) {
          if constexpr (std::is_assignable_v<decltype((principle.comparison_question)), const std::string&>)
            principle.comparison_question = options_.fallback_question;
          else
            throw validation_error("best_revision: principle '" + std::string(std::string_view(principle.name)) +
                                   "' has no comparison question and its type cannot take the fallback");
        }
        std::uint64_t pair_index = 0;
        for (std::size_t a = 0; a < size; ++a)
          for (std::size_t b = a + 1; b < size; ++b, ++pair_index)
            duels.push_back({comparison{tasks[i].subject.context, steps[a][i].revision, steps[b][i].revision},
                             principle, derive_seed(tasks[i].seed, {size + pair_index})});
      }
      const std::vector<double> p = ranker_.rank(std::span<const ranking_task<P>>(duels));
      if (p.size() != duels.size())
        throw error("best_revision: the ranker returned " + std::to_string(p.size()) + " labels for " +
                    std::to_string(duels.size()) + " comparisons");
      std::size_t d = 0;
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t a = 0; a < size; ++a)
          for (std::size_t b = a + 1; b < size; ++b, ++d) {
            scores_[i][a] += p[d];
            scores_[i][b] += 1.0 - p[d];
          }
        for (std::size_t c = 1; c < size; ++c)
          if (scores_[i][c] > scores_[i][choices_[i]]) choices_[i] = c;
      }
    }
    std::vector<critique_step> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(std::move(steps[choices_[i]][i]));
    return out;
  }

  /// Per task of the last call: the index of the critic whose revision won.
  [[nodiscard]] const std::vector<std::size_t>& last_choices() const noexcept { return choices_; }
  /// Per task of the last call: each critic's summed win probability.
  [[nodiscard]] const std::vector<std::vector<double>>& last_scores() const noexcept { return scores_; }
  [[nodiscard]] Ranker& ranker() noexcept { return ranker_; }
  template <std::size_t I>
  [[nodiscard]] auto& critic() noexcept { return std::get<I>(critics_); }

 private:
  template <class P, std::size_t... I>
  void run_critics(std::span<const critique_task<P>> tasks, std::vector<std::vector<critique_step>>& steps,
                   std::index_sequence<I...>) {
    (run_critic<P, I>(tasks, steps[I]), ...);
  }
  template <class P, std::size_t I>
  void run_critic(std::span<const critique_task<P>> tasks, std::vector<critique_step>& out) {
    std::vector<critique_task<P>> mine(tasks.begin(), tasks.end());
    for (auto& t : mine) t.seed = derive_seed(t.seed, {I});
    out = std::get<I>(critics_).critique(std::span<const critique_task<P>>(mine));
    if (out.size() != tasks.size())
      throw error("best_revision: critic " + std::to_string(I) + " returned " + std::to_string(out.size()) +
                  " steps for " + std::to_string(tasks.size()) + " tasks");
  }

  Ranker ranker_;
  std::tuple<Critics...> critics_;
  best_revision_options options_;
  std::vector<std::size_t> choices_;
  std::vector<std::vector<double>> scores_;
};

}  // namespace cai
