// Tests of cai/feedback/choice_ranker.hpp and cai/feedback/labeling.hpp: the soft label's exact
// arithmetic, the question the ranker sends, batching with one shared context per comparison, hard
// labels, few-shot examples, and the seeded draw of one comparison principle per label.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "cai/feedback/choice_ranker.hpp"
#include "cai/feedback/labeling.hpp"
#include "fakes.hpp"

using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using feedback_test::scripted_scorer;
using P = cai::constitutional_principle;
using task_t = cai::ranking_task<P>;

namespace {
std::vector<double> rank(auto& ranker, const std::vector<task_t>& tasks) {
  return ranker.rank(std::span<const task_t>(tasks));
}
}  // namespace

TEST_CASE("choice_ranker models ranker and its fake model models scoring_model", "[feedback][choice][concepts]") {
  STATIC_REQUIRE(cai::scoring_model<scripted_scorer>);
  STATIC_REQUIRE(cai::ranker<cai::choice_ranker<scripted_scorer>, P>);
  STATIC_REQUIRE(cai::draws_comparison_principles<cai::constitution>);
  STATIC_REQUIRE_FALSE(cai::draws_comparison_principles<int>);
}

TEST_CASE("the soft label is the normalised probability of the two options", "[feedback][choice][soft]") {
  CHECK_THAT(cai::soft_label(std::log(0.3), std::log(0.1)), WithinRel(0.75, 1e-12));
  CHECK_THAT(cai::soft_label(std::log(0.02), std::log(0.18)), WithinRel(0.1, 1e-12));
  CHECK(cai::soft_label(-2.5, -2.5) == 0.5);
  // far below exp's range the difference still counts
  CHECK_THAT(cai::soft_label(-1000.0, -1001.0), WithinRel(1.0 / (1.0 + std::exp(-1.0)), 1e-12));
  CHECK_THAT(cai::soft_label(-1001.0, -1000.0), WithinRel(1.0 / (1.0 + std::exp(1.0)), 1e-12));
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(cai::soft_label(-inf, -inf) == 0.5);
  CHECK(cai::soft_label(-inf, -3.0) == 0.0);
  CHECK(cai::soft_label(-3.0, -inf) == 1.0);
  CHECK_THROWS_AS(cai::soft_label(std::nan(""), -1.0), cai::error);
  CHECK(cai::hard_label(0.51) == 1.0);
  CHECK(cai::hard_label(0.49) == 0.0);
  CHECK(cai::hard_label(0.5) == 0.5);
}

TEST_CASE("choice_ranker sends the paper's question and scores both options after it", "[feedback][choice][prompts]") {
  scripted_scorer model;
  cai::choice_ranker<scripted_scorer> ranker(model);
  const std::vector<task_t> tasks{{feedback_test::lock_pair(), feedback_test::harmless(), 1}};
  (void)rank(ranker, tasks);
  REQUIRE(model.scored.size() == 2);
  const std::string expected =
      "Consider the following conversation between a human and an assistant:"
      "\n\nHuman: How do I pick a lock?"
      "\n\nWhich of these assistant responses is less harmful?"
      "\nOptions:"
      "\n(A) Insert a tension wrench and rake the pins."
      "\n(B) Lock picking can be illegal on locks you don't own; a locksmith can help."
      "\nThe answer is:";
  CHECK(model.scored[0].context == expected);
  CHECK(model.scored[1].context == expected);
  CHECK(model.scored[0].continuation == " (A)");
  CHECK(model.scored[1].continuation == " (B)");
  CHECK(ranker.question(tasks[0]) == expected);
}

TEST_CASE("choice_ranker gives the exact soft label of scripted log-probabilities", "[feedback][choice][soft]") {
  scripted_scorer model;
  const auto pair = feedback_test::lock_pair();
  model.quality[pair.response_a] = std::log(0.2);
  model.quality[pair.response_b] = std::log(0.6);
  cai::choice_ranker<scripted_scorer> ranker(model);
  cai::comparison swapped{pair.context, pair.response_b, pair.response_a};
  const std::vector<task_t> tasks{{pair, feedback_test::harmless(), 1}, {swapped, feedback_test::harmless(), 2}};
  const auto p = rank(ranker, tasks);
  REQUIRE(p.size() == 2);
  CHECK_THAT(p[0], WithinRel(0.25, 1e-12));
  CHECK_THAT(p[1], WithinRel(0.75, 1e-12));
  CHECK_THAT(p[0] + p[1], WithinAbs(1.0, 1e-12));
}

TEST_CASE("choice_ranker scores a whole batch in one call with one shared context per comparison", "[feedback][choice][batch]") {
  scripted_scorer model;
  cai::choice_ranker<scripted_scorer> ranker(model);
  std::vector<task_t> tasks;
  for (int i = 0; i < 5; ++i) {
    auto pair = feedback_test::lock_pair();
    pair.response_a += " (" + std::to_string(i) + ")";
    tasks.push_back({pair, feedback_test::harmless(), static_cast<std::uint64_t>(i)});
  }
  const auto p = rank(ranker, tasks);
  CHECK(p.size() == 5);
  CHECK(model.score_calls == 1);
  REQUIRE(model.scored.size() == 10);
  std::set<std::string> contexts;
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(model.scored[2 * i].context == model.scored[2 * i + 1].context);
    contexts.insert(model.scored[2 * i].context);
  }
  CHECK(contexts.size() == 5);
}

TEST_CASE("choice_ranker gives hard labels when asked", "[feedback][choice][hard]") {
  scripted_scorer model;
  const auto pair = feedback_test::lock_pair();
  model.quality[pair.response_b] = 0.3;
  cai::choice_ranker<scripted_scorer> ranker(model, {.few_shot = {}, .hard_labels = true});
  cai::comparison tie{pair.context, "same", "same"};
  const std::vector<task_t> tasks{{pair, feedback_test::harmless(), 1},
                                  {{pair.context, pair.response_b, pair.response_a}, feedback_test::harmless(), 2},
                                  {tie, feedback_test::harmless(), 3}};
  CHECK(rank(ranker, tasks) == std::vector<double>{0.0, 1.0, 0.5});
}

TEST_CASE("choice_ranker puts few-shot labelling examples before the question", "[feedback][choice][few_shot]") {
  scripted_scorer model;
  cai::prompts::feedback_example shot{{cai::user_turn("Q1"), "a1", "b1"}, "Which is better?", 'B'};
  cai::choice_ranker<scripted_scorer> ranker(model, {.few_shot = {shot}});
  const std::vector<task_t> tasks{{feedback_test::lock_pair(), feedback_test::harmless(), 1}};
  (void)rank(ranker, tasks);
  REQUIRE(model.scored.size() == 2);
  const std::string& q = model.scored[0].context;
  CHECK_THAT(q, Catch::Matchers::StartsWith("Consider the following conversation between a human and an assistant:"
                                            "\n\nHuman: Q1\n\nWhich is better?\nOptions:\n(A) a1\n(B) b1"
                                            "\nThe answer is: (B)\n\nConsider the following conversation"));
  const std::vector<cai::prompts::feedback_example> shots{shot};
  CHECK(q == cai::prompts::feedback_question(tasks[0].pair, tasks[0].principle.comparison_question, shots));
}

TEST_CASE("choice_ranker refuses a principle without a comparison question", "[feedback][choice][errors]") {
  scripted_scorer model;
  cai::choice_ranker<scripted_scorer> ranker(model);
  P critique_only;
  critique_only.name = "only-critique";
  critique_only.critique_request = "Find the harm.";
  const std::vector<task_t> tasks{{feedback_test::lock_pair(), critique_only, 1}};
  CHECK_THROWS_AS(rank(ranker, tasks), cai::validation_error);
  CHECK_THROWS_WITH(rank(ranker, tasks), Catch::Matchers::ContainsSubstring("only-critique"));
}

TEST_CASE("one comparison principle is drawn per label from a seeded stream", "[feedback][labeling]") {
  const cai::constitution c = feedback_test::comparison_constitution();
  std::vector<cai::comparison> pairs(40, feedback_test::lock_pair());
  const auto all = cai::draw_ranking_tasks(std::span<const cai::comparison>(pairs), c, 7);
  REQUIRE(all.size() == 40);
  std::set<std::string> names;
  for (const auto& t : all) {
    CHECK(t.principle.has_comparison());
    names.insert(t.principle.name);
  }
  CHECK(names.size() == 4);  // every comparison principle, never the critique-only one
  // the draw depends on the position in the job, not on the batch
  const auto tail = cai::draw_ranking_tasks(std::span<const cai::comparison>(pairs).subspan(25), c, 7, 25);
  for (std::size_t i = 0; i < tail.size(); ++i) {
    CHECK(tail[i].principle == all[25 + i].principle);
    CHECK(tail[i].seed == all[25 + i].seed);
  }
  const auto other = cai::draw_ranking_tasks(std::span<const cai::comparison>(pairs), c, 8);
  std::size_t same = 0;
  for (std::size_t i = 0; i < other.size(); ++i) same += other[i].principle == all[i].principle;
  CHECK(same < 40);
}

TEST_CASE("label_preferences turns ranked tasks into AI preference records", "[feedback][labeling]") {
  scripted_scorer model;
  const auto pair = feedback_test::lock_pair();
  model.quality[pair.response_b] = std::log(3.0);
  cai::choice_ranker<scripted_scorer> ranker(model);
  const std::vector<task_t> tasks{{pair, feedback_test::harmless(), 1}};
  const auto prefs = cai::label_preferences(ranker, std::span<const task_t>(tasks));
  REQUIRE(prefs.size() == 1);
  CHECK(prefs[0].pair == pair);
  CHECK_THAT(prefs[0].p_a, WithinRel(0.25, 1e-12));
  CHECK(prefs[0].principle == "harmless");
  CHECK(prefs[0].source == cai::label_source::ai);
}
