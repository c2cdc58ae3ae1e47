// Tests of cai/train/sgd.hpp: SGD with heavy-ball and Nesterov momentum and L2 weight decay, checked
// step by step against PyTorch's torch.optim.SGD definition computed by hand. Every value below is a
// dyadic rational with few bits, so float and double arithmetic is exact and the checks use ==.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/train/sgd.hpp"

namespace {

// theta_0 and three gradients shared by the hand computations.
template <class T>
std::vector<T> theta_0() {
  return {T(1), T(-2), T(0.5)};
}
template <class T>
std::vector<T> gradient(int step) {
  switch (step) {
    case 1: return {T(0.5), T(0.25), T(-1)};
    case 2: return {T(1), T(-1), T(0.5)};
    default: return {T(0), T(0), T(0)};
  }
}

template <class T>
void run(const cai::sgd& opt, std::vector<T>& theta, int from, int to) {
  cai::sgd::state<std::vector<T>> s(opt, theta);
  for (int t = from; t <= to; ++t) s.update(theta, gradient<T>(t));
}

}  // namespace

TEST_CASE("sgd models the optimizer concept for float and double buffers", "[train][sgd]") {
  STATIC_REQUIRE(cai::optimizer<cai::sgd, std::vector<float>>);
  STATIC_REQUIRE(cai::optimizer<cai::sgd, std::vector<double>>);
  STATIC_REQUIRE(cai::optimizer<cai::sgd, std::span<float>>);
  STATIC_REQUIRE(cai::optimizer<cai::sgd, std::array<double, 4>>);
  STATIC_REQUIRE(cai::optimizer<cai::sgd, Eigen::VectorXf>);
  STATIC_REQUIRE(cai::optimizer<cai::sgd, Eigen::MatrixXd>);
}

TEST_CASE("sgd refuses parameters it cannot update in place", "[train][sgd]") {
  STATIC_REQUIRE_FALSE(cai::optimizer<cai::sgd, std::vector<int>>);
  STATIC_REQUIRE_FALSE(cai::optimizer<cai::sgd, std::span<const float>>);
  STATIC_REQUIRE_FALSE(cai::optimizer<cai::sgd, float>);
}

TEST_CASE("an sgd state cannot be bound to a temporary optimizer", "[train][sgd]") {
  using state = cai::sgd::state<std::vector<float>>;
  STATIC_REQUIRE(std::is_constructible_v<state, const cai::sgd&, const std::vector<float>&>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<state, cai::sgd&&, const std::vector<float>&>);
}

TEMPLATE_TEST_CASE("plain sgd subtracts the learning rate times the gradient", "[train][sgd]", float,
                   double) {
  using T = TestType;
  const cai::sgd opt{.learning_rate = 0.5f};
  auto theta = theta_0<T>();
  cai::sgd::state<std::vector<T>> s(opt, theta);
  s.update(theta, gradient<T>(1));
  // theta_1 = theta_0 - 0.5 * g_1
  REQUIRE(theta == std::vector<T>{T(0.75), T(-2.125), T(1)});
  s.update(theta, gradient<T>(2));
  REQUIRE(theta == std::vector<T>{T(0.25), T(-1.625), T(0.75)});
  REQUIRE(s.steps() == 2);
  REQUIRE(s.velocity().empty());
}

TEMPLATE_TEST_CASE("heavy-ball momentum starts its buffer at the first gradient", "[train][sgd]", float,
                   double) {
  using T = TestType;
  const cai::sgd opt{.learning_rate = 0.5f, .momentum = 0.5f};
  auto theta = theta_0<T>();
  cai::sgd::state<std::vector<T>> s(opt, theta);
  // b_1 = g_1; theta_1 = theta_0 - 0.5 * b_1
  s.update(theta, gradient<T>(1));
  REQUIRE(theta == std::vector<T>{T(0.75), T(-2.125), T(1)});
  REQUIRE(std::vector<T>(s.velocity().begin(), s.velocity().end()) == gradient<T>(1));
  // b_2 = 0.5 * b_1 + g_2 = (1.25 -0.875 0); theta_2 = theta_1 - 0.5 * b_2
  s.update(theta, gradient<T>(2));
  REQUIRE(theta == std::vector<T>{T(0.125), T(-1.6875), T(1)});
  // a zero gradient still moves: b_3 = 0.5 * b_2; theta_3 = theta_2 - 0.5 * b_3
  s.update(theta, gradient<T>(3));
  REQUIRE(theta == std::vector<T>{T(-0.1875), T(-1.46875), T(1)});
}

TEMPLATE_TEST_CASE("nesterov momentum looks ahead by the momentum times the buffer", "[train][sgd]",
                   float, double) {
  using T = TestType;
  const cai::sgd opt{.learning_rate = 0.5f, .momentum = 0.5f, .nesterov = true};
  auto theta = theta_0<T>();
  cai::sgd::state<std::vector<T>> s(opt, theta);
  // b_1 = g_1; d = g_1 + 0.5 * b_1 = (0.75 0.375 -1.5); theta_1 = theta_0 - 0.5 * d
  s.update(theta, gradient<T>(1));
  REQUIRE(theta == std::vector<T>{T(0.625), T(-2.1875), T(1.25)});
  // b_2 = 0.5 * b_1 + g_2 = (1.25 -0.875 0); d = g_2 + 0.5 * b_2 = (1.625 -1.4375 0.5)
  s.update(theta, gradient<T>(2));
  REQUIRE(theta == std::vector<T>{T(-0.1875), T(-1.46875), T(1)});
  s.update(theta, gradient<T>(3));
  REQUIRE(theta == std::vector<T>{T(-0.34375), T(-1.359375), T(1)});
}

TEMPLATE_TEST_CASE("weight decay adds the penalty times the parameter to the gradient", "[train][sgd]",
                   float, double) {
  using T = TestType;
  auto theta = theta_0<T>();
  // d = g_1 + 0.25 * theta_0 = (0.75 -0.25 -0.875); theta_1 = theta_0 - 0.5 * d
  run<T>(cai::sgd{.learning_rate = 0.5f, .weight_decay = 0.25f}, theta, 1, 1);
  REQUIRE(theta == std::vector<T>{T(0.625), T(-1.875), T(0.9375)});
}

TEMPLATE_TEST_CASE("dampening scales the gradient in the buffer after the first step", "[train][sgd]",
                   float, double) {
  using T = TestType;
  const cai::sgd opt{.learning_rate = 0.5f, .momentum = 0.5f, .weight_decay = 0.25f, .dampening = 0.5f};
  auto theta = theta_0<T>();
  cai::sgd::state<std::vector<T>> s(opt, theta);
  // step 1 ignores dampening: b_1 = d_1 = (0.75 -0.25 -0.875)
  s.update(theta, gradient<T>(1));
  REQUIRE(theta == std::vector<T>{T(0.625), T(-1.875), T(0.9375)});
  // d_2 = g_2 + 0.25 * theta_1 = (1.15625 -1.46875 0.734375); b_2 = 0.5 * b_1 + 0.5 * d_2
  s.update(theta, gradient<T>(2));
  REQUIRE(theta == std::vector<T>{T(0.1484375), T(-1.4453125), T(0.97265625)});
}

TEST_CASE("sgd reads the learning rate of its optimizer at every step", "[train][sgd]") {
  cai::sgd opt{.learning_rate = 0.5f};
  std::vector<float> theta{1.0f, -2.0f};
  cai::sgd::state<std::vector<float>> s(opt, theta);
  s.update(theta, {1.0f, 1.0f});
  REQUIRE(theta == std::vector<float>{0.5f, -2.5f});
  opt.learning_rate = 0.25f;  // a schedule's change takes effect at the next update
  s.update(theta, {1.0f, 1.0f});
  REQUIRE(theta == std::vector<float>{0.25f, -2.75f});
}

TEST_CASE("sgd updates spans and Eigen vectors in place", "[train][sgd]") {
  const cai::sgd opt{.learning_rate = 0.5f, .momentum = 0.5f};

  std::vector<float> storage{1.0f, -2.0f, 0.5f};
  std::vector<float> g1{0.5f, 0.25f, -1.0f};
  std::span<float> view(storage);
  cai::sgd::state<std::span<float>> span_state(opt, view);
  span_state.update(view, std::span<float>(g1));
  REQUIRE(storage == std::vector<float>{0.75f, -2.125f, 1.0f});

  Eigen::VectorXf theta(3);
  theta << 1.0f, -2.0f, 0.5f;
  Eigen::VectorXf g(3);
  g << 0.5f, 0.25f, -1.0f;
  cai::sgd::state<Eigen::VectorXf> eigen_state(opt, theta);
  eigen_state.update(theta, g);
  g << 1.0f, -1.0f, 0.5f;
  eigen_state.update(theta, g);
  REQUIRE(theta(0) == 0.125f);
  REQUIRE(theta(1) == -1.6875f);
  REQUIRE(theta(2) == 1.0f);
}

TEST_CASE("a gradient of another shape throws and leaves the parameter unchanged", "[train][sgd]") {
  const cai::sgd opt{.learning_rate = 0.5f, .momentum = 0.5f};
  std::vector<double> theta{1.0, 2.0, 3.0};
  cai::sgd::state<std::vector<double>> s(opt, theta);
  REQUIRE_THROWS_MATCHES(s.update(theta, {1.0, 2.0}), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the gradient has 2 elements but the parameter has 3")));
  REQUIRE(theta == std::vector<double>{1.0, 2.0, 3.0});
  REQUIRE(s.steps() == 0);
  REQUIRE(s.velocity().empty());

  std::vector<double> other{1.0, 2.0};
  REQUIRE_THROWS_AS(s.update(other, {1.0, 1.0}), cai::validation_error);
  REQUIRE(other == std::vector<double>{1.0, 2.0});
}

TEST_CASE("invalid hyper-parameters throw a config error that names the field", "[train][sgd]") {
  const std::vector<float> theta{1.0f};
  using state = cai::sgd::state<std::vector<float>>;
  auto message_of = [&](const cai::sgd& opt) -> std::string {
    try {
      state s(opt, theta);
    } catch (const cai::config_error& e) {
      return e.what();
    }
    return "no error";
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  using Catch::Matchers::ContainsSubstring;
  REQUIRE_THAT(message_of({.learning_rate = -0.1f}), ContainsSubstring("learning_rate = -0.1"));
  REQUIRE_THAT(message_of({.learning_rate = nan}), ContainsSubstring("learning_rate"));
  REQUIRE_THAT(message_of({.learning_rate = inf}), ContainsSubstring("learning_rate"));
  REQUIRE_THAT(message_of({.momentum = -0.5f}), ContainsSubstring("momentum = -0.5"));
  REQUIRE_THAT(message_of({.momentum = 1.0f}), ContainsSubstring("momentum = 1"));
  REQUIRE_THAT(message_of({.weight_decay = -1.0f}), ContainsSubstring("weight_decay = -1"));
  REQUIRE_THAT(message_of({.dampening = 1.5f}), ContainsSubstring("dampening = 1.5"));
  REQUIRE_THAT(message_of({.nesterov = true}), ContainsSubstring("Nesterov momentum needs momentum > 0"));
  REQUIRE_THAT(message_of({.momentum = 0.9f, .nesterov = true, .dampening = 0.1f}),
               ContainsSubstring("Nesterov momentum needs dampening = 0"));
  REQUIRE(message_of({.learning_rate = 0.0f, .momentum = 0.9f, .nesterov = true}) == "no error");
  REQUIRE(message_of({}) == "no error");
}

TEST_CASE("a hyper-parameter made invalid after construction throws at the next update", "[train][sgd]") {
  cai::sgd opt{.learning_rate = 0.5f};
  std::vector<float> theta{1.0f};
  cai::sgd::state<std::vector<float>> s(opt, theta);
  opt.learning_rate = -1.0f;
  REQUIRE_THROWS_AS(s.update(theta, {1.0f}), cai::config_error);
  REQUIRE(theta == std::vector<float>{1.0f});
}
