// Tests of cai/train/adamw.hpp: AdamW with decoupled weight decay and AMSGrad. The first step is checked
// exactly with dyadic values; later steps against a double-precision transcription of the formula, and
// ten steps against torch.optim.AdamW (tests/optim/make_fixtures.py wrote tests/data/optim/adamw.json).
// Tolerances: 1e-6 relative (norm of the difference over norm of the reference) for float, 1e-12 for
// double.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/train/adamw.hpp"
#include "optim/fixtures.hpp"

namespace {

/// AdamW transcribed from the file comment of adamw.hpp, in double, for one parameter.
struct reference_adamw {
  cai::adamw opt;
  std::vector<double> m, v, max_v;
  std::size_t t = 0;

  void update(std::vector<double>& theta, const std::vector<double>& g) {
    const std::size_t n = theta.size();
    if (m.empty()) m.assign(n, 0.0), v.assign(n, 0.0), max_v.assign(n, 0.0);
    ++t;
    const double lr = opt.learning_rate, b1 = opt.beta1, b2 = opt.beta2;
    for (std::size_t i = 0; i < n; ++i) {
      theta[i] *= 1.0 - lr * opt.weight_decay;
      m[i] = b1 * m[i] + (1.0 - b1) * g[i];
      v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
      max_v[i] = std::max(max_v[i], v[i]);
      const double v_hat = opt.amsgrad ? max_v[i] : v[i];
      const double denom = std::sqrt(v_hat) / std::sqrt(1.0 - std::pow(b2, double(t))) + opt.eps;
      theta[i] -= lr / (1.0 - std::pow(b1, double(t))) * m[i] / denom;
    }
  }
};

/// A deterministic gradient that changes with the step: a few scales and signs, some zeros.
template <class T>
std::vector<T> gradient(std::size_t n, std::size_t step) {
  std::vector<T> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double phase = double((i * 7 + step * 13) % 23) - 11.0;
    g[i] = (i + step) % 17 == 0 ? T(0) : static_cast<T>(phase * (step % 3 == 0 ? 0.1 : 1.5) / 11.0);
  }
  return g;
}

template <class T>
std::vector<T> initial(std::size_t n) {
  std::vector<T> theta(n);
  for (std::size_t i = 0; i < n; ++i) theta[i] = static_cast<T>(double((i * 5) % 19) / 9.5 - 1.0);
  return theta;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-12;
}

}  // namespace

TEST_CASE("adamw models the optimizer concept for float and double buffers", "[optim][adamw]") {
  STATIC_REQUIRE(cai::optimizer<cai::adamw, std::vector<float>>);
  STATIC_REQUIRE(cai::optimizer<cai::adamw, std::vector<double>>);
  STATIC_REQUIRE(cai::optimizer<cai::adamw, std::span<float>>);
  STATIC_REQUIRE(cai::optimizer<cai::adamw, std::array<double, 4>>);
  STATIC_REQUIRE(cai::optimizer<cai::adamw, Eigen::VectorXf>);
  STATIC_REQUIRE(cai::optimizer<cai::adamw, Eigen::MatrixXd>);
}

TEST_CASE("adamw refuses parameters it cannot update in place", "[optim][adamw]") {
  STATIC_REQUIRE_FALSE(cai::optimizer<cai::adamw, std::vector<int>>);
  STATIC_REQUIRE_FALSE(cai::optimizer<cai::adamw, std::span<const float>>);
  STATIC_REQUIRE_FALSE(cai::optimizer<cai::adamw, float>);
}

TEST_CASE("an adamw state cannot be bound to a temporary optimizer", "[optim][adamw]") {
  using state = cai::adamw::state<std::vector<float>>;
  STATIC_REQUIRE(std::is_constructible_v<state, const cai::adamw&, const std::vector<float>&>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<state, cai::adamw&&, const std::vector<float>&>);
}

TEST_CASE("the defaults of adamw are those of pytorch", "[optim][adamw]") {
  const cai::adamw opt;
  REQUIRE(opt.learning_rate == 1e-3f);
  REQUIRE(opt.beta1 == 0.9f);
  REQUIRE(opt.beta2 == 0.999f);
  REQUIRE(opt.eps == 1e-8f);
  REQUIRE(opt.weight_decay == 1e-2f);
  REQUIRE_FALSE(opt.amsgrad);
}

TEMPLATE_TEST_CASE("the first adamw step decays the parameter then moves it by the learning rate times the "
                   "gradient's sign",
                   "[optim][adamw]", float, double) {
  using T = TestType;
  // bias-corrected m_1 = g and sqrt(v_1) = |g|, so with eps = 0: theta_1 = theta_0 (1 - 0.25) - 0.5 sign(g)
  const cai::adamw opt{.learning_rate = 0.5f, .beta1 = 0.5f, .beta2 = 0.75f, .eps = 0.0f, .weight_decay = 0.5f};
  std::vector<T> theta{T(1), T(-2), T(0.5), T(4)};
  cai::adamw::state<std::vector<T>> s(opt, theta);
  REQUIRE(s.first_moment().empty());
  REQUIRE(s.second_moment().empty());
  s.update(theta, {T(0.5), T(0.25), T(-1), T(-8)});
  REQUIRE(theta == std::vector<T>{T(0.25), T(-2), T(0.875), T(3.5)});
  REQUIRE(std::vector<T>(s.first_moment().begin(), s.first_moment().end()) ==
          std::vector<T>{T(0.25), T(0.125), T(-0.5), T(-4)});
  REQUIRE(std::vector<T>(s.second_moment().begin(), s.second_moment().end()) ==
          std::vector<T>{T(0.0625), T(0.015625), T(0.25), T(16)});
  REQUIRE(s.max_second_moment().empty());
  REQUIRE(s.steps() == 1);
}

TEST_CASE("a zero gradient leaves only the decoupled weight decay", "[optim][adamw]") {
  const cai::adamw opt{.learning_rate = 0.5f, .weight_decay = 0.5f};
  std::vector<float> theta{1.0f, -2.0f, 0.0f};
  cai::adamw::state<std::vector<float>> s(opt, theta);
  s.update(theta, {0.0f, 0.0f, 0.0f});
  REQUIRE(theta == std::vector<float>{0.75f, -1.5f, 0.0f});
  s.update(theta, {0.0f, 0.0f, 0.0f});
  REQUIRE(theta == std::vector<float>{0.5625f, -1.125f, 0.0f});
}

TEMPLATE_TEST_CASE("adamw follows the formula step after step", "[optim][adamw]", float, double) {
  using T = TestType;
  // 1000 elements: three full blocks of 256 and a partial one
  const std::size_t n = 1000;
  for (const bool amsgrad : {false, true}) {
    for (const float beta1 : {0.9f, 0.3f}) {
      CAPTURE(amsgrad, beta1);
      const cai::adamw opt{.learning_rate = 0.01f, .beta1 = beta1, .beta2 = 0.99f, .eps = 1e-6f,
                           .weight_decay = 0.1f, .amsgrad = amsgrad};
      auto theta = initial<T>(n);
      std::vector<double> expected(theta.begin(), theta.end());
      cai::adamw::state<std::vector<T>> s(opt, theta);
      reference_adamw ref{opt, {}, {}, {}, 0};
      for (std::size_t step = 1; step <= 12; ++step) {
        const auto g = gradient<T>(n, step);
        s.update(theta, g);
        ref.update(expected, std::vector<double>(g.begin(), g.end()));
      }
      REQUIRE(s.steps() == 12);
      REQUIRE(optim_test::relative_error(std::span<const T>(theta), std::span<const double>(expected)) <
              tolerance<T>());
      REQUIRE(optim_test::relative_error(s.first_moment(), std::span<const double>(ref.m)) < tolerance<T>());
      REQUIRE(optim_test::relative_error(s.second_moment(), std::span<const double>(ref.v)) < tolerance<T>());
      if (amsgrad) {
        REQUIRE(optim_test::relative_error(s.max_second_moment(), std::span<const double>(ref.max_v)) <
                tolerance<T>());
      } else {
        REQUIRE(s.max_second_moment().empty());
      }
    }
  }
}

TEMPLATE_TEST_CASE("adamw matches torch.optim.AdamW after ten steps", "[optim][adamw][reference]", float,
                   double) {
  using T = TestType;
  const auto fixture = optim_test::read_fixture("adamw.json");
  if (fixture.is_null()) SKIP("no adamw.json in " + optim_test::fixture_dir().string());
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const auto theta0 = optim_test::as_vector<T>(fixture.at("theta0"));
  std::vector<std::vector<T>> gradients;
  for (const auto& g : fixture.at("gradients")) gradients.push_back(optim_test::as_vector<T>(g));
  REQUIRE(gradients.size() == fixture.at("steps").get<std::size_t>());
  int compared = 0;
  for (const auto& c : fixture.at("cases")) {
    if (c.at("dtype") != dtype) continue;
    ++compared;
    const cai::adamw opt{.learning_rate = c.at("lr").get<float>(),
                         .beta1 = c.at("beta1").get<float>(),
                         .beta2 = c.at("beta2").get<float>(),
                         .eps = c.at("eps").get<float>(),
                         .weight_decay = c.at("weight_decay").get<float>(),
                         .amsgrad = c.at("amsgrad").get<bool>()};
    auto theta = theta0;
    cai::adamw::state<std::vector<T>> s(opt, theta);
    for (const auto& g : gradients) s.update(theta, g);
    const auto expected = optim_test::as_vector<double>(c.at("theta"));
    const double error = optim_test::relative_error(std::span<const T>(theta), std::span<const double>(expected));
    const double m_error = optim_test::relative_error(s.first_moment(),
                                                      std::span<const double>(optim_test::as_vector<double>(c.at("exp_avg"))));
    const double v_error = optim_test::relative_error(
        s.second_moment(), std::span<const double>(optim_test::as_vector<double>(c.at("exp_avg_sq"))));
    INFO(c.at("name").get<std::string>() << " (" << dtype << "): relative error of theta " << error << ", m "
                                         << m_error << ", v " << v_error);
    CHECK(error < tolerance<T>());
    CHECK(m_error < tolerance<T>());
    CHECK(v_error < tolerance<T>());
    if (opt.amsgrad) {
      const double max_error = optim_test::relative_error(
          s.max_second_moment(), std::span<const double>(optim_test::as_vector<double>(c.at("max_exp_avg_sq"))));
      CHECK(max_error < tolerance<T>());
    }
    REQUIRE(s.steps() == gradients.size());
  }
  REQUIRE(compared > 0);
}

TEST_CASE("adamw gives the same bits on one thread and on two", "[optim][adamw][threads]") {
#if !defined(_OPENMP)
  SKIP("built without OpenMP");
#endif
  const std::size_t n = 100000;  // above the threshold at which the step is split over threads
  const cai::adamw opt{.learning_rate = 0.01f, .weight_decay = 0.1f, .amsgrad = true};
  auto run = [&] {
    auto theta = initial<float>(n);
    cai::adamw::state<std::vector<float>> s(opt, theta);
    for (std::size_t step = 1; step <= 3; ++step) s.update(theta, gradient<float>(n, step));
    return theta;
  };
  const auto one = optim_test::with_threads(1, run);
  const auto two = optim_test::with_threads(2, run);
  REQUIRE(one == two);
}

TEST_CASE("adamw reads the learning rate of its optimizer at every step", "[optim][adamw]") {
  cai::adamw opt{.learning_rate = 0.5f, .beta1 = 0.5f, .beta2 = 0.75f, .eps = 0.0f, .weight_decay = 0.0f};
  std::vector<float> theta{1.0f, -2.0f};
  cai::adamw::state<std::vector<float>> s(opt, theta);
  s.update(theta, {1.0f, 1.0f});
  REQUIRE(theta == std::vector<float>{0.5f, -2.5f});
  opt.learning_rate = 0.0f;  // a schedule's change takes effect at the next update
  s.update(theta, {1.0f, 1.0f});
  REQUIRE(theta == std::vector<float>{0.5f, -2.5f});
  REQUIRE(s.steps() == 2);
}

TEST_CASE("adamw updates spans and Eigen vectors in place", "[optim][adamw]") {
  const cai::adamw opt{.learning_rate = 0.5f, .beta1 = 0.5f, .beta2 = 0.75f, .eps = 0.0f, .weight_decay = 0.5f};

  std::vector<float> storage{1.0f, -2.0f, 0.5f};
  std::vector<float> g1{0.5f, 0.25f, -1.0f};
  std::span<float> view(storage);
  cai::adamw::state<std::span<float>> span_state(opt, view);
  span_state.update(view, std::span<float>(g1));
  REQUIRE(storage == std::vector<float>{0.25f, -2.0f, 0.875f});

  Eigen::VectorXd theta(3);
  theta << 1.0, -2.0, 0.5;
  Eigen::VectorXd g(3);
  g << 0.5, 0.25, -1.0;
  cai::adamw::state<Eigen::VectorXd> eigen_state(opt, theta);
  eigen_state.update(theta, g);
  REQUIRE(theta(0) == 0.25);
  REQUIRE(theta(1) == -2.0);
  REQUIRE(theta(2) == 0.875);
}

TEST_CASE("an adamw gradient of another shape throws and leaves the parameter unchanged", "[optim][adamw]") {
  const cai::adamw opt;
  std::vector<double> theta{1.0, 2.0, 3.0};
  cai::adamw::state<std::vector<double>> s(opt, theta);
  REQUIRE_THROWS_MATCHES(s.update(theta, {1.0, 2.0}), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the gradient has 2 elements but the parameter has 3")));
  REQUIRE(theta == std::vector<double>{1.0, 2.0, 3.0});
  REQUIRE(s.steps() == 0);
  REQUIRE(s.first_moment().empty());

  std::vector<double> other{1.0, 2.0};
  REQUIRE_THROWS_MATCHES(s.update(other, {1.0, 1.0}), cai::validation_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(
                             "the parameter has 2 elements but this state was created for 3")));
  REQUIRE(other == std::vector<double>{1.0, 2.0});
}

TEST_CASE("invalid adamw hyper-parameters throw a config error that names the field", "[optim][adamw]") {
  const std::vector<float> theta{1.0f};
  using state = cai::adamw::state<std::vector<float>>;
  auto message_of = [&](const cai::adamw& opt) -> std::string {
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
  REQUIRE_THAT(message_of({.beta1 = 1.0f}), ContainsSubstring("beta1 = 1 is invalid: it must be in [0, 1)"));
  REQUIRE_THAT(message_of({.beta1 = -0.5f}), ContainsSubstring("beta1 = -0.5"));
  REQUIRE_THAT(message_of({.beta2 = 1.5f}), ContainsSubstring("beta2 = 1.5"));
  REQUIRE_THAT(message_of({.eps = -1e-8f}), ContainsSubstring("eps = -1e-08"));
  REQUIRE_THAT(message_of({.weight_decay = -1.0f}), ContainsSubstring("weight_decay = -1"));
  REQUIRE_THAT(message_of({.weight_decay = nan}), ContainsSubstring("weight_decay"));
  REQUIRE(message_of({.learning_rate = 0.0f, .beta1 = 0.0f, .beta2 = 0.0f, .eps = 0.0f, .weight_decay = 0.0f}) ==
          "no error");
  REQUIRE(message_of({}) == "no error");
}

TEST_CASE("an adamw hyper-parameter made invalid after construction throws at the next update",
          "[optim][adamw]") {
  cai::adamw opt;
  std::vector<float> theta{1.0f};
  cai::adamw::state<std::vector<float>> s(opt, theta);
  opt.beta2 = 1.0f;
  REQUIRE_THROWS_AS(s.update(theta, {1.0f}), cai::config_error);
  REQUIRE(theta == std::vector<float>{1.0f});
  REQUIRE(s.steps() == 0);
}
