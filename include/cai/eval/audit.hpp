/// @file eval/audit.hpp
/// The audit of a constitution (Bai et al. 2022, arXiv:2212.08073): does it say one thing, does it see
/// everything, and does it make the model refuse?
///
///  1. Disagreement: every comparison is labelled by a `ranker` under every comparison principle (or
///     under k drawn per comparison); for two principles, the share of the comparisons labelled by both
///     on which they prefer different responses. High values expose conflicting principles (a
///     helpfulness principle against a harmlessness one, by design; two harm principles, by mistake).
///  2. Label entropy per principle: the mean binary entropy of its soft labels (how undecided it is) and
///     the entropy of its outcomes A / tie / B (a principle that always prefers the same position, or
///     always ties, says little).
///  3. Coverage gaps: the exchanges that no critique principle flags, asked of a `judge`
///     (`critique_judge`, `keyword_judge`): red-team prompts the constitution does not cover.
///  4. Refusals: the share of revised outputs that are evasive, first and last, and per principle of the
///     round that wrote them, from a judge callback or `refusal_detector`. The paper warns that a
///     feedback model asked for the "least harmful" response can prefer refusing everything (section 4.1
///     and figure 9: evasiveness); this catches a constitution that trains that.
///
/// The results are JSON (nlohmann-json) and a readable fixed-width table (`audit_table`).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/eval/rates.hpp"
#include "cai/eval/win_rate.hpp"
#include "cai/random.hpp"
#include "cai/text/json.hpp"
#include "cai/text/types.hpp"

namespace cai {

// ---------------------------------------------------------------------------------------------------
// 1-2. Disagreement and entropy

/// Options of `audit_disagreement`.
struct audit_options {
  /// A label within `tie_margin` of 1/2 is a tie (prefers neither response); `soft` is ignored.
  outcome_rule rule{};
  /// Rank every task in both orders too, and average as `debiased` does.
  bool swap_orders = false;
  /// Principles asked per comparison: 0 (or at least the principle count) asks every comparison
  /// principle; k > 0 draws k distinct ones uniformly from rng(derive_seed(seed, {comparison})).
  std::size_t principles_per_comparison = 0;
  /// Task seeds are derive_seed(seed, {comparison, principle, 1}).
  std::uint64_t seed = 0;
};

/// Two principles that disagree.
struct principle_conflict {
  std::string first;
  std::string second;
  double disagreement = 0.0;
  std::size_t shared = 0;
  friend bool operator==(const principle_conflict&, const principle_conflict&) = default;
};

/// Labels of every comparison under every comparison principle, and what they say of the principles.
struct principle_disagreement {
  std::vector<std::string> principles;  ///< the constitution's comparison principles, in order
  std::size_t comparisons = 0;
  /// labels[i][c]: P(A) under principle i for comparison c; NaN where i was not asked about c.
  std::vector<std::vector<double>> labels;
  /// outcomes[i]: how many of i's labels prefer A, tie, prefer B.
  std::vector<std::array<std::size_t, 3>> outcomes;
  std::vector<std::vector<std::size_t>> shared;   ///< [i][j]: comparisons labelled by both
  std::vector<std::vector<std::size_t>> opposed;  ///< [i][j]: of those, the ones where one prefers A, the other B
  std::vector<std::vector<double>> disagreement;  ///< opposed / shared (0 when nothing is shared; 0 on the diagonal)
  std::vector<std::vector<double>> mean_abs_difference;  ///< mean |p_i - p_j| over shared comparisons
  /// Mean over i's labels of H(p) = -p log2 p - (1 - p) log2 (1 - p), in bits: 0 when every label is
  /// certain, 1 when every label is 1/2.
  std::vector<double> label_entropy;
  /// Entropy of the shares of A / tie / B among i's outcomes, in bits (0 to log2 3).
  std::vector<double> outcome_entropy;

  /// The pairs (i < j) whose disagreement is at least `threshold` over at least `min_shared` shared
  /// comparisons, most conflicting first.
  [[nodiscard]] std::vector<principle_conflict> conflicts(double threshold = 0.25, std::size_t min_shared = 1) const {
    std::vector<principle_conflict> out;
    for (std::size_t i = 0; i < principles.size(); ++i)
      for (std::size_t j = i + 1; j < principles.size(); ++j)
        if (shared[i][j] >= min_shared && shared[i][j] > 0 && disagreement[i][j] >= threshold)
          out.push_back({principles[i], principles[j], disagreement[i][j], shared[i][j]});
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.disagreement > b.disagreement; });
    return out;
  }
  friend bool operator==(const principle_disagreement&, const principle_disagreement&) = default;
};

/// The binary entropy of p in bits; 0 at p = 0 and p = 1.
[[nodiscard]] inline double binary_entropy(double p) noexcept {
  auto term = [](double x) { return x <= 0.0 ? 0.0 : -x * std::log2(x); };
  return term(p) + term(1.0 - p);
}

/// Fills the derived members of `d` (outcomes, shared, opposed, disagreement, mean_abs_difference,
/// label_entropy, outcome_entropy) from `d.labels` (NaN: not asked).
inline void summarize_disagreement(principle_disagreement& d, const outcome_rule& rule = {}) {
  const std::size_t m = d.labels.size();
  d.outcomes.assign(m, {0, 0, 0});
  d.shared.assign(m, std::vector<std::size_t>(m, 0));
  d.opposed.assign(m, std::vector<std::size_t>(m, 0));
  d.disagreement.assign(m, std::vector<double>(m, 0.0));
  d.mean_abs_difference.assign(m, std::vector<double>(m, 0.0));
  d.label_entropy.assign(m, 0.0);
  d.outcome_entropy.assign(m, 0.0);
  outcome_rule hard = rule;
  hard.soft = false;
  auto side = [&](double p) {
    const double s = match_score(p, hard);
    return s == 1.0 ? 1 : s == 0.0 ? -1 : 0;
  };
  for (std::size_t i = 0; i < m; ++i) {
    std::size_t asked = 0;
    for (double p : d.labels[i]) {
      if (std::isnan(p)) continue;
      ++asked;
      d.label_entropy[i] += binary_entropy(p);
      ++d.outcomes[i][static_cast<std::size_t>(1 - side(p))];
    }
    if (asked != 0) {
      d.label_entropy[i] /= static_cast<double>(asked);
      for (std::size_t k = 0; k < 3; ++k)
        if (d.outcomes[i][k] != 0) {
          const double f = static_cast<double>(d.outcomes[i][k]) / static_cast<double>(asked);
          d.outcome_entropy[i] -= f * std::log2(f);
        }
    }
    for (std::size_t j = 0; j < m; ++j) {
      if (j == i) continue;
      double diff = 0.0;
      const std::size_t n = std::min(d.labels[i].size(), d.labels[j].size());
      for (std::size_t c = 0; c < n; ++c) {
        const double p = d.labels[i][c], q = d.labels[j][c];
        if (std::isnan(p) || std::isnan(q)) continue;
        ++d.shared[i][j];
        diff += std::abs(p - q);
        if (side(p) * side(q) < 0) ++d.opposed[i][j];
      }
      if (d.shared[i][j] != 0) {
        d.disagreement[i][j] = static_cast<double>(d.opposed[i][j]) / static_cast<double>(d.shared[i][j]);
        d.mean_abs_difference[i][j] = diff / static_cast<double>(d.shared[i][j]);
      }
    }
  }
}

/// Labels `comparisons` under the comparison principles of `principles` with `ranker` (one batched
/// `rank` call) and measures how the principles disagree.
/// @tparam Ranker models `ranker<Ranker, principle_of<Principles>>`.
/// @tparam Principles models `principle_set` (a `constitution`); its principles with a non-empty
///         `comparison_question` are audited, whatever their weight.
/// @throws validation_error when no principle has a comparison question; error when the ranker returns
///         the wrong count or a label outside [0, 1].
template <class Ranker, class Principles>
  requires principle_set<Principles>
[[nodiscard]] principle_disagreement audit_disagreement(Ranker& ranker, const Principles& principles,
                                                        std::span<const comparison> comparisons,
                                                        const audit_options& options = {}) {
  using P = principle_of<Principles>;
  CAI_ASSERT_RANKER(Ranker, P);
  std::vector<std::size_t> usable;
  for (std::size_t i = 0; i < principles.principles.size(); ++i)
    if (!std::string_view(principles.principles[i].comparison_question).empty()) usable.push_back(i);
  if (usable.empty())
    throw validation_error("audit_disagreement: no principle has a comparison question; the audit needs at least one");
  const std::size_t m = usable.size();
  principle_disagreement d;
  for (std::size_t i : usable) d.principles.emplace_back(std::string_view(principles.principles[i].name));
  d.comparisons = comparisons.size();
  d.labels.assign(m, std::vector<double>(comparisons.size(), std::numeric_limits<double>::quiet_NaN()));

  const std::size_t k = options.principles_per_comparison == 0 ? m : std::min(m, options.principles_per_comparison);
  std::vector<ranking_task<P>> tasks;
  std::vector<std::pair<std::size_t, std::size_t>> where;  // (principle, comparison)
  std::vector<std::size_t> order(m);
  for (std::size_t c = 0; c < comparisons.size(); ++c) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (k < m) {  // partial Fisher-Yates: the first k of `order` are a uniform draw without replacement
      rng g(derive_seed(options.seed, {c}));
      for (std::size_t s = 0; s < k; ++s) std::swap(order[s], order[s + g.uniform_index(m - s)]);
      std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
    }
    for (std::size_t s = 0; s < k; ++s) {
      const std::size_t i = order[s];
      tasks.push_back({comparisons[c], principles.principles[usable[i]], derive_seed(options.seed, {c, i, 1})});
      where.emplace_back(i, c);
    }
  }
  const std::size_t n = tasks.size();
  if (options.swap_orders)
    for (std::size_t t = 0; t < n; ++t) {
      ranking_task<P> s = tasks[t];
      std::swap(s.pair.response_a, s.pair.response_b);
      tasks.push_back(std::move(s));
    }
  const std::vector<double> p = ranker.rank(std::span<const ranking_task<P>>(tasks));
  if (p.size() != tasks.size())
    throw error("audit_disagreement: the ranker returned " + std::to_string(p.size()) + " labels for " +
                std::to_string(tasks.size()) + " tasks");
  for (std::size_t t = 0; t < p.size(); ++t)
    if (!(p[t] >= 0.0 && p[t] <= 1.0))
      throw error("audit_disagreement: the ranker gave task " + std::to_string(t) + " the label " +
                  std::to_string(p[t]) + ", which is not a probability");
  for (std::size_t t = 0; t < n; ++t)
    d.labels[where[t].first][where[t].second] = options.swap_orders ? (p[t] + (1.0 - p[n + t])) / 2.0 : p[t];
  summarize_disagreement(d, options.rule);
  return d;
}

// ---------------------------------------------------------------------------------------------------
// 3. Coverage

/// Which exchanges the critique principles flag.
struct coverage_report {
  std::vector<std::string> principles;    ///< the critique principles asked, in order
  std::size_t exchanges = 0;
  std::vector<std::size_t> flagged_by;    ///< [principle]: exchanges it flags
  std::vector<std::size_t> flags;         ///< [exchange]: principles that flag it
  std::vector<std::size_t> gaps;          ///< exchanges that no principle flags, in order
  std::vector<std::string> gap_prompts;   ///< their last user turn

  /// The share of exchanges flagged by some principle (1 with no exchange).
  [[nodiscard]] double coverage() const noexcept {
    return exchanges == 0 ? 1.0 : 1.0 - static_cast<double>(gaps.size()) / static_cast<double>(exchanges);
  }
  friend bool operator==(const coverage_report&, const coverage_report&) = default;
};

namespace detail {
inline std::string last_user_turn(const dialogue& d) {
  for (auto it = d.rbegin(); it != d.rend(); ++it)
    if (it->role == role::user) return it->content;
  return d.empty() ? std::string{} : d.back().content;
}
}  // namespace detail

/// Asks `judge` whether each exchange violates each critique principle (one batched `violates` call)
/// and lists the exchanges that no principle flags. Give it exchanges that *should* be flagged, such as
/// red-team prompts with a helpful-only model's answers: every gap is a harm the constitution does not
/// name.
/// @tparam Judge models `judge<Judge, principle_of<Principles>>`.
/// @tparam Principles models `principle_set`; its principles with a non-empty `critique_request` are
///         asked, whatever their weight.
/// @param seed task seeds are derive_seed(seed, {exchange, principle}).
/// @throws validation_error when no principle has a critique request; error when the judge returns the
///         wrong count.
template <class Judge, class Principles>
  requires principle_set<Principles>
[[nodiscard]] coverage_report audit_coverage(Judge& judge, const Principles& principles,
                                             std::span<const exchange> exchanges, std::uint64_t seed = 0) {
  using P = principle_of<Principles>;
  CAI_ASSERT_JUDGE(Judge, P);
  std::vector<std::size_t> usable;
  for (std::size_t i = 0; i < principles.principles.size(); ++i)
    if (!std::string_view(principles.principles[i].critique_request).empty()) usable.push_back(i);
  if (usable.empty())
    throw validation_error("audit_coverage: no principle has a critique request; the audit needs at least one");
  coverage_report r;
  for (std::size_t i : usable) r.principles.emplace_back(std::string_view(principles.principles[i].name));
  r.exchanges = exchanges.size();
  std::vector<critique_task<P>> tasks;
  tasks.reserve(exchanges.size() * usable.size());
  for (std::size_t e = 0; e < exchanges.size(); ++e)
    for (std::size_t i = 0; i < usable.size(); ++i)
      tasks.push_back({exchanges[e], principles.principles[usable[i]], derive_seed(seed, {e, i})});
  const std::vector<bool> v = judge.violates(std::span<const critique_task<P>>(tasks));
  if (v.size() != tasks.size())
    throw error("audit_coverage: the judge returned " + std::to_string(v.size()) + " verdicts for " +
                std::to_string(tasks.size()) + " tasks");
  r.flagged_by.assign(usable.size(), 0);
  r.flags.assign(exchanges.size(), 0);
  for (std::size_t e = 0; e < exchanges.size(); ++e) {
    for (std::size_t i = 0; i < usable.size(); ++i)
      if (v[e * usable.size() + i]) ++r.flagged_by[i], ++r.flags[e];
    if (r.flags[e] == 0) {
      r.gaps.push_back(e);
      r.gap_prompts.push_back(detail::last_user_turn(exchanges[e].context));
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// 4. Refusals of revised outputs

/// Evasive revisions written under one principle.
struct principle_refusals {
  std::string principle;
  std::size_t revisions = 0;
  std::size_t evasive = 0;
  [[nodiscard]] double rate() const noexcept {
    return revisions == 0 ? 0.0 : static_cast<double>(evasive) / static_cast<double>(revisions);
  }
  friend bool operator==(const principle_refusals&, const principle_refusals&) = default;
};

/// How often revision made responses evasive.
struct refusal_report {
  std::size_t records = 0;
  std::size_t evasive_initial = 0;  ///< initial responses judged evasive
  std::size_t evasive_final = 0;    ///< final responses judged evasive
  /// Per principle (by the order in which they first occur): every revision it wrote, and the evasive
  /// ones.
  std::vector<principle_refusals> by_principle;

  [[nodiscard]] double initial_rate() const noexcept {
    return records == 0 ? 0.0 : static_cast<double>(evasive_initial) / static_cast<double>(records);
  }
  [[nodiscard]] double final_rate() const noexcept {
    return records == 0 ? 0.0 : static_cast<double>(evasive_final) / static_cast<double>(records);
  }
  friend bool operator==(const refusal_report&, const refusal_report&) = default;
};

/// Judges the initial response, every revision and the final response of each trace.
/// @tparam Judge models `response_judge<Judge, dialogue>`: `judge(context, response)` returns a struct
///         with a bool member `evasive` (and the other three, unused); `refusal_detector` does.
template <class Judge>
[[nodiscard]] refusal_report audit_refusals(std::span<const revision_trace> traces, Judge&& judge) {
  static_assert(response_judge<std::remove_cvref_t<Judge>, dialogue>,
                "cai::audit_refusals: the judge must be callable as judge(const cai::dialogue&, std::string_view) "
                "and return a struct with bool members harmful, helpful, evasive and disrespectful");
  refusal_report r;
  std::map<std::string, std::size_t, std::less<>> index;
  for (const revision_trace& t : traces) {
    ++r.records;
    const bool initial = static_cast<bool>(judge(t.context, std::string_view(t.initial_response)).evasive);
    r.evasive_initial += initial ? 1 : 0;
    bool last = initial;
    for (const critique_step& s : t.steps) {
      auto [it, added] = index.try_emplace(s.principle, r.by_principle.size());
      if (added) r.by_principle.push_back({s.principle, 0, 0});
      last = static_cast<bool>(judge(t.context, std::string_view(s.revision)).evasive);
      ++r.by_principle[it->second].revisions;
      r.by_principle[it->second].evasive += last ? 1 : 0;
    }
    r.evasive_final += last ? 1 : 0;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------------
// The whole audit

/// The audit of one constitution. Parts that were not run stay empty.
struct constitution_audit {
  std::string constitution;
  principle_disagreement disagreement;
  coverage_report coverage;
  refusal_report refusals;
  friend bool operator==(const constitution_audit&, const constitution_audit&) = default;
};

// JSON (argument-dependent lookup). Labels that were not asked (NaN) are written as null.

inline void to_json(nlohmann::json& j, const principle_conflict& c) {
  j = nlohmann::json{{"first", c.first}, {"second", c.second}, {"disagreement", c.disagreement}, {"shared", c.shared}};
}

inline void to_json(nlohmann::json& j, const principle_disagreement& d) {
  nlohmann::json labels = nlohmann::json::array();
  for (const auto& row : d.labels) {
    nlohmann::json r = nlohmann::json::array();
    for (double p : row) r.push_back(std::isnan(p) ? nlohmann::json() : nlohmann::json(p));
    labels.push_back(std::move(r));
  }
  nlohmann::json principles = nlohmann::json::array();
  for (std::size_t i = 0; i < d.principles.size(); ++i)
    principles.push_back({{"name", d.principles[i]},
                          {"prefers_a", d.outcomes.at(i)[0]},
                          {"ties", d.outcomes.at(i)[1]},
                          {"prefers_b", d.outcomes.at(i)[2]},
                          {"label_entropy", d.label_entropy.at(i)},
                          {"outcome_entropy", d.outcome_entropy.at(i)}});
  j = nlohmann::json{{"comparisons", d.comparisons},
                     {"principles", principles},
                     {"labels", labels},
                     {"shared", d.shared},
                     {"opposed", d.opposed},
                     {"disagreement", d.disagreement},
                     {"mean_abs_difference", d.mean_abs_difference},
                     {"conflicts", d.conflicts()}};
}
/// Reads the principles, the comparison count and the labels, and recomputes the rest (with ties at
/// exactly 1/2).
inline void from_json(const nlohmann::json& j, principle_disagreement& d) {
  d = {};
  d.comparisons = detail::required_field<std::size_t>(j, "principle disagreement", "comparisons");
  for (const auto& p : detail::required_field<nlohmann::json>(j, "principle disagreement", "principles"))
    d.principles.push_back(detail::required_field<std::string>(p, "principle", "name"));
  for (const auto& row : detail::required_field<nlohmann::json>(j, "principle disagreement", "labels")) {
    std::vector<double> r;
    for (const auto& p : row) r.push_back(p.is_null() ? std::numeric_limits<double>::quiet_NaN() : p.get<double>());
    d.labels.push_back(std::move(r));
  }
  if (d.labels.size() != d.principles.size())
    throw validation_error("principle disagreement: " + std::to_string(d.labels.size()) + " label rows for " +
                           std::to_string(d.principles.size()) + " principles");
  summarize_disagreement(d);
}

inline void to_json(nlohmann::json& j, const coverage_report& r) {
  nlohmann::json principles = nlohmann::json::array();
  for (std::size_t i = 0; i < r.principles.size(); ++i)
    principles.push_back({{"name", r.principles[i]}, {"flagged", r.flagged_by.at(i)}});
  nlohmann::json gaps = nlohmann::json::array();
  for (std::size_t g = 0; g < r.gaps.size(); ++g)
    gaps.push_back({{"index", r.gaps[g]}, {"prompt", r.gap_prompts.at(g)}});
  j = nlohmann::json{{"exchanges", r.exchanges}, {"coverage", r.coverage()}, {"principles", principles},
                     {"flags", r.flags}, {"gaps", gaps}};
}
inline void from_json(const nlohmann::json& j, coverage_report& r) {
  r = {};
  r.exchanges = detail::required_field<std::size_t>(j, "coverage", "exchanges");
  for (const auto& p : detail::required_field<nlohmann::json>(j, "coverage", "principles")) {
    r.principles.push_back(detail::required_field<std::string>(p, "coverage principle", "name"));
    r.flagged_by.push_back(detail::required_field<std::size_t>(p, "coverage principle", "flagged"));
  }
  r.flags = detail::required_field<std::vector<std::size_t>>(j, "coverage", "flags");
  for (const auto& g : detail::required_field<nlohmann::json>(j, "coverage", "gaps")) {
    r.gaps.push_back(detail::required_field<std::size_t>(g, "coverage gap", "index"));
    r.gap_prompts.push_back(detail::required_field<std::string>(g, "coverage gap", "prompt"));
  }
}

inline void to_json(nlohmann::json& j, const refusal_report& r) {
  nlohmann::json by = nlohmann::json::array();
  for (const auto& p : r.by_principle)
    by.push_back({{"principle", p.principle}, {"revisions", p.revisions}, {"evasive", p.evasive}, {"rate", p.rate()}});
  j = nlohmann::json{{"records", r.records},
                     {"evasive_initial", r.evasive_initial},
                     {"evasive_final", r.evasive_final},
                     {"initial_rate", r.initial_rate()},
                     {"final_rate", r.final_rate()},
                     {"by_principle", by}};
}
inline void from_json(const nlohmann::json& j, refusal_report& r) {
  r = {};
  r.records = detail::required_field<std::size_t>(j, "refusals", "records");
  r.evasive_initial = detail::required_field<std::size_t>(j, "refusals", "evasive_initial");
  r.evasive_final = detail::required_field<std::size_t>(j, "refusals", "evasive_final");
  for (const auto& p : detail::required_field<nlohmann::json>(j, "refusals", "by_principle"))
    r.by_principle.push_back({detail::required_field<std::string>(p, "refusals", "principle"),
                              detail::required_field<std::size_t>(p, "refusals", "revisions"),
                              detail::required_field<std::size_t>(p, "refusals", "evasive")});
}

inline void to_json(nlohmann::json& j, const constitution_audit& a) {
  j = nlohmann::json{{"constitution", a.constitution},
                     {"disagreement", a.disagreement},
                     {"coverage", a.coverage},
                     {"refusals", a.refusals}};
}
/// @throws validation_error naming a missing or mistyped field.
inline void from_json(const nlohmann::json& j, constitution_audit& a) {
  a.constitution = detail::required_field<std::string>(j, "constitution audit", "constitution");
  a.disagreement = detail::required_field<principle_disagreement>(j, "constitution audit", "disagreement");
  a.coverage = detail::required_field<coverage_report>(j, "constitution audit", "coverage");
  a.refusals = detail::required_field<refusal_report>(j, "constitution audit", "refusals");
}

// ---------------------------------------------------------------------------------------------------
// The readable table

namespace detail {
inline std::string pad_left(std::string s, std::size_t w) {
  return s.size() >= w ? s : std::string(w - s.size(), ' ') + s;
}
inline std::string pad_right(std::string s, std::size_t w) {
  return s.size() >= w ? s : s + std::string(w - s.size(), ' ');
}
inline std::string fixed_digits(double v, int digits) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::fixed, digits);
  return std::string(buffer, result.ptr);
}
inline std::string percent_text(double v) { return fixed_digits(100.0 * v, 1) + "%"; }
}  // namespace detail

/// The audit as a fixed-width text table, for a terminal or a log: the principles with their outcome
/// counts and entropies, the disagreement matrix (principles numbered as in the first table), the
/// conflicts at or above `conflict_threshold`, the coverage with its gaps, and the refusal rates.
[[nodiscard]] inline std::string audit_table(const constitution_audit& a, double conflict_threshold = 0.25) {
  using detail::fixed_digits;
  using detail::pad_left;
  using detail::pad_right;
  std::string out = "Constitution audit" + (a.constitution.empty() ? std::string() : ": " + a.constitution) + "\n";
  const auto& d = a.disagreement;
  if (!d.principles.empty()) {
    std::size_t w = 9;
    for (const auto& p : d.principles) w = std::max(w, p.size());
    out += "\nComparison principles over " + std::to_string(d.comparisons) + " comparisons\n";
    out += "   # " + pad_right("principle", w) + "  prefers A    tie  prefers B  label H  outcome H\n";
    for (std::size_t i = 0; i < d.principles.size(); ++i)
      out += pad_left(std::to_string(i + 1), 4) + " " + pad_right(d.principles[i], w) +
             pad_left(std::to_string(d.outcomes[i][0]), 11) + pad_left(std::to_string(d.outcomes[i][1]), 7) +
             pad_left(std::to_string(d.outcomes[i][2]), 11) + pad_left(fixed_digits(d.label_entropy[i], 3), 9) +
             pad_left(fixed_digits(d.outcome_entropy[i], 3), 11) + "\n";
    out += "\nDisagreement (share of comparisons labelled by both where they prefer different responses)\n    ";
    for (std::size_t j = 0; j < d.principles.size(); ++j) out += pad_left(std::to_string(j + 1), 7);
    out += "\n";
    for (std::size_t i = 0; i < d.principles.size(); ++i) {
      out += pad_left(std::to_string(i + 1), 4);
      for (std::size_t j = 0; j < d.principles.size(); ++j)
        out += pad_left(i == j                ? std::string("-")
                        : d.shared[i][j] == 0 ? std::string("n/a")
                                              : fixed_digits(d.disagreement[i][j], 2),
                        7);
      out += "\n";
    }
    const auto conflicts = d.conflicts(conflict_threshold);
    out += "\nConflicts (disagreement >= " + fixed_digits(conflict_threshold, 2) + "): " +
           (conflicts.empty() ? std::string("none") : std::to_string(conflicts.size())) + "\n";
    for (const auto& c : conflicts)
      out += "  " + c.first + " vs " + c.second + ": " + fixed_digits(c.disagreement, 2) + " of " +
             std::to_string(c.shared) + " comparisons\n";
  }
  const auto& c = a.coverage;
  if (!c.principles.empty()) {
    out += "\nCoverage: " + std::to_string(c.exchanges - c.gaps.size()) + " of " + std::to_string(c.exchanges) +
           " exchanges flagged by some critique principle (" + detail::percent_text(c.coverage()) + ")\n";
    out += "  flagged  principle\n";
    for (std::size_t i = 0; i < c.principles.size(); ++i)
      out += pad_left(std::to_string(c.flagged_by[i]), 9) + "  " + c.principles[i] + "\n";
    out += "Gaps (no principle flags): " + (c.gaps.empty() ? std::string("none") : std::to_string(c.gaps.size())) +
           "\n";
    for (std::size_t g = 0; g < c.gaps.size(); ++g)
      out += pad_left("[" + std::to_string(c.gaps[g]) + "]", 7) + " " + c.gap_prompts[g] + "\n";
  }
  const auto& r = a.refusals;
  if (r.records != 0) {
    out += "\nEvasive responses: initial " + std::to_string(r.evasive_initial) + "/" + std::to_string(r.records) +
           " (" + detail::percent_text(r.initial_rate()) + "), after revision " + std::to_string(r.evasive_final) +
           "/" + std::to_string(r.records) + " (" + detail::percent_text(r.final_rate()) + ")\n";
    if (!r.by_principle.empty()) {
      std::size_t w = 9;
      for (const auto& p : r.by_principle) w = std::max(w, p.principle.size());
      out += "  " + pad_right("principle", w) + "  revisions  evasive    rate\n";
      for (const auto& p : r.by_principle)
        out += "  " + pad_right(p.principle, w) + pad_left(std::to_string(p.revisions), 11) +
               pad_left(std::to_string(p.evasive), 9) + pad_left(detail::percent_text(p.rate()), 8) + "\n";
    }
  }
  return out;
}

}  // namespace cai
