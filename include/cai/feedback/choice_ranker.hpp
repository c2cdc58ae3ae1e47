/// @file feedback/choice_ranker.hpp
/// Multiple-choice AI feedback (Bai et al. 2022, arXiv:2212.08073, section 4.1): a feedback model reads
/// the paper's question (a conversation, one comparison principle, options (A) and (B), "The answer
/// is:") and the normalised probabilities of " (A)" and " (B)" are the soft preference label. This
/// header holds `soft_label`, the exact arithmetic, and `choice_ranker<ScoringModel>`, which models
/// `ranker`. The principle of each label is the task's: draw one per label with `draw_ranking_tasks`
/// (feedback/labeling.hpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/prompts/feedback.hpp"
#include "cai/text/generation.hpp"

namespace cai {

/// P(A) from the log-probabilities of the two options: exp(lA) / (exp(lA) + exp(lB)), computed as
/// 1 / (1 + exp(lB - lA)) so that very negative log-probabilities do not underflow.
/// Two options of probability zero (both -inf) give 0.5; one of them alone gives 0 or 1.
/// @throws error when either log-probability is NaN or +inf (not a log-probability).
[[nodiscard]] inline double soft_label(double logp_a, double logp_b) {
  if (std::isnan(logp_a) || std::isnan(logp_b) || logp_a == std::numeric_limits<double>::infinity() ||
      logp_b == std::numeric_limits<double>::infinity())
    throw error("soft_label: the scores of the options are not log-probabilities (log P(A) = " +
                std::to_string(logp_a) + ", log P(B) = " + std::to_string(logp_b) +
                "); a scoring_model returns finite values <= 0, or -inf");
  const double inf = std::numeric_limits<double>::infinity();
  if (logp_a == -inf && logp_b == -inf) return 0.5;
  if (logp_a == -inf) return 0.0;
  if (logp_b == -inf) return 1.0;
  const double d = logp_b - logp_a;
  if (d > 0) {
    const double e = std::exp(-d);
    return e / (1.0 + e);
  }
  return 1.0 / (1.0 + std::exp(d));
}

/// A hard label from a soft one: 1 when P(A) > 0.5, 0 when P(A) < 0.5, 0.5 on an exact tie.
[[nodiscard]] constexpr double hard_label(double p_a) noexcept {
  return p_a > 0.5 ? 1.0 : (p_a < 0.5 ? 0.0 : 0.5);
}

namespace detail {

/// The comparison question of a task's principle, or a validation_error naming the principle.
template <class P>
std::string_view comparison_question_of(const P& p, const char* who) {
  const std::string_view q = p.comparison_question;
  if (q.empty())
    throw validation_error(std::string(who) + ": principle '" + std::string(std::string_view(p.name)) +
                           "' has no comparison question; draw feedback principles with "
                           "draw_ranking_tasks (or constitution::draw_comparison)");
  return q;
}

/// Scores the option pairs of `contexts` (two requests per context, sharing the context string so that a
/// scoring model that groups by context runs it once) and returns one soft label per context.
template <class ScoringModel>
std::vector<double> score_options(ScoringModel& model, std::vector<std::string> contexts, const char* who) {
  const auto [cont_a, cont_b] = prompts::option_continuations();
  std::vector<scoring_request> requests;
  requests.reserve(2 * contexts.size());
  for (std::string& c : contexts) {
    requests.push_back({c, cont_a});
    requests.push_back({std::move(c), cont_b});
  }
  const std::vector<double> lp = model.score(std::span<const scoring_request>(requests));
  if (lp.size() != requests.size())
    throw error(std::string(who) + ": the model returned " + std::to_string(lp.size()) + " scores for " +
                std::to_string(requests.size()) + " requests (a scoring_model returns one per request)");
  std::vector<double> out(contexts.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = soft_label(lp[2 * i], lp[2 * i + 1]);
  return out;
}

}  // namespace detail

/// How a `choice_ranker` asks its question.
struct choice_options {
  /// Labelled comparisons shown before each question (few-shot prompting); empty: zero-shot.
  std::vector<prompts::feedback_example> few_shot;
  /// Return 1 / 0 (0.5 on an exact tie) instead of the soft probability.
  bool hard_labels = false;
};

/// The paper's multiple-choice feedback model as a `ranker`.
///
/// For each task it builds `prompts::feedback_question(task.pair, task.principle.comparison_question,
/// few_shot)` and scores `" (A)"` and `" (B)"` after it, both in one batched `score` call; the two
/// requests of a task share their context string, so a model that groups requests by context (as
/// `native_model` does) computes the question once per comparison. The label is `soft_label(lA, lB)`,
/// or its `hard_label` when `choice_options::hard_labels` is set. Deterministic: the task seed is unused.
/// @tparam ScoringModel models `scoring_model`.
template <class ScoringModel>
class choice_ranker {
  CAI_ASSERT_SCORING_MODEL(ScoringModel);

 public:
  /// @param model held by reference: it must outlive the ranker.
  explicit choice_ranker(ScoringModel& model, choice_options options = {})
      : model_(&model), options_(std::move(options)) {}

  /// The question sent for one task (what the model reads before " (A)" / " (B)").
  /// @throws validation_error when the principle has no comparison question.
  template <class P>
  [[nodiscard]] std::string question(const ranking_task<P>& task) const {
    return prompts::feedback_question(task.pair, detail::comparison_question_of(task.principle, "choice_ranker"),
                                      options_.few_shot);
  }

  /// P(A is better) for each task, in order.
  /// @tparam P models `principle`.
  template <class P>
  std::vector<double> rank(std::span<const ranking_task<P>> tasks) {
    CAI_ASSERT_PRINCIPLE(P);
    std::vector<std::string> questions;
    questions.reserve(tasks.size());
    for (const auto& t : tasks) questions.push_back(question(t));
    std::vector<double> p = detail::score_options(*model_, std::move(questions), "choice_ranker");
    if (options_.hard_labels)
      for (double& x : p) x = hard_label(x);
    return p;
  }

  [[nodiscard]] const choice_options& options() const noexcept { return options_; }
  [[nodiscard]] choice_options& options() noexcept { return options_; }
  [[nodiscard]] ScoringModel& model() noexcept { return *model_; }

 private:
  ScoringModel* model_;
  choice_options options_;
};

}  // namespace cai
