/// @file world/skills.hpp
/// How far a model's critique-revisions and AI-feedback labels do what a world principle asks, by the
/// oracle (`world/oracle.hpp`): the measurement behind "the base model can read a principle" in the
/// assistant world. Evaluation only, like the oracle: no stage of the pipeline includes it.
///
/// `measure_skills` shows the model responses of drawn forms to the given requests (usually the
/// pipeline's, `split::pipeline`), a principle drawn from a world constitution for each; it revises
/// with `self_critic` (the pipeline's own critic) and labels pairs with `choice_ranker` (the pipeline's
/// own ranker). A revision agrees when `revision_agrees` holds; a label agrees when the option with
/// P > 1/2 is the one `expected_preference` names (pairs the principle cannot tell apart are not counted).
/// `label_flip_check` labels the same pairs under two principles that order them oppositely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/critique/critic.hpp"
#include "cai/feedback/choice_ranker.hpp"
#include "cai/world/corpus.hpp"
#include "cai/world/oracle.hpp"

namespace cai::world {

/// One measured revision or label, for reports.
struct skill_example {
  std::string principle;
  std::string request;
  std::string response;   ///< revision: the response revised; label: option A
  std::string critique;   ///< revision only
  std::string revision;   ///< revision: the revision; label: option B
  double p_a = 0.0;       ///< label only
  bool agrees = false;
};

/// Counts of agreeing revisions and labels.
struct skill_measure {
  std::size_t revisions = 0;
  std::size_t revisions_agreeing = 0;
  std::size_t labels = 0;  ///< pairs the principle orders
  std::size_t labels_agreeing = 0;
  std::vector<skill_example> examples;  ///< the first few of each

  [[nodiscard]] double revision_agreement() const noexcept {
    return revisions == 0 ? 0.0 : static_cast<double>(revisions_agreeing) / static_cast<double>(revisions);
  }
  [[nodiscard]] double label_agreement() const noexcept {
    return labels == 0 ? 0.0 : static_cast<double>(labels_agreeing) / static_cast<double>(labels);
  }
};

namespace detail {

/// Two responses to `r` of drawn forms that principle `s` orders (or the last pair drawn, unordered).
inline std::pair<std::string, std::string> ordered_pair(const assistant_world& w, const oracle& o, const request& r,
                                                        rng& g, const intents& s) {
  const corpus_options co;
  std::pair<std::string, std::string> out;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const response_form a = draw_form(w, r, g, co.comparison_styles);
    const response_form b = draw_form(w, r, g, co.comparison_styles);
    out = {w.render(r, a, g()), w.render(r, b, g())};
    if (out.first != out.second && expected_preference(o, r, out.first, out.second, s)) break;
  }
  return out;
}

}  // namespace detail

/// Measures revisions and labels against the principles of `c` on `requests`: `critique_model` writes the
/// critiques and `model` the revisions (`separate_critic`) and the labels.
/// @tparam Model models `scoring_model` (it revises, and scores the options).
/// @tparam CritiqueModel models `language_model`.
/// @param max_new_tokens the length of each critique and revision
/// @param examples how many examples of each kind to keep
template <class Model, class CritiqueModel>
[[nodiscard]] skill_measure measure_skills(Model& model, CritiqueModel& critique_model, const assistant_world& w,
                                           std::span<const request> requests, const world_constitution_spec& c,
                                           std::uint64_t seed, std::size_t max_new_tokens = 64, std::size_t examples = 3) {
  CAI_ASSERT_SCORING_MODEL(Model);
  CAI_ASSERT_LANGUAGE_MODEL(CritiqueModel);
  if (c.principles.empty()) throw config_error("cai::world::measure_skills: the constitution '" + c.name + "' is empty");
  const oracle o(w);
  const corpus_options co;
  critic_options options;
  options.critique_generation.max_new_tokens = max_new_tokens;
  options.revision_generation.max_new_tokens = max_new_tokens;
  separate_critic<Model, CritiqueModel> critic(model, critique_model, options);
  choice_ranker<Model> ranker(model);

  std::vector<critique_task<constitutional_principle>> revise_tasks;
  std::vector<ranking_task<constitutional_principle>> rank_tasks;
  std::vector<const principle_spec*> revise_specs, rank_specs;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const request& r = requests[i];
    rng g(derive_seed(seed, {i}));
    const principle_spec& p = c.principles[g.uniform_index(c.principles.size())];
    const response_form f = draw_form(w, r, g, co.critique_styles);
    revise_tasks.push_back({exchange{user_turn(r.text), w.render(r, f, g())}, p.principle(), derive_seed(seed, {i, 1})});
    revise_specs.push_back(&p);
    const principle_spec& q = c.principles[g.uniform_index(c.principles.size())];
    auto [a, b] = detail::ordered_pair(w, o, r, g, q.asks);
    rank_tasks.push_back({comparison{user_turn(r.text), a, b}, q.principle(), derive_seed(seed, {i, 2})});
    rank_specs.push_back(&q);
  }
  const std::vector<critique_step> steps = critic.critique(std::span<const critique_task<constitutional_principle>>(revise_tasks));
  const std::vector<double> p_a = ranker.rank(std::span<const ranking_task<constitutional_principle>>(rank_tasks));

  skill_measure out;
  std::size_t shown_revisions = 0, shown_labels = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const request& r = requests[i];
    const std::string& response = revise_tasks[i].subject.response;
    const bool agrees = revision_agrees(o, r, response, steps[i].revision, revise_specs[i]->asks);
    ++out.revisions;
    out.revisions_agreeing += agrees ? 1 : 0;
    if (shown_revisions < examples) {
      ++shown_revisions;
      out.examples.push_back({revise_specs[i]->name, r.text, response, steps[i].critique, steps[i].revision, 0.0, agrees});
    }
    const comparison& pair = rank_tasks[i].pair;
    const std::optional<char> want = expected_preference(o, r, pair.response_a, pair.response_b, rank_specs[i]->asks);
    if (!want) continue;
    const bool label_agrees = (p_a[i] > 0.5 ? 'A' : 'B') == *want;
    ++out.labels;
    out.labels_agreeing += label_agrees ? 1 : 0;
    if (shown_labels < examples) {
      ++shown_labels;
      out.examples.push_back({rank_specs[i]->name, r.text, pair.response_a, "", pair.response_b, p_a[i], label_agrees});
    }
  }
  return out;
}

/// Measures revisions and labels of `model`, which also critiques (`self_critic`), against the principles
/// of `c` on `requests`.
template <class Model>
[[nodiscard]] skill_measure measure_skills(Model& model, const assistant_world& w, std::span<const request> requests,
                                           const world_constitution_spec& c, std::uint64_t seed,
                                           std::size_t max_new_tokens = 64, std::size_t examples = 3) {
  return measure_skills(model, model, w, requests, c, seed, max_new_tokens, examples);
}

/// The label-flip check: pairs that principles `first` and `second` order oppositely, labelled by
/// `model` under each.
struct label_flip {
  std::size_t pairs = 0;
  std::size_t first_agreeing = 0;   ///< labels under `first` that pick what `first` prefers
  std::size_t second_agreeing = 0;  ///< the same for `second`
  std::size_t flipped = 0;          ///< pairs whose chosen option differs between the two principles
  [[nodiscard]] double first_agreement() const noexcept { return pairs == 0 ? 0.0 : double(first_agreeing) / double(pairs); }
  [[nodiscard]] double second_agreement() const noexcept { return pairs == 0 ? 0.0 : double(second_agreeing) / double(pairs); }
  [[nodiscard]] double flip_rate() const noexcept { return pairs == 0 ? 0.0 : double(flipped) / double(pairs); }
};

/// Labels, on `requests`, pairs of drawn forms that `first` and `second` order oppositely, under each.
template <class Model>
[[nodiscard]] label_flip label_flip_check(Model& model, const assistant_world& w, std::span<const request> requests,
                                          const principle_spec& first, const principle_spec& second, std::uint64_t seed) {
  CAI_ASSERT_SCORING_MODEL(Model);
  const oracle o(w);
  const corpus_options co;
  choice_ranker<Model> ranker(model);
  std::vector<ranking_task<constitutional_principle>> tasks;
  std::vector<char> want_first;
  const constitutional_principle pf = first.principle(), ps = second.principle();
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const request& r = requests[i];
    rng g(derive_seed(seed, {i}));
    for (int attempt = 0; attempt < 64; ++attempt) {
      const response_form a = draw_form(w, r, g, co.comparison_styles);
      const response_form b = draw_form(w, r, g, co.comparison_styles);
      const std::string ta = w.render(r, a, g()), tb = w.render(r, b, g());
      const auto x = expected_preference(o, r, ta, tb, first.asks);
      const auto y = expected_preference(o, r, ta, tb, second.asks);
      if (ta == tb || !x || !y || *x == *y) continue;
      tasks.push_back({comparison{user_turn(r.text), ta, tb}, pf, derive_seed(seed, {i, 1})});
      tasks.push_back({comparison{user_turn(r.text), ta, tb}, ps, derive_seed(seed, {i, 2})});
      want_first.push_back(*x);
      break;
    }
  }
  const std::vector<double> p = ranker.rank(std::span<const ranking_task<constitutional_principle>>(tasks));
  label_flip out;
  for (std::size_t k = 0; k < want_first.size(); ++k) {
    const char under_first = p[2 * k] > 0.5 ? 'A' : 'B';
    const char under_second = p[2 * k + 1] > 0.5 ? 'A' : 'B';
    const char want_second = want_first[k] == 'A' ? 'B' : 'A';
    ++out.pairs;
    out.first_agreeing += under_first == want_first[k] ? 1 : 0;
    out.second_agreeing += under_second == want_second ? 1 : 0;
    out.flipped += under_first != under_second ? 1 : 0;
  }
  return out;
}

}  // namespace cai::world
