/// @file feedback/clamped.hpp
/// `clamped<Ranker>`: limits another ranker's labels to a range. Bai et al. 2022 (arXiv:2212.08073,
/// section 4.1) clamp chain-of-thought labels to 40-60%, because chain-of-thought makes the feedback
/// model's probabilities nearly 0 or 1 and a preference model trained on such labels overfits; the
/// default range is theirs.
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"

namespace cai {

/// The range of a `clamped` ranker.
struct clamp_range {
  double low = 0.4;
  double high = 0.6;
  friend bool operator==(const clamp_range&, const clamp_range&) = default;
};

/// A ranker whose labels are `std::clamp(p, low, high)` of an inner ranker's.
/// @tparam Ranker models `ranker` for the principle type of the tasks ranked.
template <class Ranker>
class clamped {
 public:
  /// @param inner an already-built ranker, moved in.
  /// @param range the limits (default 0.4 to 0.6).
  /// @throws config_error unless 0 <= low <= high <= 1.
  explicit clamped(Ranker inner, clamp_range range = {}) : inner_(std::move(inner)), range_(range) {
    if (!(range_.low >= 0.0 && range_.low <= range_.high && range_.high <= 1.0))
      throw config_error("clamped: the range [" + std::to_string(range_.low) + ", " + std::to_string(range_.high) +
                         "] is not within [0, 1] with low <= high");
  }

  template <class P>
  std::vector<double> rank(std::span<const ranking_task<P>> tasks) {
    CAI_ASSERT_RANKER(Ranker, P);
    std::vector<double> p = inner_.rank(tasks);
    for (double& x : p) x = std::clamp(x, range_.low, range_.high);
    return p;
  }

  [[nodiscard]] clamp_range range() const noexcept { return range_; }
  [[nodiscard]] Ranker& inner() noexcept { return inner_; }
  [[nodiscard]] const Ranker& inner() const noexcept { return inner_; }

 private:
  Ranker inner_;
  clamp_range range_;
};

}  // namespace cai
