// Tests of cai/model/xtensor.hpp: xtensor in and out of the transformer, without copies of the logits.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <cmath>

#include "cai/model/xtensor.hpp"

TEST_CASE("xtensor batches go in and logits come out as views of the model's buffer", "[model][xtensor]") {
  cai::transformer<cai::cpu_t, float> model(cai::transformer_config::gpt2(13, 8, 8, 1, 2));
  model.init_random(2);
  cai::token_batch ids = {{1, 2, 3}, {4, 5, 6}};
  const auto logits = cai::forward(model, ids);
  REQUIRE(logits.shape()[0] == 2);
  REQUIRE(logits.shape()[1] == 3);
  REQUIRE(logits.shape()[2] == 13);
  const std::vector<std::int32_t> flat{1, 2, 3, 4, 5, 6};
  const auto span = model.forward(flat, 2, 3);
  CHECK(logits.data() == span.data());  // a view, not a copy
  CHECK(logits(1, 2, 7) == span[(1 * 3 + 2) * 13 + 7]);

  const auto lp = cai::log_probabilities(model, ids);
  double total = 0;
  for (std::size_t v = 0; v < 13; ++v) total += std::exp(static_cast<double>(lp(0, 1, v)));
  CHECK_THAT(total, Catch::Matchers::WithinAbs(1.0, 1e-5));

  cai::token_batch targets = {{2, 3, -1}, {5, 6, 7}};
  const float loss = cai::forward_loss(model, ids, targets);
  double expected = 0;
  int counted = 0;
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t t = 0; t < 3; ++t)
      if (targets(b, t) >= 0) {
        expected -= lp(b, t, static_cast<std::size_t>(targets(b, t)));
        ++counted;
      }
  CHECK_THAT(loss, Catch::Matchers::WithinAbs(expected / counted, 1e-5));
  cai::token_batch wrong = {{1, 2}};
  CHECK_THROWS_AS(cai::forward_loss(model, ids, wrong), cai::config_error);
}
