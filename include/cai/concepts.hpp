/// @file concepts.hpp
/// The policy concepts that parameterise Constitutional AI (Bai et al. 2022, arXiv:2212.08073): the
/// models that write and score text, the principles of a constitution, the critics that revise, the
/// judges that decide whether a revision is needed, the rankers that label preferences, the optimizers
/// that train, and the backends that compute.
///
/// Each concept is built from small named sub-concepts (range-v3's habit) so that a failure names the
/// missing piece; each comment lists the syntactic and semantic requirements, numbered, and the shipped
/// types that model it (stdexec's habit). `CAI_ASSERT_MODELS` checks every requirement on its own with a
/// full-sentence `static_assert`, so misuse names the missing member.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cai/random.hpp"
#include "cai/text/generation.hpp"
#include "cai/text/types.hpp"

namespace cai {

// ---------------------------------------------------------------------------------------------------
// Tasks that policies receive, batched. Each carries its own seed, so that a result depends only on the
// task, never on what else is in the batch.

/// One critique-revision round to perform: the exchange under judgement and the principle drawn for it.
template <class Principle>
struct critique_task {
  exchange subject;
  Principle principle;
  std::uint64_t seed = 0;
};

/// One comparison to label against a principle.
template <class Principle>
struct ranking_task {
  comparison pair;
  Principle principle;
  std::uint64_t seed = 0;
};

// ---------------------------------------------------------------------------------------------------
// language_model

/// Sub-concept: `m.generate(requests)` returns one text per request.
template <class M>
concept generates_text = requires(M& m, std::span<const generation_request> requests) {
  { m.generate(requests) } -> std::same_as<std::vector<std::string>>;
};

/// A model that continues prompts, batched.
///
/// Requirements:
///  1. `m.generate(requests)`, with `requests` a `std::span<const generation_request>`, returns a
///     `std::vector<std::string>` of the same size: the i-th string is the continuation of the i-th
///     prompt (without the prompt), cut before the first stop sequence.
///  2. The continuation of a request depends only on that request (prompt, options, seed), not on the
///     other requests of the batch. With temperature 0 or a fixed seed, the same request gives the
///     same text.
///  3. `generate` may throw `cai::error`; it does not return fewer results than requests.
///
/// Modelled by: `native_model<Backend>` (model/), `remote_model` (remote/), and in tests
/// scripted models.
template <class M>
concept language_model = std::is_object_v<M> && generates_text<M>;

// ---------------------------------------------------------------------------------------------------
// scoring_model

/// Sub-concept: `m.score(requests)` returns one log-probability per request.
template <class M>
concept scores_text = requires(M& m, std::span<const scoring_request> requests) {
  { m.score(requests) } -> std::same_as<std::vector<double>>;
};

/// A language model that also computes log P(continuation | context), batched: what multiple-choice
/// AI feedback needs.
///
/// Requirements:
///  1. `M` models `language_model`.
///  2. `m.score(requests)`, with `requests` a `std::span<const scoring_request>`, returns a
///     `std::vector<double>` of the same size: the natural-log probability of the continuation given the
///     context, summed over the continuation's tokens; always <= 0.
///  3. Scoring is deterministic: the same request gives the same number.
///
/// Modelled by: `native_model<Backend>`, `remote_model` on servers that return prompt log-probs.
template <class M>
concept scoring_model = language_model<M> && scores_text<M>;

// ---------------------------------------------------------------------------------------------------
// principle

/// Sub-concept: `p.name` reads as a string.
template <class P>
concept has_principle_name = requires(const P& p) {
  { p.name } -> std::convertible_to<std::string_view>;
};
/// Sub-concept: `p.critique_request` and `p.revision_request` read as strings.
template <class P>
concept has_critique_pair = requires(const P& p) {
  { p.critique_request } -> std::convertible_to<std::string_view>;
  { p.revision_request } -> std::convertible_to<std::string_view>;
};
/// Sub-concept: `p.comparison_question` reads as a string.
template <class P>
concept has_comparison_question = requires(const P& p) {
  { p.comparison_question } -> std::convertible_to<std::string_view>;
};

/// One principle of a constitution.
///
/// Requirements:
///  1. Data members `name`, `critique_request`, `revision_request` and `comparison_question`, each
///     convertible to `std::string_view`.
///  2. `P` is copyable (tasks carry principles by value).
///  3. `name` is unique within its constitution; either text pair may be empty when the principle serves
///     only critique or only comparison.
///
/// Modelled by: `constitutional_principle`.
template <class P>
concept principle = std::copyable<P> && has_principle_name<P> && has_critique_pair<P> &&
                    has_comparison_question<P>;

/// A reference (or value) of a type that models `principle`.
template <class T>
concept principle_reference = principle<std::remove_cvref_t<T>>;

// ---------------------------------------------------------------------------------------------------
// critic

/// Sub-concept: `c.critique(tasks)` returns one step per task.
template <class C, class P>
concept critiques = requires(C& c, std::span<const critique_task<P>> tasks) {
  { c.critique(tasks) } -> std::same_as<std::vector<critique_step>>;
};

/// A policy that critiques a response against a principle and revises it: one SL-CAI round.
///
/// Requirements:
///  1. `P` models `principle`.
///  2. `c.critique(tasks)`, with `tasks` a `std::span<const critique_task<P>>`, returns a
///     `std::vector<critique_step>` of the same size; step i names `tasks[i].principle.name`, holds the
///     critique of `tasks[i].subject.response`, and a revision that replaces that response.
///  3. The result for a task depends only on that task (its seed included).
///
/// Modelled by: `self_critic<Model>`, `separate_critic<PolicyModel, CritiqueModel>`.
template <class C, class P>
concept critic = principle<P> && critiques<C, P>;

// ---------------------------------------------------------------------------------------------------
// principle_set

/// Sub-concept: `c.draw_critique(g)` draws a principle from a `cai::rng`.
template <class C>
concept draws_critique_principles = requires(const C& c, rng& g) {
  { c.draw_critique(g) } -> principle_reference;
};

/// A source of principles for SL-CAI: what the revision strategies draw from each round.
///
/// Requirements:
///  1. `c.principles` is a random-access container of a type that models `principle`.
///  2. `c.draw_critique(g)`, with `g` a `cai::rng&`, returns a reference to one of `c.principles` that
///     has a critique pair; the draw depends only on the state of `g`.
///
/// Modelled by: `constitution`.
template <class C>
concept principle_set = draws_critique_principles<C> && requires(const C& c) {
  { c.principles[0] } -> principle_reference;
  { c.principles.size() } -> std::convertible_to<std::size_t>;
};

/// The principle type of a `principle_set`.
template <class C>
using principle_of = std::remove_cvref_t<decltype(std::declval<const C&>().principles[0])>;

// ---------------------------------------------------------------------------------------------------
// reviser

/// Sub-concept: `s.revise(starts, seeds, principles)` returns the rounds of every record.
template <class S, class C>
concept revises = requires(S& s, std::span<const exchange> starts, std::span<const std::uint64_t> seeds,
                           const C& principles) {
  { s.revise(starts, seeds, principles) } -> std::same_as<std::vector<std::vector<critique_step>>>;
};

/// A revision strategy: how many critique-revision rounds a response gets, and with which principles.
///
/// Requirements:
///  1. `C` models `principle_set`.
///  2. `s.revise(starts, seeds, principles)` takes the exchanges to revise and one seed per exchange, and
///     returns, per exchange, the rounds performed in order: each round's revision is the response that
///     the next round judges. A record may have from 0 to `S::max_rounds` rounds.
///  3. `S::max_rounds` is a constant expression convertible to `unsigned`.
///  4. The rounds of a record depend only on its exchange and its seed (a principle is drawn for round k
///     from `rng(derive_seed(seed, {k}))`), never on the rest of the batch.
///
/// Modelled by: `multi_turn<Critic, N>`, `until_satisfied<Critic, Judge, MaxRounds>`.
template <class S, class C>
concept reviser = principle_set<C> && revises<S, C> && requires {
  { S::max_rounds } -> std::convertible_to<unsigned>;
};

// ---------------------------------------------------------------------------------------------------
// judge

/// Sub-concept: `j.violates(tasks)` returns one verdict per task.
template <class J, class P>
concept judges = requires(J& j, std::span<const critique_task<P>> tasks) {
  { j.violates(tasks) } -> std::same_as<std::vector<bool>>;
};

/// A policy that decides whether a response violates a principle: what `until_satisfied` asks before
/// each round.
///
/// Requirements:
///  1. `P` models `principle`.
///  2. `j.violates(tasks)` returns a `std::vector<bool>` of the same size as `tasks`; true means that
///     `tasks[i].subject.response` violates `tasks[i].principle` and should be revised.
///  3. The verdict for a task depends only on that task.
///
/// Modelled by: `critique_judge<Model>` (asks the model), `keyword_judge` (matches phrases).
template <class J, class P>
concept judge = principle<P> && judges<J, P>;

// ---------------------------------------------------------------------------------------------------
// ranker

/// Sub-concept: `r.rank(tasks)` returns one probability per task.
template <class R, class P>
concept ranks = requires(R& r, std::span<const ranking_task<P>> tasks) {
  { r.rank(tasks) } -> std::same_as<std::vector<double>>;
};

/// A policy that labels a comparison against a principle: AI feedback.
///
/// Requirements:
///  1. `P` models `principle`.
///  2. `r.rank(tasks)` returns a `std::vector<double>` of the same size as `tasks`: P(response A is
///     better than response B) under `tasks[i].principle`, in [0, 1].
///  3. The label for a task depends only on that task.
///
/// Modelled by: the rankers of `feedback/` (`choice_ranker<ScoringModel>` and its compositions).
template <class R, class P>
concept ranker = principle<P> && ranks<R, P>;

// ---------------------------------------------------------------------------------------------------
// optimizer

/// Sub-concept: `O::state<Param>` names the per-parameter state, created late (ensmallen's idiom).
template <class O, class Param>
concept has_optimizer_state = requires { typename O::template state<Param>; } &&
                              std::constructible_from<typename O::template state<Param>, const O&,
                                                      const Param&>;
/// Sub-concept: `s.update(param, gradient)` applies one step.
template <class O, class Param>
concept updates_parameter =
    requires(typename O::template state<Param>& s, Param& param, const Param& gradient) {
      s.update(param, gradient);
    };

/// A policy that updates parameters from their gradients.
///
/// Requirements:
///  1. `typename O::template state<Param>` exists and is constructible from `(const O&, const Param&)`:
///     the optimizer's state for one parameter tensor, created when training starts, so that users
///     never spell the state's types.
///  2. `s.update(param, gradient)` applies one optimisation step to `param` in place, reading the
///     hyper-parameters of the optimizer that created `s`; `gradient` has the shape of `param`.
///  3. Equal states fed equal gradients give equal parameters (no hidden randomness).
///
/// Modelled by: `sgd` (train/sgd.hpp) and the optimizers of `train/`.
template <class O, class Param>
concept optimizer = has_optimizer_state<O, Param> && updates_parameter<O, Param>;

// ---------------------------------------------------------------------------------------------------
// backend

/// Sub-concept: the tag names itself.
template <class B>
concept has_backend_name = requires {
  { B::name } -> std::convertible_to<std::string_view>;
};
/// Sub-concept: `B::storage<float>` is the backend's contiguous buffer type.
template <class B>
concept has_backend_storage = requires { typename B::template storage<float>; };

/// A compute backend, named by an empty tag type (Thrust's habit).
///
/// Requirements:
///  1. `B` is an empty, trivially copyable tag type.
///  2. `B::name` is convertible to `std::string_view` ("cpu", "cuda").
///  3. `B::storage<T>` names the backend's owning contiguous buffer of `T`.
///  4. The kernels that the transformer and the losses call are overloads found for the tag (filled in
///     by the transformer issue).
///
/// Modelled by: `cpu_t` (`cai::cpu`), and `cuda_t` when CUDA is enabled.
template <class B>
concept backend = std::is_empty_v<B> && std::is_trivially_copyable_v<B> && has_backend_name<B> &&
                  has_backend_storage<B>;

}  // namespace cai

/// Checks that `Type` models `Concept` one requirement at a time, so that the compiler's first message is
/// a sentence naming the missing member. Usage: `CAI_ASSERT_LANGUAGE_MODEL(my_model);`
#define CAI_ASSERT_LANGUAGE_MODEL(...)                                                              \
  static_assert(::cai::generates_text<__VA_ARGS__>,                                                 \
                "cai: a language_model needs a member generate(std::span<const "                    \
                "cai::generation_request>) returning std::vector<std::string>")

#define CAI_ASSERT_SCORING_MODEL(...)                                                               \
  CAI_ASSERT_LANGUAGE_MODEL(__VA_ARGS__);                                                           \
  static_assert(::cai::scores_text<__VA_ARGS__>,                                                    \
                "cai: a scoring_model needs a member score(std::span<const cai::scoring_request>) " \
                "returning std::vector<double>")

#define CAI_ASSERT_PRINCIPLE(...)                                                                   \
  static_assert(::cai::has_principle_name<__VA_ARGS__>,                                             \
                "cai: a principle needs a data member 'name' convertible to std::string_view");     \
  static_assert(::cai::has_critique_pair<__VA_ARGS__>,                                              \
                "cai: a principle needs data members 'critique_request' and 'revision_request' "    \
                "convertible to std::string_view");                                                 \
  static_assert(::cai::has_comparison_question<__VA_ARGS__>,                                        \
                "cai: a principle needs a data member 'comparison_question' convertible to "        \
                "std::string_view")

#define CAI_ASSERT_CRITIC(Critic, Principle)                                                        \
  static_assert(::cai::critiques<Critic, Principle>,                                                \
                "cai: a critic needs a member critique(std::span<const cai::critique_task<P>>) "    \
                "returning std::vector<cai::critique_step>")

#define CAI_ASSERT_REVISER(Reviser, Principles)                                                     \
  static_assert(::cai::revises<Reviser, Principles>,                                                \
                "cai: a reviser needs a member revise(std::span<const cai::exchange>, "             \
                "std::span<const std::uint64_t>, const Principles&) returning "                     \
                "std::vector<std::vector<cai::critique_step>>");                                    \
  static_assert(requires { { Reviser::max_rounds } -> std::convertible_to<unsigned>; },             \
                "cai: a reviser needs a static constant 'max_rounds'")

#define CAI_ASSERT_JUDGE(Judge, Principle)                                                          \
  static_assert(::cai::judges<Judge, Principle>,                                                    \
                "cai: a judge needs a member violates(std::span<const cai::critique_task<P>>) "     \
                "returning std::vector<bool>")

#define CAI_ASSERT_RANKER(Ranker, Principle)                                                        \
  static_assert(::cai::ranks<Ranker, Principle>,                                                    \
                "cai: a ranker needs a member rank(std::span<const cai::ranking_task<P>>) "         \
                "returning std::vector<double>")

#define CAI_ASSERT_OPTIMIZER(Optimizer, Param)                                                      \
  static_assert(::cai::has_optimizer_state<Optimizer, Param>,                                       \
                "cai: an optimizer needs a nested 'template <class Param> struct state' "           \
                "constructible from (const Optimizer&, const Param&)");                             \
  static_assert(::cai::updates_parameter<Optimizer, Param>,                                         \
                "cai: an optimizer's state needs a member update(Param&, const Param&)")

#define CAI_ASSERT_BACKEND(...)                                                                     \
  static_assert(std::is_empty_v<__VA_ARGS__>, "cai: a backend is an empty tag type");               \
  static_assert(::cai::has_backend_name<__VA_ARGS__>,                                               \
                "cai: a backend needs a static member 'name' convertible to std::string_view");     \
  static_assert(::cai::has_backend_storage<__VA_ARGS__>,                                            \
                "cai: a backend needs a member alias template 'storage<T>'")
