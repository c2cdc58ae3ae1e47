// cai::sgd (cai/train/sgd.hpp) against torch.optim.SGD: ten steps of plain SGD, heavy-ball and Nesterov
// momentum, dampening and weight decay from the inputs of tests/data/optim/sgd.json (written by
// tests/optim/make_fixtures.py). Tolerances: 1e-6 relative (norm of the difference over norm of the
// reference) for float, 1e-12 for double.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>

#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cai/train/sgd.hpp"
#include "optim/fixtures.hpp"

TEMPLATE_TEST_CASE("sgd matches torch.optim.SGD after ten steps", "[optim][sgd][reference]", float, double) {
  using T = TestType;
  const double tolerance = std::is_same_v<T, float> ? 1e-6 : 1e-12;
  const auto fixture = optim_test::read_fixture("sgd.json");
  if (fixture.is_null()) SKIP("no sgd.json in " + optim_test::fixture_dir().string());
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const auto theta0 = optim_test::as_vector<T>(fixture.at("theta0"));
  std::vector<std::vector<T>> gradients;
  for (const auto& g : fixture.at("gradients")) gradients.push_back(optim_test::as_vector<T>(g));
  int compared = 0;
  for (const auto& c : fixture.at("cases")) {
    if (c.at("dtype") != dtype) continue;
    ++compared;
    const cai::sgd opt{.learning_rate = c.at("lr").get<float>(),
                       .momentum = c.at("momentum").get<float>(),
                       .nesterov = c.at("nesterov").get<bool>(),
                       .weight_decay = c.at("weight_decay").get<float>(),
                       .dampening = c.at("dampening").get<float>()};
    auto theta = theta0;
    cai::sgd::state<std::vector<T>> s(opt, theta);
    for (const auto& g : gradients) s.update(theta, g);
    const auto expected = optim_test::as_vector<double>(c.at("theta"));
    const double error = optim_test::relative_error(std::span<const T>(theta), std::span<const double>(expected));
    const auto buffer = optim_test::as_vector<double>(c.at("momentum_buffer"));
    INFO(c.at("name").get<std::string>() << " (" << dtype << "): relative error of theta " << error);
    CHECK(error < tolerance);
    REQUIRE(s.velocity().size() == buffer.size());
    if (!buffer.empty()) CHECK(optim_test::relative_error(s.velocity(), std::span<const double>(buffer)) < tolerance);
  }
  REQUIRE(compared > 0);
}
