// fwd.hpp declares what the headers define: including both must agree (kinds, template parameters).
#include "cai/fwd.hpp"
#include "cai/cai.hpp"

#include <catch2/catch_test_macros.hpp>

TEST_CASE("the forward declarations agree with the definitions", "[core][fwd]") {
  STATIC_REQUIRE(sizeof(cai::rng) > 0);
  STATIC_REQUIRE(sizeof(cai::constitution) > 0);
  STATIC_REQUIRE(sizeof(cai::keyword_judge) > 0);
  STATIC_REQUIRE(sizeof(cai::sgd) > 0);
  STATIC_REQUIRE(cai::multi_turn<cai::keyword_judge, 2>::max_rounds == 2);
}
