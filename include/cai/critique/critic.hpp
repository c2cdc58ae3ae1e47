/// @file critique/critic.hpp
/// The critics of SL-CAI (Bai et al. 2022, arXiv:2212.08073, section 3): a model reads an exchange, is
/// asked a principle's critique request, writes a critique, is asked the revision request, and writes a
/// revision. `self_critic<Model>` lets the policy critique and revise itself, few-shot prompted in the
/// paper's transcript format; `separate_critic<PolicyModel, CritiqueModel>` has a separate critique model
/// write the critique, and the policy write the revision that follows it. Both model `critic`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/prompts/chat.hpp"
#include "cai/prompts/parse.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/random.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// How a critic prompts its models.
struct critic_options {
  /// Sampling of critiques; `stop` defaults to the transcript's turn markers.
  generation_options critique_generation{.max_new_tokens = 192, .temperature = 0.0, .stop = prompts::stop_sequences()};
  /// Sampling of revisions; `stop` defaults to the transcript's turn markers.
  generation_options revision_generation{.max_new_tokens = 256, .temperature = 0.0, .stop = prompts::stop_sequences()};
  /// Worked critique-revision rounds shown before each task (usually the constitution's `few_shot`).
  std::vector<critique_example> few_shot;
  /// Also fill `generation_request::messages` with the role-tagged form, for chat models.
  bool chat_messages = false;
};

/// A critic whose critiques come from `CritiqueModel` and whose revisions come from `PolicyModel`.
///
/// Round for one task: the critique prompt (few-shot block, the exchange, "CritiqueRequest: ...",
/// "Critique:") goes to the critique model; its output, cut at the first turn marker, is the critique;
/// the same transcript extended with the critique, "RevisionRequest: ..." and "Revision:" goes to the
/// policy model, whose cleaned output is the revision. Each task's seed fixes both generations.
///
/// @tparam PolicyModel models `language_model`; writes revisions.
/// @tparam CritiqueModel models `language_model`; writes critiques.
template <class PolicyModel, class CritiqueModel>
class separate_critic {
  CAI_ASSERT_LANGUAGE_MODEL(PolicyModel);
  CAI_ASSERT_LANGUAGE_MODEL(CritiqueModel);

 public:
  /// @param policy the model that revises (held by reference: it must outlive the critic).
  /// @param critique_model the model that critiques (held by reference).
  separate_critic(PolicyModel& policy, CritiqueModel& critique_model, critic_options options = {})
      : policy_(&policy), critique_model_(&critique_model), options_(std::move(options)) {}

  /// One batched critique-revision round.
  /// @tparam P models `principle`.
  /// @return one step per task, in order.
  template <class P>
  std::vector<critique_step> critique(std::span<const critique_task<P>> tasks) {
    CAI_ASSERT_PRINCIPLE(P);
    std::vector<generation_request> requests;
    requests.reserve(tasks.size());
    std::vector<std::string> critique_prompts;
    critique_prompts.reserve(tasks.size());
    for (const auto& task : tasks) {
      critique_prompts.push_back(
          prompts::critique_prompt(task.subject, task.principle.critique_request, options_.few_shot));
      generation_request r{critique_prompts.back(), options_.critique_generation, {}};
      r.options.seed = derive_seed(task.seed, {0});
      if (options_.chat_messages)
        r.messages = prompts::critique_messages(task.subject, task.principle.critique_request, options_.few_shot);
      requests.push_back(std::move(r));
    }
    std::vector<std::string> critiques = generate_checked(*critique_model_, requests);

    for (std::size_t i = 0; i < tasks.size(); ++i) {
      critiques[i] = prompts::clean_generation(critiques[i], options_.critique_generation.stop);
      const auto& task = tasks[i];
      auto& r = requests[i];
      r.prompt = prompts::revision_prompt(critique_prompts[i], critiques[i], task.principle.revision_request);
      r.options = options_.revision_generation;
      r.options.seed = derive_seed(task.seed, {1});
      if (options_.chat_messages)
        r.messages = prompts::revision_messages(std::move(r.messages), critiques[i], task.principle.revision_request);
    }
    std::vector<std::string> revisions = generate_checked(*policy_, requests);

    std::vector<critique_step> steps;
    steps.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
      steps.push_back({std::string(tasks[i].principle.name), std::move(critiques[i]),
                       prompts::clean_generation(revisions[i], options_.revision_generation.stop)});
    return steps;
  }

  [[nodiscard]] const critic_options& options() const noexcept { return options_; }
  [[nodiscard]] critic_options& options() noexcept { return options_; }

 private:
  template <class M>
  static std::vector<std::string> generate_checked(M& model, std::span<const generation_request> requests) {
    std::vector<std::string> out = model.generate(requests);
    if (out.size() != requests.size())
      throw error("critic: the model returned " + std::to_string(out.size()) + " texts for " +
                  std::to_string(requests.size()) + " requests (a language_model returns one per request)");
    return out;
  }

  PolicyModel* policy_;
  CritiqueModel* critique_model_;
  critic_options options_;
};

/// The paper's critic: the policy critiques and revises its own response, few-shot prompted.
/// @tparam Model models `language_model`.
template <class Model>
class self_critic : public separate_critic<Model, Model> {
 public:
  /// @param model the policy (held by reference: it must outlive the critic).
  explicit self_critic(Model& model, critic_options options = {})
      : separate_critic<Model, Model>(model, model, std::move(options)) {}
};

}  // namespace cai
