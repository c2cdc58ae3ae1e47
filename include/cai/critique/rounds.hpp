/// @file critique/rounds.hpp
/// Revision strategies, composed at compile time from a critic (Bai et al. 2022, arXiv:2212.08073,
/// section 3: "we can apply the critique-revision procedure repeatedly, sampling a new principle at
/// each step"). `multi_turn<Critic, N>` runs exactly N rounds with a fresh principle each, keeping every
/// round so that the SL-CAI-1..N datasets can be cut; `until_satisfied<Critic, Judge, MaxRounds>` revises
/// until a judge finds no principle violated, or MaxRounds is reached. Both model `reviser`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/config.hpp"
#include "cai/random.hpp"

namespace cai {

namespace detail {
/// The critique task of round `round` for a record with seed `seed` and the principle `p`.
template <class P>
critique_task<P> round_task(const exchange& current, const P& p, std::uint64_t seed, unsigned round) {
  return critique_task<P>{current, p, derive_seed(seed, {round, 1})};
}

/// A reviser gets one seed per exchange.
inline void check_seed_count(const char* who, std::span<const exchange> starts, std::span<const std::uint64_t> seeds) {
  if (starts.size() != seeds.size())
    throw config_error(std::string(who) + "::revise: " + std::to_string(starts.size()) + " exchanges but " +
                       std::to_string(seeds.size()) + " seeds");
}
}  // namespace detail

/// Exactly `Rounds` critique-revision rounds per response, a principle drawn independently each round.
/// @tparam Critic models `critic` for the principle type of the constitution used.
/// @tparam Rounds number of rounds (the paper: 4).
template <class Critic, unsigned Rounds = CAI_DEFAULT_REVISION_ROUNDS>
class multi_turn {
  static_assert(Rounds >= 1, "cai::multi_turn needs at least one round");

 public:
  static constexpr unsigned max_rounds = Rounds;

  /// @param critic an already-built critic, copied in.
  explicit multi_turn(Critic critic) : critic_(std::move(critic)) {}

  /// @param starts the exchanges to revise.
  /// @param seeds one per exchange; round k draws its principle from `rng(derive_seed(seed, {k}))`.
  /// @param principles a `principle_set`, such as a `constitution`.
  template <class Principles>
  std::vector<std::vector<critique_step>> revise(std::span<const exchange> starts,
                                                 std::span<const std::uint64_t> seeds,
                                                 const Principles& principles) {
    using P = principle_of<Principles>;
    CAI_ASSERT_CRITIC(Critic, P);
    detail::check_seed_count("multi_turn", starts, seeds);
    std::vector<exchange> current(starts.begin(), starts.end());
    std::vector<std::vector<critique_step>> rounds(starts.size());
    std::vector<critique_task<P>> tasks;
    for (unsigned k = 0; k < Rounds; ++k) {
      tasks.clear();
      for (std::size_t i = 0; i < current.size(); ++i) {
        rng g(derive_seed(seeds[i], {k}));
        tasks.push_back(detail::round_task(current[i], principles.draw_critique(g), seeds[i], k));
      }
      std::vector<critique_step> steps = critic_.critique(std::span<const critique_task<P>>(tasks));
      for (std::size_t i = 0; i < current.size(); ++i) {
        current[i].response = steps[i].revision;
        rounds[i].push_back(std::move(steps[i]));
      }
    }
    return rounds;
  }

  [[nodiscard]] Critic& critic() noexcept { return critic_; }

 private:
  Critic critic_;
};

/// Revises until the judge finds no principle violated, at most `MaxRounds` rounds.
///
/// Each round, the judge sees the current response against every critique principle of positive weight;
/// a response with no violation is finished; otherwise a principle is drawn, by weight, among the ones
/// it violates (from `rng(derive_seed(seed, {k}))`), and the critic revises against it.
/// The judge's cost is one verdict per (response, principle) per round.
/// @tparam Critic models `critic`. @tparam Judge models `judge`. @tparam MaxRounds the cap on rounds.
template <class Critic, class Judge, unsigned MaxRounds = CAI_DEFAULT_REVISION_ROUNDS>
class until_satisfied {
  static_assert(MaxRounds >= 1, "cai::until_satisfied needs MaxRounds >= 1");

 public:
  static constexpr unsigned max_rounds = MaxRounds;

  /// @param critic and @param judge already-built policies, copied in.
  until_satisfied(Critic critic, Judge judge) : critic_(std::move(critic)), judge_(std::move(judge)) {}

  template <class Principles>
  std::vector<std::vector<critique_step>> revise(std::span<const exchange> starts,
                                                 std::span<const std::uint64_t> seeds,
                                                 const Principles& principles) {
    using P = principle_of<Principles>;
    CAI_ASSERT_CRITIC(Critic, P);
    CAI_ASSERT_JUDGE(Judge, P);
    detail::check_seed_count("until_satisfied", starts, seeds);
    std::vector<std::size_t> usable;  // indices of critique principles of positive weight
    for (std::size_t j = 0; j < principles.principles.size(); ++j) {
      const auto& p = principles.principles[j];
      if (!std::string_view(p.critique_request).empty() && !std::string_view(p.revision_request).empty() &&
          weight_of(p) > 0.0)
        usable.push_back(j);
    }
    if (usable.empty()) throw validation_error("until_satisfied: the constitution has no critique principle");

    std::vector<exchange> current(starts.begin(), starts.end());
    std::vector<std::vector<critique_step>> rounds(starts.size());
    satisfied_.assign(starts.size(), false);
    std::vector<std::size_t> active(starts.size());
    for (std::size_t i = 0; i < active.size(); ++i) active[i] = i;

    for (unsigned k = 0; k < MaxRounds && !active.empty(); ++k) {
      std::vector<critique_task<P>> checks;
      checks.reserve(active.size() * usable.size());
      for (std::size_t i : active)
        for (std::size_t j : usable) checks.push_back({current[i], principles.principles[j], derive_seed(seeds[i], {k, 2})});
      const std::vector<bool> verdicts = judge_.violates(std::span<const critique_task<P>>(checks));
      if (verdicts.size() != checks.size())
        throw error("until_satisfied: the judge returned " + std::to_string(verdicts.size()) +
                    " verdicts for " + std::to_string(checks.size()) + " checks");

      std::vector<std::size_t> still;
      std::vector<critique_task<P>> tasks;
      for (std::size_t a = 0; a < active.size(); ++a) {
        const std::size_t i = active[a];
        std::vector<double> weights(usable.size(), 0.0);
        bool any = false;
        for (std::size_t u = 0; u < usable.size(); ++u)
          if (verdicts[a * usable.size() + u]) {
            weights[u] = weight_of(principles.principles[usable[u]]);
            any = true;
          }
        if (!any) {
          satisfied_[i] = true;
          continue;
        }
        rng g(derive_seed(seeds[i], {k}));
        const auto& p = principles.principles[usable[g.weighted_index(weights)]];
        tasks.push_back(detail::round_task(current[i], p, seeds[i], k));
        still.push_back(i);
      }
      if (tasks.empty()) break;
      std::vector<critique_step> steps = critic_.critique(std::span<const critique_task<P>>(tasks));
      for (std::size_t t = 0; t < still.size(); ++t) {
        current[still[t]].response = steps[t].revision;
        rounds[still[t]].push_back(std::move(steps[t]));
      }
      active = std::move(still);
    }
    return rounds;
  }

  /// Per record of the last `revise` call: true when the judge found no violation before the cap.
  [[nodiscard]] const std::vector<bool>& satisfied() const noexcept { return satisfied_; }
  [[nodiscard]] Critic& critic() noexcept { return critic_; }
  [[nodiscard]] Judge& judge() noexcept { return judge_; }

 private:
  template <class P>
  static double weight_of(const P& p) {
    if constexpr (requires { p.weight; }) return static_cast<double>(p.weight);
    else return 1.0;
  }
  Critic critic_;
  Judge judge_;
  std::vector<bool> satisfied_;
};

}  // namespace cai
