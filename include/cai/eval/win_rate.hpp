/// @file eval/win_rate.hpp
/// Pairwise evaluation of model snapshots: every pair of snapshots answers the same prompts, a `ranker`
/// judges each pair of responses under one principle (optionally in both orders, to cancel position
/// bias), and the outcomes become win rates (ties count half, with Wilson score intervals), sequential
/// Elo ratings, and the order-independent maximum-likelihood Bradley-Terry ratings with standard errors.
///
/// The scale is the one of Bai et al. 2022a (arXiv:2204.05862, section 2.4) and of the Constitutional AI
/// paper's figures (Bai et al. 2022, arXiv:2212.08073, figures 2 and 8): a rating difference of
/// Delta points means that the higher-rated snapshot wins with probability
///
///     P(win) = 1 / (1 + 10^(-Delta / 400)),      Delta = 400 log10(P / (1 - P)),
///
/// (`win_probability`, `elo_difference`). Elo's sequential update is Elo (1978); the Bradley-Terry model
/// is Bradley and Terry (1952), fitted with the MM algorithm of Hunter (2004, Annals of Statistics 32).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/random.hpp"
#include "cai/text/types.hpp"

namespace cai {

// ---------------------------------------------------------------------------------------------------
// The Elo scale

/// P(a snapshot rated `delta` points above another wins): 1 / (1 + 10^(-delta / scale)).
[[nodiscard]] inline double win_probability(double delta, double scale = 400.0) noexcept {
  return 1.0 / (1.0 + std::pow(10.0, -delta / scale));
}

/// The rating difference that gives win probability `p`: scale * log10(p / (1 - p)). How Bai et al.
/// 2022a turn a preference model's (or crowdworkers') win rate into an Elo difference.
/// @pre 0 < p < 1 (0 and 1 give -inf and +inf).
[[nodiscard]] inline double elo_difference(double p, double scale = 400.0) noexcept {
  return scale * std::log10(p / (1.0 - p));
}

/// The rating difference implied by a preference model's score (reward) gap r_a - r_b: the model says
/// P(a better) = 1 / (1 + exp(-(r_a - r_b))), which is `elo_difference` of that probability, that is
/// scale / ln 10 * (r_a - r_b) (about 173.7 points per nat at scale 400). Bai et al. 2022a (section 2.4)
/// read their preference models' score differences as Elo differences this way.
[[nodiscard]] inline double elo_from_score_gap(double score_gap, double scale = 400.0) noexcept {
  return scale / std::log(10.0) * score_gap;
}

// ---------------------------------------------------------------------------------------------------
// Snapshots, matches, outcomes

/// One model snapshot's responses: `responses[k]` answers prompt k of the evaluation.
struct snapshot_responses {
  std::string name;
  std::vector<std::string> responses;
};

/// One judged comparison: snapshot `a`'s and snapshot `b`'s responses to prompt `prompt`, and the
/// ranker's P(a's response is better).
struct match {
  std::size_t a = 0;
  std::size_t b = 0;
  std::size_t prompt = 0;
  double p_a = 0.5;
  friend bool operator==(const match&, const match&) = default;
};

/// How a match's label becomes an outcome.
struct outcome_rule {
  /// |p_a - 1/2| <= tie_margin is a tie; above, a win for a; below, a win for b.
  double tie_margin = 0.0;
  /// Elo and Bradley-Terry use the label itself as a's score instead of 1, 1/2 or 0.
  bool soft = false;
};

/// a's score in a match: 1 (win), 1/2 (tie) or 0 (loss) by `rule.tie_margin`, or `p_a` when `rule.soft`.
[[nodiscard]] inline double match_score(double p_a, const outcome_rule& rule = {}) noexcept {
  if (rule.soft) return p_a;
  if (p_a > 0.5 + rule.tie_margin) return 1.0;
  if (p_a < 0.5 - rule.tie_margin) return 0.0;
  return 0.5;
}

/// Options of `compare_snapshots`.
struct pairwise_options {
  /// Rank every pair in both orders, in the same call, and use (p + (1 - q)) / 2 with p = P(a | a, b)
  /// and q = P(b | b, a), as `debiased` does.
  bool swap_orders = false;
  /// Task seeds are derive_seed(seed, {prompt, a, b}) (the swapped task has the same seed).
  std::uint64_t seed = 0;
};

/// Compares every pair of snapshots (a < b) on every prompt with `ranker` under `principle`, in one
/// batched `rank` call: match order is prompt-major, then a, then b.
/// @tparam Ranker models `ranker<Ranker, P>`.
/// @param prompts the dialogues every snapshot answered.
/// @param snapshots one entry per snapshot, each with one response per prompt.
/// @param principle the question asked (a helpfulness question for a helpfulness tournament, a
///        harmlessness question for a harmlessness one).
/// @throws config_error when a snapshot has a response count other than the prompt count, or fewer
///         than two snapshots are given; error when the ranker returns the wrong count or a label outside
///         [0, 1].
template <class Ranker, class P>
[[nodiscard]] std::vector<match> compare_snapshots(Ranker& ranker, std::span<const dialogue> prompts,
                                                   std::span<const snapshot_responses> snapshots,
                                                   const P& principle, const pairwise_options& options = {}) {
  CAI_ASSERT_PRINCIPLE(P);
  CAI_ASSERT_RANKER(Ranker, P);
  if (snapshots.size() < 2)
    throw config_error("compare_snapshots: " + std::to_string(snapshots.size()) +
                       " snapshot(s) given; a tournament needs at least two");
  for (const auto& s : snapshots)
    if (s.responses.size() != prompts.size())
      throw config_error("compare_snapshots: snapshot '" + s.name + "' has " + std::to_string(s.responses.size()) +
                         " responses for " + std::to_string(prompts.size()) + " prompts; give one per prompt");
  std::vector<match> matches;
  std::vector<ranking_task<P>> tasks;
  for (std::size_t k = 0; k < prompts.size(); ++k)
    for (std::size_t a = 0; a < snapshots.size(); ++a)
      for (std::size_t b = a + 1; b < snapshots.size(); ++b) {
        matches.push_back({a, b, k, 0.5});
        tasks.push_back({comparison{prompts[k], snapshots[a].responses[k], snapshots[b].responses[k]}, principle,
                         derive_seed(options.seed, {k, a, b})});
      }
  const std::size_t n = tasks.size();
  if (options.swap_orders)
    for (std::size_t i = 0; i < n; ++i) {
      ranking_task<P> t = tasks[i];
      std::swap(t.pair.response_a, t.pair.response_b);
      tasks.push_back(std::move(t));
    }
  const std::vector<double> p = ranker.rank(std::span<const ranking_task<P>>(tasks));
  if (p.size() != tasks.size())
    throw error("compare_snapshots: the ranker returned " + std::to_string(p.size()) + " labels for " +
                std::to_string(tasks.size()) + " tasks");
  for (std::size_t i = 0; i < p.size(); ++i)
    if (!(p[i] >= 0.0 && p[i] <= 1.0))
      throw error("compare_snapshots: the ranker gave task " + std::to_string(i) + " the label " +
                  std::to_string(p[i]) + ", which is not a probability");
  for (std::size_t i = 0; i < n; ++i) matches[i].p_a = options.swap_orders ? (p[i] + (1.0 - p[n + i])) / 2.0 : p[i];
  return matches;
}

// ---------------------------------------------------------------------------------------------------
// Win rates

/// A two-sided confidence interval.
struct interval {
  double lower = 0.0;
  double upper = 0.0;
  friend bool operator==(const interval&, const interval&) = default;
};

/// Wilson's score interval for a proportion `score / n` (ties counted as half a win make `score` a
/// multiple of 1/2); z = 1.96 gives 95%. n = 0 gives [0, 1].
[[nodiscard]] inline interval wilson_interval(double score, double n, double z = 1.96) noexcept {
  if (n <= 0.0) return {0.0, 1.0};
  const double p = score / n;
  const double z2 = z * z;
  const double denom = 1.0 + z2 / n;
  const double centre = (p + z2 / (2.0 * n)) / denom;
  const double half = z / denom * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n));
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

/// Wins, ties and losses between every two snapshots.
struct win_table {
  std::vector<std::string> names;
  std::vector<std::vector<std::size_t>> wins;  ///< wins[i][j]: matches that i won against j
  std::vector<std::vector<std::size_t>> ties;  ///< ties[i][j] == ties[j][i]

  /// Matches played between i and j (0 for i == j).
  [[nodiscard]] std::size_t games(std::size_t i, std::size_t j) const {
    return wins.at(i).at(j) + wins.at(j).at(i) + ties.at(i).at(j);
  }
  /// Matches played by i.
  [[nodiscard]] std::size_t games(std::size_t i) const {
    std::size_t n = 0;
    for (std::size_t j = 0; j < names.size(); ++j) n += games(i, j);
    return n;
  }
  /// i's points against j: wins + ties / 2.
  [[nodiscard]] double score(std::size_t i, std::size_t j) const {
    return static_cast<double>(wins.at(i).at(j)) + 0.5 * static_cast<double>(ties.at(i).at(j));
  }
  /// i's points against everyone.
  [[nodiscard]] double score(std::size_t i) const {
    double s = 0.0;
    for (std::size_t j = 0; j < names.size(); ++j) s += score(i, j);
    return s;
  }
  /// (wins + ties / 2) / games of i against j; 1/2 when they never met.
  [[nodiscard]] double win_rate(std::size_t i, std::size_t j) const {
    const std::size_t n = games(i, j);
    return n == 0 ? 0.5 : score(i, j) / static_cast<double>(n);
  }
  /// (wins + ties / 2) / games of i against everyone; 1/2 with no game.
  [[nodiscard]] double win_rate(std::size_t i) const {
    const std::size_t n = games(i);
    return n == 0 ? 0.5 : score(i) / static_cast<double>(n);
  }
  /// Wilson interval of `win_rate(i, j)`.
  [[nodiscard]] interval win_rate_interval(std::size_t i, std::size_t j, double z = 1.96) const {
    return wilson_interval(score(i, j), static_cast<double>(games(i, j)), z);
  }
  /// Wilson interval of `win_rate(i)`.
  [[nodiscard]] interval win_rate_interval(std::size_t i, double z = 1.96) const {
    return wilson_interval(score(i), static_cast<double>(games(i)), z);
  }
  friend bool operator==(const win_table&, const win_table&) = default;
};

namespace detail {
inline void check_matches(std::span<const match> matches, std::size_t players, const char* where) {
  for (std::size_t m = 0; m < matches.size(); ++m) {
    const match& x = matches[m];
    if (x.a >= players || x.b >= players || x.a == x.b)
      throw config_error(std::string(where) + ": match " + std::to_string(m) + " is between players " +
                         std::to_string(x.a) + " and " + std::to_string(x.b) + ", but there are " +
                         std::to_string(players) + " players; a match needs two different players");
    if (!(x.p_a >= 0.0 && x.p_a <= 1.0))
      throw config_error(std::string(where) + ": match " + std::to_string(m) + " has the label " +
                         std::to_string(x.p_a) + ", which is not a probability");
  }
}
}  // namespace detail

/// Counts wins, ties and losses (by `rule.tie_margin`; `rule.soft` is ignored here).
/// @param names one name per snapshot; matches index into it.
/// @throws config_error for a match whose players are out of range or equal.
[[nodiscard]] inline win_table tabulate(std::span<const match> matches, std::vector<std::string> names,
                                        const outcome_rule& rule = {}) {
  const std::size_t n = names.size();
  detail::check_matches(matches, n, "tabulate");
  win_table t{std::move(names), std::vector<std::vector<std::size_t>>(n, std::vector<std::size_t>(n, 0)),
              std::vector<std::vector<std::size_t>>(n, std::vector<std::size_t>(n, 0))};
  outcome_rule hard = rule;
  hard.soft = false;
  for (const match& m : matches) {
    const double s = match_score(m.p_a, hard);
    if (s == 1.0) ++t.wins[m.a][m.b];
    else if (s == 0.0) ++t.wins[m.b][m.a];
    else ++t.ties[m.a][m.b], ++t.ties[m.b][m.a];
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------
// Elo

/// Options of the sequential Elo update.
struct elo_options {
  double k = 32.0;            ///< the update step K
  double initial = 1000.0;    ///< every snapshot's starting rating
  double scale = 400.0;       ///< 400: a difference of 400 points is 10:1 odds
  outcome_rule rule{};        ///< how a label becomes a score
};

/// Sequential Elo ratings: matches are played in the order given, and after each one
///
///     E_a = 1 / (1 + 10^((R_b - R_a) / scale)),   R_a += K (S_a - E_a),   R_b -= K (S_a - E_a),
///
/// with S_a = `match_score(p_a, rule)`. The result depends on the order of the matches; prefer
/// `bradley_terry` for a final ranking, and use this to follow ratings over a stream of comparisons.
/// @param players the number of snapshots.
/// @throws config_error for a match whose players are out of range or equal.
[[nodiscard]] inline std::vector<double> elo_ratings(std::span<const match> matches, std::size_t players,
                                                     const elo_options& options = {}) {
  detail::check_matches(matches, players, "elo_ratings");
  std::vector<double> r(players, options.initial);
  for (const match& m : matches) {
    const double expected = 1.0 / (1.0 + std::pow(10.0, (r[m.b] - r[m.a]) / options.scale));
    const double delta = options.k * (match_score(m.p_a, options.rule) - expected);
    r[m.a] += delta;
    r[m.b] -= delta;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Bradley-Terry

/// Options of the Bradley-Terry fit.
struct bradley_terry_options {
  double anchor = 1000.0;     ///< the mean of the returned ratings
  double scale = 400.0;       ///< Elo points per factor 10 of odds
  outcome_rule rule{};        ///< how a label becomes a score
  /// Virtual games that each snapshot plays, half won and half lost, against a virtual opponent of
  /// strength 1 (a Bayesian prior that keeps every rating finite). 0: the plain maximum-likelihood
  /// estimate, which exists only when every snapshot both scored against and conceded to the rest (see
  /// `bradley_terry`).
  double prior = 0.0;
  std::size_t max_iterations = 100000;
  double tolerance = 1e-12;   ///< stop when no log-strength moves by more than this
};

/// A fitted Bradley-Terry model.
struct bradley_terry_fit {
  std::vector<double> ratings;          ///< on the Elo scale, mean `anchor`
  std::vector<double> standard_errors;  ///< of the ratings, in Elo points (from the Fisher information)
  double log_likelihood = 0.0;          ///< of the matches' scores at the fit (natural log, prior excluded)
  std::size_t iterations = 0;
  bool converged = false;

  /// A normal-approximation (Wald) interval of rating i: rating +- z * standard error.
  [[nodiscard]] interval rating_interval(std::size_t i, double z = 1.96) const {
    return {ratings.at(i) - z * standard_errors.at(i), ratings.at(i) + z * standard_errors.at(i)};
  }
};

namespace detail {
/// Inverts a small symmetric positive-definite matrix by Gauss-Jordan elimination with partial pivoting.
inline std::vector<std::vector<double>> invert_small_matrix(std::vector<std::vector<double>> m) {
  const std::size_t n = m.size();
  std::vector<std::vector<double>> inv(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i) inv[i][i] = 1.0;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t pivot = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(m[r][c]) > std::abs(m[pivot][c])) pivot = r;
    if (std::abs(m[pivot][c]) < 1e-300) throw error("bradley_terry: the information matrix is singular");
    std::swap(m[c], m[pivot]);
    std::swap(inv[c], inv[pivot]);
    const double d = m[c][c];
    for (std::size_t k = 0; k < n; ++k) m[c][k] /= d, inv[c][k] /= d;
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c || m[r][c] == 0.0) continue;
      const double f = m[r][c];
      for (std::size_t k = 0; k < n; ++k) m[r][k] -= f * m[c][k], inv[r][k] -= f * inv[c][k];
    }
  }
  return inv;
}
}  // namespace detail

/// The maximum-likelihood Bradley-Terry ratings: strengths g_i = exp(theta_i) such that
///
///     P(i beats j) = g_i / (g_i + g_j) = 1 / (1 + exp(theta_j - theta_i)),
///
/// maximising sum over matches of S_a log P(a beats b) + (1 - S_a) log P(b beats a), with S_a =
/// `match_score(p_a, rule)` (a tie is half a win for each side). The MM iteration of Hunter (2004),
///
///     g_i <- (W_i + prior / 2) / (sum over i's matches of 1 / (g_i + g_opponent) + prior / (g_i + 1)),
///
/// where W_i is i's total score, converges to the unique maximum. The ratings are
/// `anchor + scale * log10(g_i) - mean`, so differences follow `win_probability`, and unlike `elo_ratings`
/// they do not depend on the order of the matches. Standard errors come from the inverse of the observed
/// Fisher information (the sum, over matches, of P (1 - P) (e_a - e_b)(e_a - e_b)^T, plus the prior's
/// diagonal), taken on the ratings that sum to a constant.
/// @param players the number of snapshots.
/// @throws config_error for a match whose players are out of range or equal, and, with `prior == 0`,
///         when the maximum-likelihood estimate does not exist: some group of snapshots never scored
///         against the others (a snapshot that lost every game, or two groups that never met). The message
///         names a snapshot of that group; set `prior` above 0 to rate them anyway.
[[nodiscard]] inline bradley_terry_fit bradley_terry(std::span<const match> matches, std::size_t players,
                                                     const bradley_terry_options& options = {}) {
  detail::check_matches(matches, players, "bradley_terry");
  if (!(options.prior >= 0.0)) throw config_error("bradley_terry: the prior must be >= 0");
  const std::size_t n = players;
  bradley_terry_fit fit;
  if (n == 0) return fit;
  std::vector<double> won(n, 0.0);
  // scored[i][j]: i scored something against j (for the existence check).
  std::vector<std::vector<char>> scored(n, std::vector<char>(n, 0));
  for (const match& m : matches) {
    const double s = match_score(m.p_a, options.rule);
    won[m.a] += s;
    won[m.b] += 1.0 - s;
    if (s > 0.0) scored[m.a][m.b] = 1;
    if (s < 1.0) scored[m.b][m.a] = 1;
  }
  if (options.prior == 0.0 && n > 1) {
    // The estimate exists iff the graph "i scored against j" is strongly connected (Ford 1957).
    auto reach = [&](bool forward) {
      std::vector<char> seen(n, 0);
      std::vector<std::size_t> stack{0};
      seen[0] = 1;
      while (!stack.empty()) {
        const std::size_t i = stack.back();
        stack.pop_back();
        for (std::size_t j = 0; j < n; ++j)
          if (!seen[j] && (forward ? scored[i][j] : scored[j][i])) seen[j] = 1, stack.push_back(j);
      }
      return seen;
    };
    const auto fwd = reach(true), bwd = reach(false);
    for (std::size_t i = 0; i < n; ++i)
      if (!fwd[i] || !bwd[i])
        throw config_error("bradley_terry: no maximum-likelihood ratings exist: snapshot " + std::to_string(i) +
                           (!bwd[i] ? " and its group never scored a point against snapshot 0's group"
                                    : " and its group never conceded a point to snapshot 0's group") +
                           " (a snapshot that won or lost every game, or groups that never met); "
                           "set bradley_terry_options::prior above 0");
  }
  std::vector<double> g(n, 1.0);
  for (fit.iterations = 0; fit.iterations < options.max_iterations;) {
    ++fit.iterations;
    std::vector<double> denom(n, 0.0);
    for (const match& m : matches) {
      const double d = 1.0 / (g[m.a] + g[m.b]);
      denom[m.a] += d;
      denom[m.b] += d;
    }
    double moved = 0.0;
    std::vector<double> next(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double num = won[i] + options.prior / 2.0;
      const double den = denom[i] + options.prior / (g[i] + 1.0);
      next[i] = den == 0.0 ? g[i] : num / den;
    }
    if (options.prior == 0.0) {  // only ratios matter: keep the geometric mean at 1
      double mean_log = 0.0;
      for (double x : next) mean_log += std::log(x);
      mean_log /= static_cast<double>(n);
      for (double& x : next) x *= std::exp(-mean_log);
    }
    for (std::size_t i = 0; i < n; ++i) moved = std::max(moved, std::abs(std::log(next[i]) - std::log(g[i])));
    g = std::move(next);
    if (moved < options.tolerance) {
      fit.converged = true;
      break;
    }
  }
  std::vector<double> theta(n);
  double mean = 0.0;
  for (std::size_t i = 0; i < n; ++i) mean += (theta[i] = std::log(g[i]));
  mean /= static_cast<double>(n);
  const double per_nat = options.scale / std::log(10.0);
  fit.ratings.resize(n);
  for (std::size_t i = 0; i < n; ++i) fit.ratings[i] = options.anchor + per_nat * (theta[i] - mean);
  // Observed information on the log-strengths.
  std::vector<std::vector<double>> info(n, std::vector<double>(n, 0.0));
  for (const match& m : matches) {
    const double p = 1.0 / (1.0 + std::exp(theta[m.b] - theta[m.a]));
    const double s = match_score(m.p_a, options.rule);
    fit.log_likelihood += (s > 0.0 ? s * std::log(p) : 0.0) + (s < 1.0 ? (1.0 - s) * std::log(1.0 - p) : 0.0);
    const double w = p * (1.0 - p);
    info[m.a][m.a] += w;
    info[m.b][m.b] += w;
    info[m.a][m.b] -= w;
    info[m.b][m.a] -= w;
  }
  if (options.prior > 0.0)
    for (std::size_t i = 0; i < n; ++i) {
      const double p = 1.0 / (1.0 + std::exp(-theta[i]));
      info[i][i] += options.prior * p * (1.0 - p);
    }
  // Covariance of the centred log-strengths: C (I + J/n)^-1 C with C = I - J/n is the pseudo-inverse
  // when the information matrix's null space is the constant vector (no prior).
  const double inv_n = 1.0 / static_cast<double>(n);
  std::vector<std::vector<double>> shifted = info;
  if (options.prior == 0.0)
    for (auto& row : shifted)
      for (double& x : row) x += inv_n;
  fit.standard_errors.assign(n, 0.0);
  try {
    auto cov = detail::invert_small_matrix(shifted);
    if (options.prior == 0.0)
      for (auto& row : cov)
        for (double& x : row) x -= inv_n;
    else {  // project onto ratings that sum to a constant: C cov C
      std::vector<double> row_mean(n, 0.0);
      double all = 0.0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) row_mean[i] += cov[i][j] * inv_n, all += cov[i][j] * inv_n * inv_n;
      for (std::size_t i = 0; i < n; ++i) cov[i][i] = cov[i][i] - 2.0 * row_mean[i] + all;
    }
    for (std::size_t i = 0; i < n; ++i) fit.standard_errors[i] = per_nat * std::sqrt(std::max(0.0, cov[i][i]));
  } catch (const error&) {
    // No information (no match): infinite uncertainty.
    fit.standard_errors.assign(n, HUGE_VAL);
  }
  return fit;
}

}  // namespace cai
