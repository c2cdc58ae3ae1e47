// Tests of cai/train/clip.hpp: the global L2 norm of a flat gradient and clipping it with the semantics
// of torch.nn.utils.clip_grad_norm_ (scale by max_norm / (norm + 1e-6) when that is below 1), except that
// a non-finite gradient is left untouched. Values are dyadic where the result is checked with ==.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "cai/error.hpp"
#include "cai/train/clip.hpp"
#include "optim/fixtures.hpp"

TEMPLATE_TEST_CASE("global norm is the square root of the sum of squares", "[optim][clip]", float, double) {
  using T = TestType;
  const std::vector<T> g{T(3), T(-4)};
  REQUIRE(cai::global_norm(std::span<const T>(g)) == 5.0);
  std::vector<T> writable{T(3), T(-4)};
  REQUIRE(cai::global_norm(std::span(writable)) == 5.0);
  const std::vector<T> empty;
  REQUIRE(cai::global_norm(std::span<const T>(empty)) == 0.0);
  const std::vector<T> odd{T(1), T(1), T(1), T(1), T(1), T(1), T(1), T(1), T(1)};  // a partial lane group
  REQUIRE(cai::global_norm(std::span<const T>(odd)) == 3.0);
}

TEST_CASE("global norm is accumulated in double", "[optim][clip]") {
  // 1e20 squared overflows float, and 1 + 1e-8 is lost in a float sum
  const std::vector<float> big{1e20f, 1e20f};
  REQUIRE(cai::global_norm(std::span<const float>(big)) == std::sqrt(2.0 * double(1e20f) * double(1e20f)));
  std::vector<float> many(100000, 1e-4f);
  many[0] = 1.0f;
  const double expected = std::sqrt(1.0 + 99999.0 * double(1e-4f) * double(1e-4f));
  REQUIRE(std::abs(cai::global_norm(std::span<const float>(many)) - expected) < 1e-15);
}

TEST_CASE("global norm gives the same bits on one thread and on two", "[optim][clip][threads]") {
#if !defined(_OPENMP)
  SKIP("built without OpenMP");
#endif
  std::vector<float> g(300001);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = float((i * 7919) % 1013) / 1013.0f - 0.5f;
  const double one = optim_test::with_threads(1, [&] { return cai::global_norm(std::span<const float>(g)); });
  const double two = optim_test::with_threads(2, [&] { return cai::global_norm(std::span<const float>(g)); });
  REQUIRE(one == two);
}

TEMPLATE_TEST_CASE("clip grad norm scales a gradient above the maximum like pytorch", "[optim][clip]", float,
                   double) {
  using T = TestType;
  std::vector<T> g{T(3), T(-4)};
  const double norm = cai::clip_grad_norm(std::span<T>(g), 1.0);
  REQUIRE(norm == 5.0);
  const auto k = static_cast<T>(1.0 / (5.0 + 1e-6));
  REQUIRE(g == std::vector<T>{T(3) * k, T(-4) * k});
  REQUIRE(cai::global_norm(std::span<const T>(g)) < 1.0);
  REQUIRE(cai::global_norm(std::span<const T>(g)) > 1.0 - 1e-6);
}

TEST_CASE("clip grad norm leaves a gradient below the maximum unchanged", "[optim][clip]") {
  std::vector<float> g{3.0f, -4.0f};
  REQUIRE(cai::clip_grad_norm(std::span<float>(g), 5.5) == 5.0);
  REQUIRE(g == std::vector<float>{3.0f, -4.0f});
  REQUIRE(cai::clip_grad_norm(std::span<float>(g), std::numeric_limits<double>::infinity()) == 5.0);
  REQUIRE(g == std::vector<float>{3.0f, -4.0f});
  std::vector<float> empty;
  REQUIRE(cai::clip_grad_norm(std::span<float>(empty), 1.0) == 0.0);
}

TEST_CASE("clip grad norm scales a norm within 1e-6 below the maximum as pytorch does", "[optim][clip]") {
  // pytorch's factor max_norm / (norm + 1e-6) is below 1 as soon as norm > max_norm - 1e-6
  std::vector<double> g{3.0, -4.0};
  REQUIRE(cai::clip_grad_norm(std::span<double>(g), 5.0) == 5.0);
  REQUIRE(g[0] == 3.0 * (5.0 / (5.0 + 1e-6)));
  REQUIRE(g[0] < 3.0);
}

TEST_CASE("a max norm of zero zeroes the gradient", "[optim][clip]") {
  std::vector<float> g{3.0f, -4.0f};
  REQUIRE(cai::clip_grad_norm(std::span<float>(g), 0.0) == 5.0);
  REQUIRE(g[0] == 0.0f);
  REQUIRE(g[1] == 0.0f);
}

TEMPLATE_TEST_CASE("a gradient with nan or inf returns a non-finite norm and is not modified", "[optim][clip]",
                   float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> with_nan{T(3), nan, T(-4)};
  REQUIRE(std::isnan(cai::clip_grad_norm(std::span<T>(with_nan), 1.0)));
  REQUIRE(with_nan[0] == T(3));
  REQUIRE(with_nan[2] == T(-4));
  std::vector<T> with_inf{T(3), -inf, T(-4)};
  const double norm = cai::clip_grad_norm(std::span<T>(with_inf), 1.0);
  REQUIRE(std::isinf(norm));
  REQUIRE(with_inf == std::vector<T>{T(3), -inf, T(-4)});
}

TEST_CASE("a negative or nan max norm throws a config error", "[optim][clip]") {
  std::vector<float> g{3.0f, -4.0f};
  REQUIRE_THROWS_MATCHES(cai::clip_grad_norm(std::span<float>(g), -1.0), cai::config_error,
                         Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring("max_norm = -1")));
  REQUIRE_THROWS_AS(cai::clip_grad_norm(std::span<float>(g), std::nan("")), cai::config_error);
  REQUIRE(g == std::vector<float>{3.0f, -4.0f});
}

TEST_CASE("clip grad norm scales a large gradient on every thread alike", "[optim][clip][threads]") {
  std::vector<float> g(100000);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = float(i % 7) - 3.0f;
  auto run = [&] {
    auto copy = g;
    cai::clip_grad_norm(std::span<float>(copy), 1.0);
    return copy;
  };
  const auto one = optim_test::with_threads(1, run);
  const auto two = optim_test::with_threads(2, run);
  REQUIRE(one == two);
  REQUIRE(std::abs(cai::global_norm(std::span<const float>(one)) - 1.0) < 1e-5);
}
