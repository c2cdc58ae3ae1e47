// Tests of cai/concepts.hpp for the shipped tags and defaults, and of the building blocks the concepts
// are made of: each sub-concept accepts a type that has its member and rejects one that lacks it.
#include <catch2/catch_test_macros.hpp>

#include <span>
#include <string>
#include <vector>

#include "cai/backend/tags.hpp"
#include "cai/concepts.hpp"
#include "cai/config.hpp"
#include "cai/constitution/constitution.hpp"

namespace {
struct generates_only {
  std::vector<std::string> generate(std::span<const cai::generation_request>);
};
struct generates_and_scores : generates_only {
  std::vector<double> score(std::span<const cai::scoring_request>);
};
struct wrong_return {
  std::string generate(std::span<const cai::generation_request>);
};
struct half_principle {
  std::string name, critique_request, revision_request;  // no comparison_question
};
struct not_a_tag {
  int state = 0;
  static constexpr std::string_view name = "x";
  template <class T>
  using storage = std::vector<T>;
};
}  // namespace

TEST_CASE("the cpu tag models backend and is the default backend", "[core][concepts]") {
  STATIC_REQUIRE(cai::backend<cai::cpu_t>);
  STATIC_REQUIRE(std::is_same_v<CAI_DEFAULT_BACKEND, cai::cpu_t>);
  STATIC_REQUIRE(cai::cpu_t::name == "cpu");
  STATIC_REQUIRE_FALSE(cai::backend<not_a_tag>);  // a backend is an empty tag
}

TEST_CASE("language_model and scoring_model accept exactly the types with their members", "[core][concepts]") {
  STATIC_REQUIRE(cai::language_model<generates_only>);
  STATIC_REQUIRE_FALSE(cai::scoring_model<generates_only>);
  STATIC_REQUIRE(cai::scoring_model<generates_and_scores>);
  STATIC_REQUIRE_FALSE(cai::language_model<wrong_return>);
  STATIC_REQUIRE_FALSE(cai::language_model<int>);
}

TEST_CASE("principle needs all four texts and principle_set needs a draw", "[core][concepts]") {
  STATIC_REQUIRE(cai::principle<cai::constitutional_principle>);
  STATIC_REQUIRE_FALSE(cai::principle<half_principle>);
  STATIC_REQUIRE(cai::has_critique_pair<half_principle>);
  STATIC_REQUIRE(cai::principle_set<cai::constitution>);
  STATIC_REQUIRE_FALSE(cai::principle_set<std::vector<cai::constitutional_principle>>);
  STATIC_REQUIRE(std::is_same_v<cai::principle_of<cai::constitution>, cai::constitutional_principle>);
}

TEST_CASE("the configured defaults have the paper's values", "[core][config]") {
  STATIC_REQUIRE(CAI_DEFAULT_REVISION_ROUNDS == 4);  // the paper revises four times in sequence
  STATIC_REQUIRE(CAI_DEFAULT_BATCH_SIZE > 0);
  cai::generation_options o;
  CHECK(o.max_new_tokens == CAI_DEFAULT_MAX_NEW_TOKENS);
  CHECK(o.top_k == 0);
  CHECK(o.top_p == 1.0);
}
