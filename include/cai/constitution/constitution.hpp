/// @file constitution/constitution.hpp
/// `constitution`: the written principles that Constitutional AI (Bai et al. 2022, arXiv:2212.08073)
/// judges against, with the few-shot critique examples that teach a model the format. Holds the
/// principles, finds them by name, draws one per step (uniformly or by weight) from a seeded,
/// platform-independent generator, validates itself, and composes with other constitutions.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cai/constitution/principle.hpp"
#include "cai/error.hpp"
#include "cai/random.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// A constitution: named principles and few-shot critique examples.
struct constitution {
  std::string name;
  std::string description;
  std::vector<constitutional_principle> principles;
  std::vector<critique_example> few_shot;  ///< worked critique-revision rounds, shown before a task

  /// The principle called `principle_name`, or nullptr.
  [[nodiscard]] const constitutional_principle* find(std::string_view principle_name) const noexcept {
    auto it = std::find_if(principles.begin(), principles.end(),
                           [&](const auto& p) { return p.name == principle_name; });
    return it == principles.end() ? nullptr : &*it;
  }

  /// Number of principles usable for critique-revision (both requests present).
  [[nodiscard]] std::size_t critique_count() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(principles.begin(), principles.end(), [](const auto& p) { return p.has_critique(); }));
  }
  /// Number of principles usable for AI-feedback comparisons.
  [[nodiscard]] std::size_t comparison_count() const noexcept {
    return static_cast<std::size_t>(std::count_if(principles.begin(), principles.end(),
                                                  [](const auto& p) { return p.has_comparison(); }));
  }

  /// Draws a critique principle, with probability proportional to its weight, from `g`.
  /// @throws validation_error when the constitution has no critique principle of positive weight.
  [[nodiscard]] const constitutional_principle& draw_critique(rng& g) const {
    return draw(g, [](const constitutional_principle& p) { return p.has_critique(); }, "critique");
  }
  /// Draws a comparison principle, with probability proportional to its weight, from `g`.
  /// @throws validation_error when the constitution has no comparison principle of positive weight.
  [[nodiscard]] const constitutional_principle& draw_comparison(rng& g) const {
    return draw(g, [](const constitutional_principle& p) { return p.has_comparison(); }, "comparison");
  }

 private:
  template <class Pred>
  const constitutional_principle& draw(rng& g, Pred usable, const char* kind) const {
    std::vector<double> weights(principles.size(), 0.0);
    bool uniform = true;
    for (std::size_t i = 0; i < principles.size(); ++i) {
      if (!usable(principles[i])) continue;
      weights[i] = principles[i].weight;
      if (principles[i].weight != 1.0) uniform = false;
    }
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < weights.size(); ++i)
      if (weights[i] > 0.0) candidates.push_back(i);
    if (candidates.empty())
      throw validation_error("constitution '" + name + "' has no " + kind +
                             " principle to draw from (none has both texts and a positive weight)");
    if (uniform) return principles[candidates[g.uniform_index(candidates.size())]];
    return principles[g.weighted_index(weights)];
  }
};

}  // namespace cai
