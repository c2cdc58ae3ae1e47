/// @file constitution/principle.hpp
/// `constitutional_principle`: one principle of a constitution, as the library stores it. It carries a
/// critique/revision pair (for SL-CAI), a comparison question (for AI feedback), or both, with free-form
/// tags (harm area, deployment) and a sampling weight. Models the `principle` concept.
#pragma once

#include <string>
#include <vector>

namespace cai {

/// One principle of a constitution. The texts are bare requests, without transcript markers
/// ("CritiqueRequest:" etc.); the prompt builders in `prompts/` add those.
struct constitutional_principle {
  std::string name;                 ///< unique within a constitution
  std::string critique_request;     ///< asks the model to find what is wrong with a response
  std::string revision_request;     ///< asks the model to rewrite the response accordingly
  std::string comparison_question;  ///< multiple-choice question for AI feedback ("Which response ...?")
  std::vector<std::string> tags;    ///< e.g. "harm", "honesty", "medical", "deployment:legal"
  double weight = 1.0;              ///< relative probability of being drawn; 0 never draws it

  /// True when the principle can drive a critique-revision round.
  [[nodiscard]] bool has_critique() const noexcept {
    return !critique_request.empty() && !revision_request.empty();
  }
  /// True when the principle can drive an AI-feedback comparison.
  [[nodiscard]] bool has_comparison() const noexcept { return !comparison_question.empty(); }

  friend bool operator==(const constitutional_principle&, const constitutional_principle&) = default;
};

}  // namespace cai
