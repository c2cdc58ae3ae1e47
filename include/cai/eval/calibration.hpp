/// @file eval/calibration.hpp
/// Reliability data for predicted probabilities: equal-width bins of the prediction, with the mean
/// prediction and the mean label in each bin, the expected and maximum calibration errors, the Brier
/// score and the log loss. This is what the calibration figures of Bai et al. 2022 (arXiv:2212.08073,
/// figure 5, and Bai et al. 2022a, arXiv:2204.05862, figure 9) plot for preference models and feedback
/// models: a well-calibrated model's bins lie on the diagonal. The binning is that of
/// `preference_metrics` (train/preference_model.hpp): bin = min(B - 1, floor(p * B)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "cai/error.hpp"

namespace cai {

/// One bin of a reliability diagram.
struct reliability_bin {
  double lower = 0.0;           ///< the bin covers [lower, upper) (the last one includes 1)
  double upper = 0.0;
  std::size_t count = 0;        ///< predictions in the bin
  double mean_predicted = 0.0;  ///< their mean (0 for an empty bin)
  double mean_observed = 0.0;   ///< the mean of their labels (0 for an empty bin)
  friend bool operator==(const reliability_bin&, const reliability_bin&) = default;
};

/// Reliability data and summary scores.
struct reliability_data {
  std::vector<reliability_bin> bins;
  std::size_t count = 0;
  /// sum over bins of (count / total) |mean_predicted - mean_observed|.
  double expected_calibration_error = 0.0;
  /// max over non-empty bins of |mean_predicted - mean_observed|.
  double max_calibration_error = 0.0;
  /// mean of (p - y)^2.
  double brier_score = 0.0;
  /// mean of -(y ln p + (1 - y) ln(1 - p)), with p clipped to [1e-12, 1 - 1e-12].
  double log_loss = 0.0;
  friend bool operator==(const reliability_data&, const reliability_data&) = default;
};

/// Options of `reliability`.
struct reliability_options {
  std::size_t bins = 10;
  /// Fold every prediction onto [1/2, 1]: p < 1/2 becomes 1 - p with label 1 - y. For pairwise labels,
  /// where P(A) = 0.2 is the claim P(B) = 0.8, this plots the confidence of the preferred side, as the
  /// paper's preference-model calibration figures do.
  bool symmetric = false;
};

/// Bins predictions and labels.
/// @param predicted probabilities in [0, 1].
/// @param labels outcomes in [0, 1]: 0/1, or soft labels (a bin's observed value is then the mean label).
/// @throws config_error when the spans differ in length, `bins` is 0, or a value lies outside [0, 1].
[[nodiscard]] inline reliability_data reliability(std::span<const double> predicted, std::span<const double> labels,
                                                  const reliability_options& options = {}) {
  if (predicted.size() != labels.size())
    throw config_error("reliability: " + std::to_string(predicted.size()) + " predictions but " +
                       std::to_string(labels.size()) + " labels; pass one label per prediction");
  if (options.bins == 0) throw config_error("reliability: reliability_options::bins must be at least 1");
  const std::size_t nb = options.bins;
  reliability_data out;
  out.count = predicted.size();
  out.bins.resize(nb);
  for (std::size_t b = 0; b < nb; ++b) {
    out.bins[b].lower = static_cast<double>(b) / static_cast<double>(nb);
    out.bins[b].upper = static_cast<double>(b + 1) / static_cast<double>(nb);
  }
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    double p = predicted[i];
    double y = labels[i];
    if (!(p >= 0.0 && p <= 1.0))
      throw config_error("reliability: prediction " + std::to_string(i) + " is " + std::to_string(p) +
                         ", not a probability in [0, 1]");
    if (!(y >= 0.0 && y <= 1.0))
      throw config_error("reliability: label " + std::to_string(i) + " is " + std::to_string(y) +
                         ", not in [0, 1]");
    if (options.symmetric && p < 0.5) p = 1.0 - p, y = 1.0 - y;
    auto& bin = out.bins[std::min(nb - 1, static_cast<std::size_t>(p * static_cast<double>(nb)))];
    ++bin.count;
    bin.mean_predicted += p;
    bin.mean_observed += y;
    out.brier_score += (p - y) * (p - y);
    const double q = std::clamp(p, 1e-12, 1.0 - 1e-12);
    out.log_loss -= y * std::log(q) + (1.0 - y) * std::log(1.0 - q);
  }
  if (out.count == 0) return out;
  const double n = static_cast<double>(out.count);
  out.brier_score /= n;
  out.log_loss /= n;
  for (auto& bin : out.bins) {
    if (bin.count == 0) continue;
    bin.mean_predicted /= static_cast<double>(bin.count);
    bin.mean_observed /= static_cast<double>(bin.count);
    const double gap = std::abs(bin.mean_predicted - bin.mean_observed);
    out.expected_calibration_error += static_cast<double>(bin.count) / n * gap;
    out.max_calibration_error = std::max(out.max_calibration_error, gap);
  }
  return out;
}

/// Reliability data from bins computed elsewhere, such as `preference_metrics::bins` (members `count`,
/// `predicted`, `observed`: the per-bin means), assumed of equal width over [0, 1]. The Brier score and
/// the log loss need the raw predictions and are left at 0.
/// @tparam Bins a range of objects with members `count`, `predicted` and `observed`.
template <class Bins>
[[nodiscard]] reliability_data reliability_from_bins(const Bins& bins) {
  reliability_data out;
  const std::size_t nb = static_cast<std::size_t>(std::size(bins));
  std::size_t b = 0;
  for (const auto& in : bins) {
    reliability_bin r;
    r.lower = static_cast<double>(b) / static_cast<double>(nb);
    r.upper = static_cast<double>(b + 1) / static_cast<double>(nb);
    r.count = static_cast<std::size_t>(in.count);
    r.mean_predicted = r.count == 0 ? 0.0 : static_cast<double>(in.predicted);
    r.mean_observed = r.count == 0 ? 0.0 : static_cast<double>(in.observed);
    out.count += r.count;
    out.bins.push_back(r);
    ++b;
  }
  for (const auto& r : out.bins) {
    if (r.count == 0) continue;
    const double gap = std::abs(r.mean_predicted - r.mean_observed);
    out.expected_calibration_error += static_cast<double>(r.count) / static_cast<double>(out.count) * gap;
    out.max_calibration_error = std::max(out.max_calibration_error, gap);
  }
  return out;
}

}  // namespace cai
