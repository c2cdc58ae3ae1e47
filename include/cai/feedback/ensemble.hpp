/// @file feedback/ensemble.hpp
/// Ensembles of feedback models that vote (Bai et al. 2022, arXiv:2212.08073, section 4.1, which
/// ensembles over 16 principles and notes that this makes labels more robust):
///
/// - vote policies: `mean_vote` (mean probability), `majority_vote` (the side most members prefer),
///   `weighted_vote` (a weighted mean);
/// - `voting_ensemble<Vote, Rankers...>`: a compile-time list of rankers, possibly of different types
///   and over different models; `ensemble<Rankers...>` is the mean vote;
/// - `dynamic_ensemble<Ranker, Vote>`: a run-time list of rankers of one type (one per model, for
///   instance);
/// - `principle_ensemble<Ranker, Principles, Vote>`: one ranker, k comparison principles per label,
///   combined by the vote (the paper's ensembling over principles).
///
/// All model `ranker`. Each member ranks the whole batch in one call.
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

// ---------------------------------------------------------------------------------------------------
// Vote policies. A vote policy is called with the labels that the members gave one task, in member
// order, and returns the ensemble's label: `double operator()(std::span<const double> labels) const`.

/// The mean probability.
struct mean_vote {
  [[nodiscard]] double operator()(std::span<const double> labels) const noexcept {
    double sum = 0.0;
    for (double p : labels) sum += p;
    return labels.empty() ? 0.5 : sum / static_cast<double>(labels.size());
  }
};

/// The majority: each member votes for A when its label is above 0.5 and for B when below (a label of
/// exactly 0.5 abstains); the result is 1 when A has more votes, 0 when B has, 0.5 on a tie.
struct majority_vote {
  [[nodiscard]] double operator()(std::span<const double> labels) const noexcept {
    std::ptrdiff_t margin = 0;
    for (double p : labels) margin += p > 0.5 ? 1 : (p < 0.5 ? -1 : 0);
    return margin > 0 ? 1.0 : (margin < 0 ? 0.0 : 0.5);
  }
};

/// The weighted mean: sum(w_i p_i) / sum(w_i), one weight per member, in member order.
struct weighted_vote {
  std::vector<double> weights;

  /// @throws config_error when the number of labels differs from the number of weights, or a weight is
  ///         negative, or the weights sum to zero.
  [[nodiscard]] double operator()(std::span<const double> labels) const {
    if (labels.size() != weights.size())
      throw config_error("weighted_vote: " + std::to_string(weights.size()) + " weights for " +
                         std::to_string(labels.size()) + " ensemble members; give one weight per member");
    double num = 0.0, den = 0.0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (!(weights[i] >= 0.0)) throw config_error("weighted_vote: weight " + std::to_string(i) + " is negative");
      num += weights[i] * labels[i];
      den += weights[i];
    }
    if (!(den > 0.0)) throw config_error("weighted_vote: the weights sum to zero");
    return num / den;
  }
};

namespace detail {
/// Combines a (member, task) table of labels into one label per task.
template <class Vote>
std::vector<double> combine_votes(const Vote& vote, const std::vector<std::vector<double>>& by_task) {
  std::vector<double> out;
  out.reserve(by_task.size());
  for (const auto& labels : by_task) out.push_back(vote(std::span<const double>(labels)));
  return out;
}

/// The tasks that member `m` ranks: the same comparisons, with seeds derived from (seed, m).
template <class P>
std::vector<ranking_task<P>> member_tasks(std::span<const ranking_task<P>> tasks, std::uint64_t m) {
  std::vector<ranking_task<P>> out(tasks.begin(), tasks.end());
  for (auto& t : out) t.seed = derive_seed(t.seed, {m});
  return out;
}

inline void check_label_count(const char* who, std::size_t member, std::size_t got, std::size_t want) {
  if (got != want)
    throw error(std::string(who) + ": member " + std::to_string(member) + " returned " + std::to_string(got) +
                " labels for " + std::to_string(want) + " tasks");
}
}  // namespace detail

// ---------------------------------------------------------------------------------------------------

/// A compile-time list of rankers that vote.
///
/// Member m ranks every task with the seed `derive_seed(task.seed, {m})` (so that members that sample
/// draw independently); the vote combines the members' labels of each task.
/// @tparam Vote a vote policy (`mean_vote`, `majority_vote`, `weighted_vote`, or one of yours).
/// @tparam Rankers at least one; each models `ranker` for the principle type of the tasks ranked.
template <class Vote, class... Rankers>
class voting_ensemble {
  static_assert(sizeof...(Rankers) >= 1, "cai::voting_ensemble needs at least one ranker");

 public:
  static constexpr std::size_t size = sizeof...(Rankers);

  /// @param vote the vote policy; @param rankers already-built rankers, moved in.
  explicit voting_ensemble(Vote vote, Rankers... rankers) : vote_(std::move(vote)), members_(std::move(rankers)...) {}
  /// With a default-constructed vote (`mean_vote`, `majority_vote`).
  explicit voting_ensemble(Rankers... rankers)
    requires std::is_default_constructible_v<Vote>
      : members_(std::move(rankers)...) {}

  template <class P>
  std::vector<double> rank(std::span<const ranking_task<P>> tasks) {
    static_assert((ranks<Rankers, P> && ...),
                  "cai: every member of a voting_ensemble needs a member rank(std::span<const "
                  "cai::ranking_task<P>>) returning std::vector<double>");
    votes_.assign(tasks.size(), std::vector<double>(size));
    rank_members<P>(tasks, std::make_index_sequence<size>{});
    return detail::combine_votes(vote_, votes_);
  }

  /// The labels of the last `rank` call: per task, one per member in order.
  [[nodiscard]] const std::vector<std::vector<double>>& last_votes() const noexcept { return votes_; }
  /// Member `I`.
  template <std::size_t I>
  [[nodiscard]] auto& member() noexcept { return std::get<I>(members_); }
  [[nodiscard]] const Vote& vote() const noexcept { return vote_; }

 private:
  template <class P, std::size_t... I>
  void rank_members(std::span<const ranking_task<P>> tasks, std::index_sequence<I...>) {
    (rank_member<P, I>(tasks), ...);
  }
  template <class P, std::size_t I>
  void rank_member(std::span<const ranking_task<P>> tasks) {
    const std::vector<ranking_task<P>> mine = detail::member_tasks(tasks, I);
    const std::vector<double> p = std::get<I>(members_).rank(std::span<const ranking_task<P>>(mine));
    detail::check_label_count("voting_ensemble", I, p.size(), tasks.size());
    for (std::size_t t = 0; t < tasks.size(); ++t) votes_[t][I] = p[t];
  }

  Vote vote_{};
  std::tuple<Rankers...> members_;
  std::vector<std::vector<double>> votes_;
};

/// The mean-probability ensemble of a compile-time list of rankers: `ensemble<R1, R2>(r1, r2)`.
template <class... Rankers>
using ensemble = voting_ensemble<mean_vote, Rankers...>;

/// A run-time list of rankers of one type that vote: one ranker per model of a fleet, for instance.
/// Member m ranks with the seed `derive_seed(task.seed, {m})`, as in `voting_ensemble`.
/// @tparam Ranker models `ranker` for the principle type of the tasks ranked.
/// @tparam Vote a vote policy.
template <class Ranker, class Vote = mean_vote>
class dynamic_ensemble {
 public:
  /// @throws config_error when `members` is empty.
  explicit dynamic_ensemble(std::vector<Ranker> members, Vote vote = {})
      : members_(std::move(members)), vote_(std::move(vote)) {
    if (members_.empty()) throw config_error("dynamic_ensemble: the list of rankers is empty");
  }

  template <class P>
  std::vector<double> rank(std::span<const ranking_task<P>> tasks) {
    CAI_ASSERT_RANKER(Ranker, P);
    votes_.assign(tasks.size(), std::vector<double>(members_.size()));
    for (std::size_t m = 0; m < members_.size(); ++m) {
      const std::vector<ranking_task<P>> mine = detail::member_tasks(tasks, m);
      const std::vector<double> p = members_[m].rank(std::span<const ranking_task<P>>(mine));
      detail::check_label_count("dynamic_ensemble", m, p.size(), tasks.size());
      for (std::size_t t = 0; t < tasks.size(); ++t) votes_[t][m] = p[t];
    }
    return detail::combine_votes(vote_, votes_);
  }

  [[nodiscard]] const std::vector<std::vector<double>>& last_votes() const noexcept { return votes_; }
  [[nodiscard]] std::vector<Ranker>& members() noexcept { return members_; }
  [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }

 private:
  std::vector<Ranker> members_;
  Vote vote_;
  std::vector<std::vector<double>> votes_;
};

/// One ranker asked about k comparison principles per label, the answers combined by a vote.
///
/// For each task, the first principle is the task's own (with the task's seed, so that k = 1 is the
/// inner ranker itself); k - 1 more are drawn without replacement, by weight when the principle type
/// has a `weight` member, among the principles of `principles.principles` that have a comparison
/// question and another name, from `rng(derive_seed(task.seed, {k_draw_key}))`; label j is ranked with
/// seed `derive_seed(task.seed, {j})`. When fewer principles are available, all of them are used. All
/// k x n tasks go to the inner ranker in one call.
/// @tparam Ranker models `ranker` for `principle_of<Principles>`.
/// @tparam Principles a `principle_set` such as `constitution` (copied in).
/// @tparam Vote a vote policy.
template <class Ranker, class Principles, class Vote = mean_vote>
class principle_ensemble {
 public:
  using principle_type = principle_of<Principles>;
  /// The key under which the extra principles of a task are drawn.
  static constexpr std::uint64_t k_draw_key = 0x5052494E43ULL;  // "PRINC"

  /// @param inner the ranker asked; @param principles where the extra principles come from;
  /// @param k principles per label (the paper: up to 16); @param vote the vote policy.
  /// @throws config_error when k is 0.
  principle_ensemble(Ranker inner, Principles principles, std::size_t k, Vote vote = {})
      : inner_(std::move(inner)), principles_(std::move(principles)), k_(k), vote_(std::move(vote)) {
    if (k_ == 0) throw config_error("principle_ensemble: k must be at least 1");
  }

  std::vector<double> rank(std::span<const ranking_task<principle_type>> tasks) {
    using P = principle_type;
    CAI_ASSERT_RANKER(Ranker, P);
    std::vector<ranking_task<P>> all;
    std::vector<std::size_t> owner;
    used_.assign(tasks.size(), {});
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const auto& t = tasks[i];
      all.push_back(t);
      owner.push_back(i);
      used_[i].emplace_back(std::string_view(t.principle.name));
      for (std::size_t idx : draw_extra(t)) {
        ranking_task<P> extra = t;
        extra.principle = principles_.principles[idx];
        extra.seed = derive_seed(t.seed, {used_[i].size()});
        used_[i].emplace_back(std::string_view(extra.principle.name));
        all.push_back(std::move(extra));
        owner.push_back(i);
      }
    }
    const std::vector<double> p = inner_.rank(std::span<const ranking_task<P>>(all));
    detail::check_label_count("principle_ensemble", 0, p.size(), all.size());
    votes_.assign(tasks.size(), {});
    for (std::size_t j = 0; j < all.size(); ++j) votes_[owner[j]].push_back(p[j]);
    return detail::combine_votes(vote_, votes_);
  }

  /// The principles' names used for each task of the last call, the task's own first.
  [[nodiscard]] const std::vector<std::vector<std::string>>& last_principles() const noexcept { return used_; }
  /// The labels of the last call: per task, one per principle, in the order of `last_principles()`.
  [[nodiscard]] const std::vector<std::vector<double>>& last_votes() const noexcept { return votes_; }
  [[nodiscard]] std::size_t k() const noexcept { return k_; }
  [[nodiscard]] Ranker& inner() noexcept { return inner_; }

 private:
  template <class P>
  static double weight_of(const P& p) {
    if constexpr (requires { p.weight; }) return static_cast<double>(p.weight);
    else return 1.0;
  }

  std::vector<std::size_t> draw_extra(const ranking_task<principle_type>& t) const {
    const std::string_view own = t.principle.name;
    const std::size_t n = principles_.principles.size();
    std::vector<double> w(n, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      const auto& p = principles_.principles[j];
      if (!std::string_view(p.comparison_question).empty() && std::string_view(p.name) != own) w[j] = weight_of(p);
    }
    std::vector<std::size_t> out;
    rng g(derive_seed(t.seed, {k_draw_key}));
    while (out.size() + 1 < k_) {
      double total = 0.0;
      for (double x : w) total += x > 0.0 ? x : 0.0;
      if (!(total > 0.0)) break;
      const std::size_t j = g.weighted_index(w);
      out.push_back(j);
      w[j] = 0.0;
    }
    return out;
  }

  Ranker inner_;
  Principles principles_;
  std::size_t k_;
  Vote vote_;
  std::vector<std::vector<std::string>> used_;
  std::vector<std::vector<double>> votes_;
};

}  // namespace cai
