/// @file critique/judge.hpp
/// Judges decide whether a response violates a principle: what `until_satisfied` asks before each round
/// of multi-round revision ("revise until no principle is violated"). `critique_judge<ScoringModel>` asks
/// a model a yes/no question after the principle's critique request and compares log P(" Yes") with
/// log P(" No"); `keyword_judge` flags responses that contain listed phrases. Both model `judge`.
#pragma once

#include <algorithm>
#include <cctype>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/prompts/transcript.hpp"

namespace cai {

/// Asks a scoring model whether a response needs revising under a principle.
///
/// The prompt is the exchange in transcript form, the principle's critique request, and the question
/// "Does the response need to be revised to satisfy this request? Answer Yes or No."; the verdict is
/// "violates" when log P(" Yes") exceeds log P(" No") by more than `margin`.
/// @tparam ScoringModel models `scoring_model`.
template <class ScoringModel>
class critique_judge {
  CAI_ASSERT_SCORING_MODEL(ScoringModel);

 public:
  /// @param model held by reference: it must outlive the judge.
  /// @param margin log-odds in favour of "Yes" needed to call a violation (0: plain comparison).
  explicit critique_judge(ScoringModel& model, double margin = 0.0) : model_(&model), margin_(margin) {}

  /// The question asked for one task.
  template <class P>
  [[nodiscard]] static std::string question(const critique_task<P>& task) {
    return prompts::render_exchange(task.subject) + "\n\n" + std::string(prompts::critique_request_marker) +
           " " + std::string(task.principle.critique_request) +
           "\n\nDoes the response need to be revised to satisfy this request? Answer Yes or No.\n\nAnswer:";
  }

  template <class P>
  std::vector<bool> violates(std::span<const critique_task<P>> tasks) {
    CAI_ASSERT_PRINCIPLE(P);
    std::vector<scoring_request> requests;
    requests.reserve(2 * tasks.size());
    for (const auto& task : tasks) {
      std::string q = question(task);
      requests.push_back({q, " Yes"});
      requests.push_back({std::move(q), " No"});
    }
    const std::vector<double> lp = model_->score(requests);
    if (lp.size() != requests.size())
      throw error("critique_judge: the model returned " + std::to_string(lp.size()) + " scores for " +
                  std::to_string(requests.size()) + " requests");
    std::vector<bool> verdicts(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) verdicts[i] = lp[2 * i] - lp[2 * i + 1] > margin_;
    return verdicts;
  }

 private:
  ScoringModel* model_;
  double margin_;
};

/// Flags a response that contains any listed phrase (ASCII case-insensitive): phrases that apply to every
/// principle, and phrases that apply to one principle by name. A cheap, transparent judge for deployment
/// rules ("never mention a dosage") and for tests.
class keyword_judge {
 public:
  keyword_judge() = default;
  /// @param phrases flagged under every principle.
  explicit keyword_judge(std::vector<std::string> phrases) : global_(lowered(std::move(phrases))) {}

  /// Adds phrases flagged only under the principle called `principle_name`.
  keyword_judge& add(std::string principle_name, std::vector<std::string> phrases) {
    auto& list = per_principle_[std::move(principle_name)];
    for (auto& p : lowered(std::move(phrases))) list.push_back(std::move(p));
    return *this;
  }

  template <class P>
  std::vector<bool> violates(std::span<const critique_task<P>> tasks) const {
    CAI_ASSERT_PRINCIPLE(P);
    std::vector<bool> verdicts(tasks.size(), false);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const std::string text = lower(tasks[i].subject.response);
      verdicts[i] = contains_any(text, global_);
      if (!verdicts[i]) {
        auto it = per_principle_.find(std::string(std::string_view(tasks[i].principle.name)));
        if (it != per_principle_.end()) verdicts[i] = contains_any(text, it->second);
      }
    }
    return verdicts;
  }

 private:
  static std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  }
  static std::vector<std::string> lowered(std::vector<std::string> v) {
    for (auto& s : v) s = lower(s);
    v.erase(std::remove(v.begin(), v.end(), std::string{}), v.end());
    return v;
  }
  static bool contains_any(const std::string& text, const std::vector<std::string>& phrases) {
    return std::any_of(phrases.begin(), phrases.end(),
                       [&](const std::string& p) { return text.find(p) != std::string::npos; });
  }

  std::vector<std::string> global_;
  std::map<std::string, std::vector<std::string>, std::less<>> per_principle_;
};

}  // namespace cai
