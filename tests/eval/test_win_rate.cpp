// Tests of cai/eval/win_rate.hpp: snapshot tournaments judged by a scripted ranker, win rates with ties,
// Wilson intervals, sequential Elo and the Bradley-Terry fit on a fixed tournament. The expected numbers
// come from tests/eval/reference.py (standard-library Python, a Newton solver instead of the library's MM
// iteration); its output is quoted next to each check.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "cai/eval/win_rate.hpp"
#include "fakes.hpp"

using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using eval_test::scripted_ranker;

namespace {
/// The fixed tournament of reference.py.
std::vector<cai::match> fixed_tournament() {
  return {{0, 1, 0, 0.9}, {1, 2, 0, 0.5}, {0, 2, 0, 0.2}, {0, 1, 1, 0.3}, {1, 2, 1, 0.8}, {0, 2, 1, 0.7}};
}
const std::vector<std::string> names{"base", "sl-cai", "rl-cai"};
}  // namespace

TEST_CASE("the Elo scale turns rating differences into win probabilities and back", "[eval][elo]") {
  CHECK(cai::win_probability(0.0) == 0.5);
  CHECK_THAT(cai::win_probability(400.0), WithinRel(10.0 / 11.0, 1e-14));
  CHECK_THAT(cai::win_probability(-400.0), WithinRel(1.0 / 11.0, 1e-14));
  CHECK_THAT(cai::elo_difference(10.0 / 11.0), WithinRel(400.0, 1e-12));
  CHECK_THAT(cai::elo_difference(cai::win_probability(123.0)), WithinRel(123.0, 1e-12));
  CHECK(cai::elo_difference(0.5) == 0.0);
  // a preference model's score gap of g nats is P = sigmoid(g), that is 400 / ln 10 * g points
  const double g = 0.7;
  CHECK_THAT(cai::elo_from_score_gap(g), WithinRel(cai::elo_difference(1.0 / (1.0 + std::exp(-g))), 1e-12));
}

TEST_CASE("match outcomes follow the tie margin or the soft label", "[eval][win_rate]") {
  CHECK(cai::match_score(0.9) == 1.0);
  CHECK(cai::match_score(0.1) == 0.0);
  CHECK(cai::match_score(0.5) == 0.5);
  CHECK(cai::match_score(0.7, {.tie_margin = 0.25}) == 0.5);
  CHECK(cai::match_score(0.8, {.tie_margin = 0.25}) == 1.0);
  CHECK(cai::match_score(0.2, {.tie_margin = 0.25}) == 0.0);
  CHECK(cai::match_score(0.7, {.tie_margin = 0.25, .soft = true}) == 0.7);
}

TEST_CASE("win rates count ties as half a win", "[eval][win_rate]") {
  const auto matches = fixed_tournament();
  const cai::win_table t = cai::tabulate(matches, names);
  CHECK(t.wins[0][1] == 1);
  CHECK(t.wins[1][0] == 1);
  CHECK(t.wins[1][2] == 1);
  CHECK(t.wins[2][1] == 0);
  CHECK(t.ties[1][2] == 1);
  CHECK(t.ties[2][1] == 1);
  CHECK(t.games(0, 1) == 2);
  CHECK(t.games(1) == 4);
  CHECK(t.games(0, 0) == 0);
  CHECK(t.win_rate(0, 1) == 0.5);
  CHECK(t.win_rate(1, 2) == 0.75);
  CHECK(t.win_rate(2, 1) == 0.25);
  CHECK(t.win_rate(0) == 0.5);
  CHECK(t.win_rate(1) == 0.625);
  CHECK(t.win_rate(2) == 0.375);
  CHECK(t.win_rate(0, 0) == 0.5);  // never met
  // reference.py: wilson 2.5/4 (0.21942204237515112, 0.9081029525238491)
  const cai::interval ci = t.win_rate_interval(1);
  CHECK_THAT(ci.lower, WithinAbs(0.21942204237515112, 1e-12));
  CHECK_THAT(ci.upper, WithinAbs(0.9081029525238491, 1e-12));
  CHECK(cai::wilson_interval(0.0, 0.0) == cai::interval{0.0, 1.0});
}

TEST_CASE("a wider tie margin turns close matches into ties", "[eval][win_rate]") {
  const auto matches = fixed_tournament();
  const cai::win_table t = cai::tabulate(matches, names, {.tie_margin = 0.25});
  // 0.7 and 0.3 are now ties; 0.9, 0.8 and 0.2 are still decided
  CHECK(t.wins[0][1] == 1);
  CHECK(t.ties[0][1] == 1);
  CHECK(t.wins[0][2] == 0);
  CHECK(t.wins[2][0] == 1);
  CHECK(t.ties[0][2] == 1);
  // every snapshot now scores 2 of 4
  CHECK(t.win_rate(0) == 0.5);
  CHECK(t.win_rate(1) == 0.5);
  CHECK(t.win_rate(2) == 0.5);
  CHECK(t.win_rate(1, 2) == 0.75);
}

TEST_CASE("sequential Elo of a fixed tournament matches the reference", "[eval][elo]") {
  const auto matches = fixed_tournament();
  // reference.py: elo ['999.335753826964', '1018.076732328459', '982.587513844577']
  const auto r = cai::elo_ratings(matches, 3);
  REQUIRE(r.size() == 3);
  CHECK_THAT(r[0], WithinAbs(999.335753826964, 1e-9));
  CHECK_THAT(r[1], WithinAbs(1018.076732328459, 1e-9));
  CHECK_THAT(r[2], WithinAbs(982.587513844577, 1e-9));
  CHECK_THAT(r[0] + r[1] + r[2], WithinAbs(3000.0, 1e-9));  // zero-sum updates
  // the first match alone: expected score 1/2, so the winner gains K/2
  const auto first = cai::elo_ratings(std::span(matches).first(1), 3, {.k = 32.0, .initial = 1500.0});
  CHECK(first == std::vector<double>{1516.0, 1484.0, 1500.0});
}

TEST_CASE("sequential Elo depends on the order of the matches but Bradley-Terry does not", "[eval][elo][bradley_terry]") {
  auto matches = fixed_tournament();
  const auto forward = cai::elo_ratings(matches, 3);
  const auto fit = cai::bradley_terry(matches, 3);
  std::reverse(matches.begin(), matches.end());
  const auto backward = cai::elo_ratings(matches, 3);
  const auto fit_backward = cai::bradley_terry(matches, 3);
  CHECK(std::abs(forward[1] - backward[1]) > 1.0);
  for (std::size_t i = 0; i < 3; ++i) CHECK_THAT(fit.ratings[i], WithinAbs(fit_backward.ratings[i], 1e-9));
}

TEST_CASE("the Bradley-Terry fit of a fixed tournament matches the reference", "[eval][bradley_terry]") {
  const auto fit = cai::bradley_terry(fixed_tournament(), 3);
  CHECK(fit.converged);
  // reference.py: bradley_terry ['1000.000000000000', '1059.586315672401', '940.413684327599']
  CHECK_THAT(fit.ratings[0], WithinAbs(1000.0, 1e-7));
  CHECK_THAT(fit.ratings[1], WithinAbs(1059.586315672401, 1e-7));
  CHECK_THAT(fit.ratings[2], WithinAbs(940.413684327599, 1e-7));
  // reference.py: bradley_terry_se ['117.519248018523', '120.058034983065', '120.058034983065']
  CHECK_THAT(fit.standard_errors[0], WithinAbs(117.519248018523, 1e-6));
  CHECK_THAT(fit.standard_errors[1], WithinAbs(120.058034983065, 1e-6));
  CHECK_THAT(fit.standard_errors[2], WithinAbs(120.058034983065, 1e-6));
  const cai::interval ci = fit.rating_interval(1);
  CHECK_THAT(ci.lower, WithinAbs(1059.586315672401 - 1.96 * 120.058034983065, 1e-6));
  // at the maximum, each snapshot's expected score equals its actual score
  const double expected_1 = 2 * cai::win_probability(fit.ratings[1] - fit.ratings[0]) +
                            2 * cai::win_probability(fit.ratings[1] - fit.ratings[2]);
  CHECK_THAT(expected_1, WithinAbs(2.5, 1e-9));
}

TEST_CASE("two snapshots get the closed-form Bradley-Terry ratings", "[eval][bradley_terry]") {
  // 0 beats 1 three times in four: theta_0 - theta_1 = ln 3, so the ratings are 1000 +- 200 log10(3)
  const std::vector<cai::match> m{{0, 1, 0, 1.0}, {0, 1, 1, 0.9}, {1, 0, 2, 0.6}, {0, 1, 3, 0.8}};
  const auto fit = cai::bradley_terry(m, 2, {.anchor = 0.0});
  CHECK_THAT(fit.ratings[0], WithinAbs(200.0 * std::log10(3.0), 1e-8));
  CHECK_THAT(fit.ratings[1], WithinAbs(-200.0 * std::log10(3.0), 1e-8));
  // reference.py: two players ... se 100.2960144137646
  CHECK_THAT(fit.standard_errors[0], WithinAbs(100.2960144137646, 1e-6));
  CHECK_THAT(fit.log_likelihood, WithinAbs(3.0 * std::log(0.75) + std::log(0.25), 1e-10));
}

TEST_CASE("soft outcomes use the ranker's probability as the score", "[eval][bradley_terry][elo]") {
  // one match at p = 0.8 with soft scoring: the fit gives P(0 beats 1) = 0.8 exactly
  const std::vector<cai::match> m{{0, 1, 0, 0.8}};
  const auto fit = cai::bradley_terry(m, 2, {.rule = {.soft = true}});
  CHECK_THAT(cai::win_probability(fit.ratings[0] - fit.ratings[1]), WithinAbs(0.8, 1e-10));
  const auto elo = cai::elo_ratings(m, 2, {.rule = {.soft = true}});
  CHECK_THAT(elo[0], WithinAbs(1000.0 + 32.0 * 0.3, 1e-12));
}

TEST_CASE("Bradley-Terry refuses a snapshot that never scored unless a prior is set", "[eval][bradley_terry]") {
  const std::vector<cai::match> m{{0, 1, 0, 0.9}, {0, 1, 1, 0.9}, {1, 2, 0, 0.5}};
  CHECK_THROWS_AS(cai::bradley_terry(m, 3), cai::config_error);
  CHECK_THROWS_WITH(cai::bradley_terry(m, 3), Catch::Matchers::ContainsSubstring("prior"));
  const auto fit = cai::bradley_terry(m, 3, {.prior = 1.0});
  CHECK(fit.converged);
  CHECK(fit.ratings[0] > fit.ratings[1]);
  CHECK_THAT(fit.ratings[0] + fit.ratings[1] + fit.ratings[2], WithinAbs(3000.0, 1e-7));
  for (double se : fit.standard_errors) CHECK(std::isfinite(se));
  CHECK_THROWS_AS(cai::bradley_terry(std::vector<cai::match>{{0, 3, 0, 0.5}}, 3), cai::config_error);
  CHECK_THROWS_AS(cai::elo_ratings(std::vector<cai::match>{{1, 1, 0, 0.5}}, 3), cai::config_error);
}

TEST_CASE("compare_snapshots judges every pair of snapshots on every prompt in one call", "[eval][pairwise]") {
  scripted_ranker ranker;
  ranker.quality[""] = {{"bad", 0.0}, {"ok", 0.5}, {"good", 1.0}};
  const std::vector<cai::dialogue> prompts{cai::user_turn("q0"), cai::user_turn("q1")};
  const std::vector<cai::snapshot_responses> snaps{
      {"base", {"bad", "bad"}}, {"sl-cai", {"ok", "bad"}}, {"rl-cai", {"good", "good"}}};
  const auto principle = eval_test::comparison_principle("helpful");
  const auto m = cai::compare_snapshots(ranker, std::span(prompts), std::span(snaps), principle, {.seed = 5});
  CHECK(ranker.calls == 1);
  REQUIRE(m.size() == 6);
  const std::vector<cai::match> expected{{0, 1, 0, 0.25}, {0, 2, 0, 0.0}, {1, 2, 0, 0.25},
                                         {0, 1, 1, 0.5},  {0, 2, 1, 0.0}, {1, 2, 1, 0.0}};
  CHECK(m == expected);
  REQUIRE(ranker.seen.size() == 6);
  CHECK(ranker.seen[2].seed == cai::derive_seed(5, {0, 1, 2}));
  CHECK(ranker.seen[2].pair.context == prompts[0]);
  CHECK(ranker.seen[2].principle.name == "helpful");
  const cai::win_table t = cai::tabulate(m, {"base", "sl-cai", "rl-cai"});
  CHECK(t.win_rate(2) == 1.0);
  CHECK(t.win_rate(1) == 0.375);
  CHECK(t.win_rate(0) == 0.125);
}

TEST_CASE("swapping orders cancels a ranker's preference for the first response", "[eval][pairwise]") {
  scripted_ranker ranker;
  ranker.quality[""] = {{"bad", 0.0}, {"ok", 0.5}};
  ranker.first_bias = 0.2;
  const std::vector<cai::dialogue> prompts{cai::user_turn("q")};
  const std::vector<cai::snapshot_responses> snaps{{"a", {"bad"}}, {"b", {"ok"}}};
  const auto principle = eval_test::comparison_principle("helpful");
  const auto biased = cai::compare_snapshots(ranker, std::span(prompts), std::span(snaps), principle);
  CHECK_THAT(biased[0].p_a, WithinAbs(0.45, 1e-12));
  const auto fair = cai::compare_snapshots(ranker, std::span(prompts), std::span(snaps), principle, {.swap_orders = true});
  REQUIRE(fair.size() == 1);
  CHECK_THAT(fair[0].p_a, WithinAbs(0.25, 1e-12));
  CHECK(ranker.calls == 2);
  REQUIRE(ranker.seen.size() == 3);
  CHECK(ranker.seen[2].pair.response_a == "ok");
  CHECK(ranker.seen[2].seed == ranker.seen[1].seed);
}

TEST_CASE("compare_snapshots rejects missing responses and a lone snapshot", "[eval][pairwise]") {
  scripted_ranker ranker;
  const std::vector<cai::dialogue> prompts{cai::user_turn("q0"), cai::user_turn("q1")};
  const auto principle = eval_test::comparison_principle("helpful");
  const std::vector<cai::snapshot_responses> short_one{{"a", {"x", "y"}}, {"b", {"x"}}};
  CHECK_THROWS_WITH(cai::compare_snapshots(ranker, std::span(prompts), std::span(short_one), principle),
                    Catch::Matchers::ContainsSubstring("snapshot 'b' has 1 responses for 2 prompts"));
  const std::vector<cai::snapshot_responses> lone{{"a", {"x", "y"}}};
  CHECK_THROWS_AS(cai::compare_snapshots(ranker, std::span(prompts), std::span(lone), principle), cai::config_error);
}
