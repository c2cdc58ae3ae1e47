/// @file feedback/cot_ranker.hpp
/// Chain-of-thought AI feedback (Bai et al. 2022, arXiv:2212.08073, section 4.1): the feedback model
/// first writes its reasoning after "Let's think step-by-step:", then the options " (A)" and " (B)" are
/// scored after "The answer is:". The paper clamps these labels to 40-60%, since chain-of-thought makes
/// them nearly 0 or 1: compose `clamped<cot_ranker<Model>>` (feedback/clamped.hpp). `cot_ranker` can
/// also average the label over several reasoning samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/feedback/choice_ranker.hpp"
#include "cai/prompts/feedback.hpp"
#include "cai/prompts/parse.hpp"
#include "cai/random.hpp"
#include "cai/text/generation.hpp"

namespace cai {

/// How a `cot_ranker` samples its reasoning.
struct cot_options {
  /// Sampling of the reasoning; `stop` defaults to `prompts::cot_stop_sequences()`. The seed is set per
  /// task and sample.
  generation_options reasoning{.max_new_tokens = 128, .temperature = 0.0, .stop = prompts::cot_stop_sequences()};
  /// Number of reasoning samples per task; the label is the mean of their soft labels (1: the paper).
  /// More than one only makes sense with a temperature above 0.
  std::size_t samples = 1;
};

/// A chain-of-thought feedback model as a `ranker`.
///
/// Per task and sample s (0 <= s < `samples`): the prompt `prompts::cot_feedback_prompt(pair, question)`
/// is continued with seed `derive_seed(task.seed, {s})`; the continuation, cleaned with
/// `clean_generation(text, reasoning.stop)`, is the reasoning; then `" (A)"` and `" (B)"` are scored
/// after `prompts::cot_answer_prompt(prompt, reasoning)` and normalised. All generations of a call are
/// one batched `generate`, all scorings one batched `score`. The label is the mean over samples.
/// @tparam Model models `scoring_model` (it writes the reasoning and scores the options).
template <class Model>
class cot_ranker {
  CAI_ASSERT_SCORING_MODEL(Model);

 public:
  /// @param model held by reference: it must outlive the ranker.
  /// @throws config_error when `options.samples` is 0.
  explicit cot_ranker(Model& model, cot_options options = {}) : model_(&model), options_(std::move(options)) {
    if (options_.samples == 0) throw config_error("cot_ranker: cot_options::samples must be at least 1");
  }

  /// P(A is better) per task: the mean soft label over the reasoning samples.
  template <class P>
  std::vector<double> rank(std::span<const ranking_task<P>> tasks) {
    CAI_ASSERT_PRINCIPLE(P);
    const std::size_t k = options_.samples;
    std::vector<std::string> prompts_text;
    std::vector<generation_request> requests;
    prompts_text.reserve(tasks.size());
    requests.reserve(tasks.size() * k);
    for (const auto& t : tasks) {
      prompts_text.push_back(
          prompts::cot_feedback_prompt(t.pair, detail::comparison_question_of(t.principle, "cot_ranker")));
      for (std::size_t s = 0; s < k; ++s) {
        generation_request r{prompts_text.back(), options_.reasoning, {}};
        r.options.seed = derive_seed(t.seed, {s});
        requests.push_back(std::move(r));
      }
    }
    std::vector<std::string> generated = model_->generate(std::span<const generation_request>(requests));
    if (generated.size() != requests.size())
      throw error("cot_ranker: the model returned " + std::to_string(generated.size()) + " texts for " +
                  std::to_string(requests.size()) + " requests (a language_model returns one per request)");
    reasoning_.assign(tasks.size(), {});
    std::vector<std::string> answer_prompts;
    answer_prompts.reserve(requests.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
      for (std::size_t s = 0; s < k; ++s) {
        std::string reasoning = prompts::clean_generation(generated[i * k + s], options_.reasoning.stop);
        answer_prompts.push_back(prompts::cot_answer_prompt(prompts_text[i], reasoning));
        reasoning_[i].push_back(std::move(reasoning));
      }
    const std::vector<double> p = detail::score_options(*model_, std::move(answer_prompts), "cot_ranker");
    std::vector<double> out(tasks.size(), 0.0);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      for (std::size_t s = 0; s < k; ++s) out[i] += p[i * k + s];
      out[i] /= static_cast<double>(k);
    }
    return out;
  }

  /// The cleaned reasoning of the last `rank` call: per task, one text per sample.
  [[nodiscard]] const std::vector<std::vector<std::string>>& last_reasoning() const noexcept { return reasoning_; }
  [[nodiscard]] const cot_options& options() const noexcept { return options_; }

 private:
  Model* model_;
  cot_options options_;
  std::vector<std::vector<std::string>> reasoning_;
};

}  // namespace cai
