/// @file feedback/labeling.hpp
/// From comparisons to preference labels (Bai et al. 2022, arXiv:2212.08073, section 4.1): each label is
/// asked under one comparison principle drawn at random from the constitution, from a seeded stream
/// keyed by the comparison's position, so the draws do not depend on batching or resuming;
/// `label_preferences` runs any `ranker` over the tasks and returns `preference` records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/random.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// A source of comparison principles: `c.draw_comparison(g)` draws one from a `cai::rng`.
/// Modelled by `constitution`.
template <class C>
concept draws_comparison_principles = requires(const C& c, rng& g) {
  { c.draw_comparison(g) } -> principle_reference;
};

/// One ranking task per comparison, each with a comparison principle drawn for it.
///
/// Comparison i (its index in the whole job is `first_index + i`) gets the principle
/// `principles.draw_comparison(rng(derive_seed(seed, {first_index + i})))` and the task seed
/// `derive_seed(seed, {first_index + i, 1})`.
/// @tparam Principles models `draws_comparison_principles` (a `constitution`).
/// @throws validation_error (from the constitution) when it has no comparison principle.
template <class Principles>
  requires draws_comparison_principles<Principles>
[[nodiscard]] std::vector<ranking_task<principle_of<Principles>>> draw_ranking_tasks(
    std::span<const comparison> pairs, const Principles& principles, std::uint64_t seed, std::uint64_t first_index = 0) {
  std::vector<ranking_task<principle_of<Principles>>> out;
  out.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::uint64_t index = first_index + i;
    rng g(derive_seed(seed, {index}));
    out.push_back({pairs[i], principles.draw_comparison(g), derive_seed(seed, {index, 1})});
  }
  return out;
}

/// Labels the tasks with `ranker` and returns one AI preference per task: the comparison, P(A) from the
/// ranker, the principle's name, and `label_source::ai`.
/// @throws error when the ranker returns a label count other than the task count, or a label outside
///         [0, 1].
template <class Ranker, class P>
[[nodiscard]] std::vector<preference> label_preferences(Ranker& ranker, std::span<const ranking_task<P>> tasks) {
  CAI_ASSERT_RANKER(Ranker, P);
  const std::vector<double> p = ranker.rank(tasks);
  if (p.size() != tasks.size())
    throw error("label_preferences: the ranker returned " + std::to_string(p.size()) + " labels for " +
                std::to_string(tasks.size()) + " tasks");
  std::vector<preference> out;
  out.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (!(p[i] >= 0.0 && p[i] <= 1.0))
      throw error("label_preferences: the ranker gave task " + std::to_string(i) + " the label " +
                  std::to_string(p[i]) + ", which is not a probability");
    out.push_back({tasks[i].pair, p[i], std::string(std::string_view(tasks[i].principle.name)), label_source::ai});
  }
  return out;
}

}  // namespace cai
