/// @file constitution/constitution.hpp
/// `constitution`: the written principles that Constitutional AI (Bai et al. 2022, arXiv:2212.08073)
/// judges against, with the few-shot critique examples that teach a model the format. Holds the
/// principles, finds them by name, draws one per step (uniformly or by weight) from a seeded,
/// platform-independent generator, and composes with other constitutions (`compose`). Loading, saving and
/// importing live in `constitution/io.hpp`, the rules a constitution must follow in
/// `constitution/validate.hpp`, the default constitution and the deployment presets in
/// `constitution/presets.hpp`.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
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

  /// Equal when every field is equal, principles and few-shot examples in the same order.
  friend bool operator==(const constitution&, const constitution&) = default;

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

/// Composes constitutions, left to right: the way a deployment preset is laid over the default.
///
/// - principles are concatenated in order; when a later part has a principle whose name is already
///   present, the later principle replaces the earlier one in place (it keeps the earlier position), so
///   a preset can reword, re-tag or re-weight a principle of the default by naming it (weight 0 switches
///   it off);
/// - few-shot examples are concatenated in order;
/// - the name is the parts' non-empty names joined with "+" ("default+medical"); the description is
///   the parts' non-empty descriptions joined with a blank line.
///
/// The result is not validated; `validate_constitution` (constitution/validate.hpp) checks it.
/// @param parts the constitutions to compose, earliest first; none gives an empty constitution.
[[nodiscard]] inline constitution compose(std::span<const constitution> parts) {
  constitution out;
  for (const constitution& part : parts) {
    if (!part.name.empty()) out.name += (out.name.empty() ? "" : "+") + part.name;
    if (!part.description.empty())
      out.description += (out.description.empty() ? "" : "\n\n") + part.description;
    for (const constitutional_principle& p : part.principles) {
      auto it = std::find_if(out.principles.begin(), out.principles.end(),
                             [&](const constitutional_principle& q) { return q.name == p.name; });
      if (it != out.principles.end())
        *it = p;
      else
        out.principles.push_back(p);
    }
    out.few_shot.insert(out.few_shot.end(), part.few_shot.begin(), part.few_shot.end());
  }
  return out;
}

/// Composes `first` with `rest`, left to right: `compose(default_constitution(), presets::medical())`.
/// See `compose(std::span<const constitution>)` for the rules.
/// @param first the base constitution.
/// @param rest constitutions laid over it, in order; a later one wins a name clash.
template <std::same_as<constitution>... Rest>
[[nodiscard]] constitution compose(const constitution& first, const Rest&... rest) {
  const std::vector<constitution> parts{first, rest...};
  return compose(std::span<const constitution>(parts));
}

}  // namespace cai
