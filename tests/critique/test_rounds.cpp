// Tests of cai/critique/rounds.hpp: multi_turn<Critic, N> and until_satisfied<Critic, Judge, MaxRounds>.
#include <catch2/catch_test_macros.hpp>

#include <string>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/critique/critic.hpp"
#include "cai/critique/judge.hpp"
#include "cai/critique/rounds.hpp"
#include "scripted_model.hpp"

using cai_test::scripted_model;

namespace {
cai::constitution five_principles() { return cai_test::numbered_constitution(5); }
std::vector<cai::exchange> starts(int n) {
  std::vector<cai::exchange> v;
  for (int i = 0; i < n; ++i) v.push_back({cai::user_turn("prompt " + std::to_string(i)), "Sure! answer"});
  return v;
}
}  // namespace

TEST_CASE("multi_turn runs N rounds with a principle drawn per round and keeps them all", "[critique][rounds]") {
  scripted_model model;
  cai::multi_turn<cai::self_critic<scripted_model>, 4> reviser{cai::self_critic<scripted_model>(model)};
  const auto c = five_principles();
  auto xs = starts(3);
  std::vector<std::uint64_t> seeds{11, 12, 13};
  auto rounds = reviser.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(seeds), c);
  REQUIRE(rounds.size() == 3);
  for (const auto& r : rounds) REQUIRE(r.size() == 4);
  // Round k of record i draws from rng(derive_seed(seed_i, {k})), and nothing else.
  for (std::size_t i = 0; i < 3; ++i)
    for (unsigned k = 0; k < 4; ++k) {
      cai::rng g(cai::derive_seed(seeds[i], {k}));
      CHECK(rounds[i][k].principle == c.draw_critique(g).name);
    }
  // Each round revises the previous round's revision: round 2's critique prompt holds round 1's revision.
  REQUIRE(model.seen.size() == 3 * 4 * 2);
  const std::string& round2_critique_prompt = model.seen[3 * 2].prompt;  // round index 1, record 0
  CHECK(round2_critique_prompt.find("\n\nAssistant: " + rounds[0][0].revision + "\n\nCritiqueRequest:") !=
        std::string::npos);
}

TEST_CASE("multi_turn draws do not depend on the batch a record is in", "[critique][rounds]") {
  const auto c = five_principles();
  scripted_model m1, m2;
  cai::multi_turn<cai::self_critic<scripted_model>, 3> a{cai::self_critic<scripted_model>(m1)};
  cai::multi_turn<cai::self_critic<scripted_model>, 3> b{cai::self_critic<scripted_model>(m2)};
  auto xs = starts(3);
  std::vector<std::uint64_t> seeds{21, 22, 23};
  auto together = a.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(seeds), c);
  for (std::size_t i = 0; i < 3; ++i) {
    auto alone = b.revise(std::span<const cai::exchange>(xs).subspan(i, 1),
                          std::span<const std::uint64_t>(seeds).subspan(i, 1), c);
    CHECK(alone[0] == together[i]);
  }
}

TEST_CASE("until_satisfied stops when the judge finds no violation", "[critique][rounds]") {
  scripted_model model;
  // The scripted revision is "I won't help with that; here is a safer idea." which the judge accepts.
  cai::until_satisfied<cai::self_critic<scripted_model>, cai::keyword_judge, 4> reviser{
      cai::self_critic<scripted_model>(model), cai::keyword_judge({"sure!"})};
  const auto c = five_principles();
  std::vector<cai::exchange> xs{{cai::user_turn("a"), "Sure! here"}, {cai::user_turn("b"), "No thanks."}};
  std::vector<std::uint64_t> seeds{1, 2};
  auto rounds = reviser.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(seeds), c);
  CHECK(rounds[0].size() == 1);
  CHECK(rounds[1].empty());
  CHECK(reviser.satisfied() == std::vector<bool>{true, true});
}

TEST_CASE("until_satisfied revises against a violated principle and stops at MaxRounds", "[critique][rounds]") {
  scripted_model model;
  // Every response violates p3 only ("safer" appears in each revision), so every round must pick p3.
  cai::keyword_judge judge;
  judge.add("p3", {"safer", "sure!"});
  cai::until_satisfied<cai::self_critic<scripted_model>, cai::keyword_judge, 3> reviser{
      cai::self_critic<scripted_model>(model), judge};
  const auto c = five_principles();
  std::vector<cai::exchange> xs{{cai::user_turn("a"), "Sure! here"}};
  std::vector<std::uint64_t> seeds{9};
  auto rounds = reviser.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(seeds), c);
  REQUIRE(rounds[0].size() == 3);
  for (const auto& step : rounds[0]) CHECK(step.principle == "p3");
  CHECK(reviser.satisfied() == std::vector<bool>{false});
}

TEST_CASE("revisers reject mismatched seeds and empty constitutions", "[critique][rounds]") {
  scripted_model model;
  cai::multi_turn<cai::self_critic<scripted_model>, 1> reviser{cai::self_critic<scripted_model>(model)};
  auto xs = starts(2);
  std::vector<std::uint64_t> one_seed{1};
  CHECK_THROWS_AS(reviser.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(one_seed),
                                 five_principles()),
                  cai::config_error);
  cai::constitution empty;
  std::vector<std::uint64_t> seeds{1, 2};
  CHECK_THROWS_AS(
      reviser.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(seeds), empty),
      cai::validation_error);
}
