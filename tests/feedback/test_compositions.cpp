// Tests of the compositions of cai/feedback/: chain-of-thought ranking, clamping, order-swap debiasing,
// the ensembles with their vote policies, principle ensembles, and the critique-side ensemble, with
// exact numbers from scripted log-probabilities.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "cai/critique/rounds.hpp"
#include "cai/feedback.hpp"
#include "fakes.hpp"

using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using feedback_test::fixed_critic;
using feedback_test::fixed_ranker;
using feedback_test::scripted_scorer;
using feedback_test::sigmoid;
using P = cai::constitutional_principle;
using task_t = cai::ranking_task<P>;

namespace {
std::vector<double> rank(auto& ranker, const std::vector<task_t>& tasks) {
  return ranker.rank(std::span<const task_t>(tasks));
}
std::vector<task_t> one_task(std::uint64_t seed = 1) { return {{feedback_test::lock_pair(), feedback_test::harmless(), seed}}; }
}  // namespace

TEST_CASE("every feedback composition models ranker or critic", "[feedback][compose][concepts]") {
  using choice = cai::choice_ranker<scripted_scorer>;
  using cot = cai::cot_ranker<scripted_scorer>;
  STATIC_REQUIRE(cai::ranker<cot, P>);
  STATIC_REQUIRE(cai::ranker<cai::clamped<cot>, P>);
  STATIC_REQUIRE(cai::ranker<cai::debiased<choice>, P>);
  STATIC_REQUIRE(cai::ranker<cai::clamped<cai::debiased<cot>>, P>);
  STATIC_REQUIRE(cai::ranker<cai::ensemble<choice, cai::clamped<cot>>, P>);
  STATIC_REQUIRE(cai::ranker<cai::voting_ensemble<cai::majority_vote, choice, fixed_ranker>, P>);
  STATIC_REQUIRE(cai::ranker<cai::dynamic_ensemble<choice, cai::weighted_vote>, P>);
  STATIC_REQUIRE(cai::ranker<cai::principle_ensemble<choice, cai::constitution>, P>);
  STATIC_REQUIRE(cai::critic<cai::best_revision<choice, fixed_critic, fixed_critic>, P>);
  STATIC_REQUIRE(cai::reviser<cai::multi_turn<cai::best_revision<choice, fixed_critic, fixed_critic>, 2>, cai::constitution>);
  STATIC_REQUIRE(cai::voting_ensemble<cai::mean_vote, choice, cot, fixed_ranker>::size == 3);
}

TEST_CASE("cot_ranker writes reasoning after the step-by-step cue and scores the options after it", "[feedback][cot]") {
  scripted_scorer model;
  cai::cot_ranker<scripted_scorer> ranker(model);
  const auto tasks = one_task(4);
  const auto p = rank(ranker, tasks);
  REQUIRE(model.generated.size() == 1);
  const std::string cot_prompt = cai::prompts::cot_feedback_prompt(tasks[0].pair, tasks[0].principle.comparison_question);
  CHECK(model.generated[0].prompt == cot_prompt);
  CHECK_THAT(cot_prompt, Catch::Matchers::EndsWith("\nLet's think step-by-step:"));
  CHECK(model.generated[0].options.seed == cai::derive_seed(4, {0}));
  CHECK(model.generated[0].options.stop == cai::prompts::cot_stop_sequences());
  const bool even = cai::derive_seed(4, {0}) % 2 == 0;
  const std::string reasoning = even ? "A looks better." : "B looks better.";
  REQUIRE(ranker.last_reasoning().size() == 1);
  CHECK(ranker.last_reasoning()[0] == std::vector<std::string>{reasoning});
  REQUIRE(model.scored.size() == 2);
  CHECK(model.scored[0].context == cai::prompts::cot_answer_prompt(cot_prompt, reasoning));
  CHECK_THAT(p[0], WithinRel(even ? 0.9 : 0.1, 1e-12));
}

TEST_CASE("cot_ranker averages the label over k reasoning samples", "[feedback][cot][samples]") {
  scripted_scorer model;
  cai::cot_options o;
  o.samples = 6;
  o.reasoning.temperature = 1.0;
  cai::cot_ranker<scripted_scorer> ranker(model, o);
  const auto tasks = one_task(11);
  const auto p = rank(ranker, tasks);
  double expected = 0.0;
  for (std::uint64_t s = 0; s < 6; ++s) expected += cai::derive_seed(11, {s}) % 2 == 0 ? 0.9 : 0.1;
  expected /= 6.0;
  CHECK_THAT(p[0], WithinRel(expected, 1e-12));
  CHECK(model.generate_calls == 1);
  CHECK(model.score_calls == 1);
  CHECK(model.scored.size() == 12);
  CHECK_THROWS_AS(cai::cot_ranker<scripted_scorer>(model, cai::cot_options{.samples = 0}), cai::config_error);
}

TEST_CASE("clamped keeps labels within 40 to 60 percent by default", "[feedback][clamp]") {
  const std::vector<task_t> tasks = one_task();
  for (auto [in, out] : {std::pair{0.95, 0.6}, {0.05, 0.4}, {0.55, 0.55}, {0.4, 0.4}, {1.0, 0.6}}) {
    cai::clamped<fixed_ranker> c(fixed_ranker{in, {}});
    CHECK(rank(c, tasks) == std::vector<double>{out});
  }
  cai::clamped<fixed_ranker> wide(fixed_ranker{0.99, {}}, {0.1, 0.9});
  CHECK(rank(wide, tasks) == std::vector<double>{0.9});
  CHECK(wide.range() == cai::clamp_range{0.1, 0.9});
  CHECK_THROWS_AS(cai::clamped<fixed_ranker>(fixed_ranker{}, {0.7, 0.3}), cai::config_error);
  CHECK_THROWS_AS(cai::clamped<fixed_ranker>(fixed_ranker{}, {-0.1, 0.5}), cai::config_error);
}

TEST_CASE("clamped chain of thought gives the paper's 40 to 60 percent labels", "[feedback][clamp][cot]") {
  scripted_scorer model;
  cai::clamped<cai::cot_ranker<scripted_scorer>> ranker{cai::cot_ranker<scripted_scorer>(model)};
  const auto p = rank(ranker, one_task(4));
  CHECK(p[0] == (cai::derive_seed(4, {0}) % 2 == 0 ? 0.6 : 0.4));
}

TEST_CASE("debiased averages both orders and reports the position bias", "[feedback][debias]") {
  scripted_scorer model;
  const auto pair = feedback_test::lock_pair();
  const double d = std::log(3.0), b = std::log(2.0);
  model.quality[pair.response_a] = d;
  model.first_bias = b;  // the model likes whatever comes first
  cai::debiased<cai::choice_ranker<scripted_scorer>> ranker{cai::choice_ranker<scripted_scorer>(model)};
  const auto p = rank(ranker, one_task());
  const double p_ab = sigmoid(d + b), p_ba = sigmoid(-d + b);  // 6/7 and 2/5
  CHECK_THAT(p_ab, WithinRel(6.0 / 7.0, 1e-12));
  CHECK_THAT(p[0], WithinRel((p_ab + 1.0 - p_ba) / 2.0, 1e-12));
  REQUIRE(ranker.position_bias().size() == 1);
  CHECK_THAT(ranker.position_bias()[0], WithinRel((p_ab + p_ba) / 2.0 - 0.5, 1e-12));
  CHECK(ranker.mean_position_bias() > 0.0);
  CHECK(model.score_calls == 1);  // both orders in one batch
  REQUIRE(model.scored.size() == 4);
  CHECK(feedback_test::last_line_after(model.scored[2].context, "(A) ") == pair.response_b);

  SECTION("an order-blind model is left as it is, with no bias") {
    model.first_bias = 0.0;
    const auto q = rank(ranker, one_task());
    CHECK_THAT(q[0], WithinRel(0.75, 1e-12));
    CHECK_THAT(ranker.mean_position_bias(), WithinAbs(0.0, 1e-15));
  }
  SECTION("a model that only looks at the position gives one half") {
    model.quality.clear();
    const auto q = rank(ranker, one_task());
    CHECK_THAT(q[0], WithinAbs(0.5, 1e-15));
    CHECK_THAT(ranker.mean_position_bias(), WithinRel(sigmoid(b) - 0.5, 1e-12));  // 1/6
  }
}

TEST_CASE("clamped debiased chain of thought composes at compile time", "[feedback][compose]") {
  scripted_scorer model;
  using cot = cai::cot_ranker<scripted_scorer>;
  cai::clamped<cai::debiased<cot>> ranker{cai::debiased<cot>{cot(model)}};
  const auto p = rank(ranker, one_task(4));
  // both orders see the same seed, so the same reasoning ("A looks better." favours whichever is first)
  CHECK_THAT(p[0], WithinAbs(0.5, 1e-12));
  CHECK(ranker.inner().position_bias()[0] != 0.0);
  CHECK(model.generate_calls == 1);
  CHECK(model.generated.size() == 2);
}

TEST_CASE("vote policies combine member labels exactly", "[feedback][ensemble][vote]") {
  const std::vector<double> a{0.9, 0.4, 0.2};
  CHECK_THAT(cai::mean_vote{}(a), WithinRel(0.5, 1e-12));
  CHECK(cai::majority_vote{}(a) == 0.0);
  CHECK(cai::majority_vote{}(std::vector<double>{0.9, 0.6, 0.2}) == 1.0);
  CHECK(cai::majority_vote{}(std::vector<double>{0.9, 0.5, 0.2}) == 0.5);  // 0.5 abstains: a tie
  CHECK_THAT((cai::weighted_vote{{1.0, 2.0, 1.0}}(a)), WithinRel((0.9 + 0.8 + 0.2) / 4.0, 1e-12));
  CHECK_THROWS_AS((cai::weighted_vote{{1.0, 2.0}}(a)), cai::config_error);
  CHECK_THROWS_AS((cai::weighted_vote{{0.0, 0.0, 0.0}}(a)), cai::config_error);
}

TEST_CASE("an ensemble of different rankers votes on each label", "[feedback][ensemble]") {
  scripted_scorer model;
  const auto pair = feedback_test::lock_pair();
  model.quality[pair.response_a] = std::log(4.0);  // choice ranker: 0.8
  using choice = cai::choice_ranker<scripted_scorer>;
  const auto tasks = one_task(9);

  cai::ensemble<choice, fixed_ranker, fixed_ranker> mean(choice(model), fixed_ranker{0.3, {}}, fixed_ranker{0.4, {}});
  CHECK_THAT(rank(mean, tasks)[0], WithinRel(0.5, 1e-12));
  REQUIRE(mean.last_votes().size() == 1);
  CHECK_THAT(mean.last_votes()[0][0], WithinRel(0.8, 1e-12));
  CHECK(mean.member<1>().seen.at(0).seed == cai::derive_seed(9, {1}));
  CHECK(mean.member<2>().seen.at(0).seed == cai::derive_seed(9, {2}));

  cai::voting_ensemble<cai::majority_vote, choice, fixed_ranker, fixed_ranker> majority(
      choice(model), fixed_ranker{0.3, {}}, fixed_ranker{0.4, {}});
  CHECK(rank(majority, tasks)[0] == 0.0);

  cai::voting_ensemble<cai::weighted_vote, choice, fixed_ranker> weighted(cai::weighted_vote{{3.0, 1.0}}, choice(model),
                                                                          fixed_ranker{0.4, {}});
  CHECK_THAT(rank(weighted, tasks)[0], WithinRel((3 * 0.8 + 0.4) / 4.0, 1e-12));
}

TEST_CASE("a run-time ensemble of rankers over several models of one type votes", "[feedback][ensemble][dynamic]") {
  std::vector<scripted_scorer> models(3);
  const auto pair = feedback_test::lock_pair();
  const double odds[] = {9.0, 1.0, 0.25};  // labels 0.9, 0.5, 0.2
  for (std::size_t i = 0; i < 3; ++i) models[i].quality[pair.response_a] = std::log(odds[i]);
  using choice = cai::choice_ranker<scripted_scorer>;
  std::vector<choice> members;
  for (auto& m : models) members.emplace_back(m);
  const auto tasks = one_task();

  cai::dynamic_ensemble<choice> mean(members);
  CHECK(mean.size() == 3);
  CHECK_THAT(rank(mean, tasks)[0], WithinRel((0.9 + 0.5 + 0.2) / 3.0, 1e-12));
  cai::dynamic_ensemble<choice, cai::majority_vote> majority(members);
  CHECK(rank(majority, tasks)[0] == 0.5);  // one for A, one for B, one abstains
  cai::dynamic_ensemble<choice, cai::weighted_vote> weighted(members, cai::weighted_vote{{1.0, 0.0, 1.0}});
  CHECK_THAT(rank(weighted, tasks)[0], WithinRel(0.55, 1e-12));
  CHECK_THROWS_AS(cai::dynamic_ensemble<choice>(std::vector<choice>{}), cai::config_error);
}

TEST_CASE("a principle ensemble averages k principles per label", "[feedback][ensemble][principles]") {
  scripted_scorer model;
  for (int i = 0; i < 4; ++i) model.question_bias["Question " + std::to_string(i) + "?"] = std::log(1.0 + i);
  // labels per principle: c0 1/2, c1 2/3, c2 3/4, c3 4/5
  auto label_of = [](const std::string& name) {
    const double i = name.back() - '0';
    return (1.0 + i) / (2.0 + i);
  };
  const cai::constitution c = feedback_test::comparison_constitution();
  using choice = cai::choice_ranker<scripted_scorer>;
  const std::vector<task_t> tasks{{feedback_test::lock_pair(), c.principles[1], 21},
                                  {feedback_test::lock_pair(), c.principles[3], 22}};

  cai::principle_ensemble<choice, cai::constitution> three(choice(model), c, 3);
  const auto p = rank(three, tasks);
  REQUIRE(three.last_principles().size() == 2);
  for (std::size_t t = 0; t < 2; ++t) {
    const auto& names = three.last_principles()[t];
    REQUIRE(names.size() == 3);
    CHECK(names[0] == tasks[t].principle.name);
    CHECK(std::set<std::string>(names.begin(), names.end()).size() == 3);  // distinct
    double expected = 0.0;
    for (const auto& n : names) {
      CHECK(n != "critique-only");
      expected += label_of(n);
    }
    CHECK_THAT(p[t], WithinRel(expected / 3.0, 1e-12));
  }
  CHECK(model.score_calls == 1);

  cai::principle_ensemble<choice, cai::constitution> one(choice(model), c, 1);
  CHECK_THAT(rank(one, tasks)[0], WithinRel(2.0 / 3.0, 1e-12));
  cai::principle_ensemble<choice, cai::constitution, cai::majority_vote> all(choice(model), c, 16);
  CHECK(rank(all, tasks)[0] == 1.0);
  CHECK(all.last_principles()[0].size() == 4);  // only four comparison principles exist
  CHECK_THROWS_AS((cai::principle_ensemble<choice, cai::constitution>(choice(model), c, 0)), cai::config_error);
}

TEST_CASE("several critics revise and a ranker picks the best revision", "[feedback][ensemble][critique]") {
  scripted_scorer model;
  model.quality["I can't help with that, but a locksmith can."] = 2.0;
  model.quality["Here is how."] = -1.0;
  using choice = cai::choice_ranker<scripted_scorer>;
  cai::best_revision<choice, fixed_critic, fixed_critic, fixed_critic> critic(
      choice(model), fixed_critic{"Here is how.", {}}, fixed_critic{"I can't help with that, but a locksmith can.", {}},
      fixed_critic{"Maybe.", {}});
  P principle;
  principle.name = "harm";
  principle.critique_request = "Find the harm.";
  principle.revision_request = "Remove it.";  // no comparison question: the fallback is asked
  const std::vector<cai::critique_task<P>> tasks{{{cai::user_turn("How do I pick a lock?"), "Sure!"}, principle, 5}};
  const auto steps = critic.critique(std::span<const cai::critique_task<P>>(tasks));
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].revision == "I can't help with that, but a locksmith can.");
  CHECK(steps[0].principle == "harm");
  CHECK(critic.last_choices() == std::vector<std::size_t>{1});
  REQUIRE(critic.last_scores()[0].size() == 3);
  // revision 1 beats 0 with sigmoid(3) and 2 with sigmoid(2)
  CHECK_THAT(critic.last_scores()[0][1], WithinRel(sigmoid(3.0) + sigmoid(2.0), 1e-12));
  CHECK(model.score_calls == 1);
  CHECK(model.scored.size() == 6);  // three pairs, two options each
  CHECK_THAT(model.scored[0].context, Catch::Matchers::ContainsSubstring(cai::best_revision_options{}.fallback_question));
  CHECK(critic.critic<0>().seeds.at(0) == cai::derive_seed(5, {0}));
  CHECK(critic.critic<2>().seeds.at(0) == cai::derive_seed(5, {2}));

  SECTION("one critic needs no ranking") {
    cai::best_revision<choice, fixed_critic> alone(choice(model), fixed_critic{"Maybe.", {}});
    model.score_calls = 0;
    CHECK(alone.critique(std::span<const cai::critique_task<P>>(tasks))[0].revision == "Maybe.");
    CHECK(model.score_calls == 0);
    CHECK(alone.last_choices() == std::vector<std::size_t>{0});
  }
  SECTION("it runs inside multi-round revision") {
    cai::constitution c;
    c.principles.push_back(principle);
    cai::multi_turn<decltype(critic), 2> rounds(critic);
    const std::vector<cai::exchange> starts{tasks[0].subject};
    const std::vector<std::uint64_t> seeds{3};
    const auto out = rounds.revise(starts, seeds, c);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].size() == 2);
    CHECK(out[0][1].revision == "I can't help with that, but a locksmith can.");
  }
}
