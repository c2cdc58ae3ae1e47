// Shared helpers of the tests of cai/train/losses*.hpp: the PyTorch fixtures (tests/data/losses/*.json,
// written by tests/losses/make_fixtures.py; $CAI_LOSSES_FIXTURES points elsewhere, as the live check of
// tests/losses/live.cmake does), relative errors, and central finite differences in double.
//
// Tolerances: against the fixtures (computed by torch in float64 from float32-exact inputs) the float
// kernels agree within 1e-5 and the double kernels within 1e-12, as the relative error
// ||got − want||₂ / ||want||₂ of each output tensor (|got − want| / |want| for a scalar). Finite
// differences: the analytic gradient of a double kernel agrees with central differences (step 1e-6) within
// 1e-6, in the same norm-relative measure.
#pragma once

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/random.hpp"

namespace losses_test {

using json = nlohmann::json;
using vec = std::vector<double>;

/// The folder of the fixtures: $CAI_LOSSES_FIXTURES when set, else the committed tests/data/losses.
inline std::filesystem::path fixture_dir() {
  if (const char* env = std::getenv("CAI_LOSSES_FIXTURES"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(CAI_TEST_DATA_DIR) / "losses";
}

/// The cases of fixture <name>.json.
inline json load_cases(const std::string& name) {
  const auto path = fixture_dir() / (name + ".json");
  std::ifstream in(path);
  INFO("fixture " << path.string() << " (regenerate with tests/losses/make_fixtures.py)");
  REQUIRE(in.good());
  const json data = json::parse(in);
  REQUIRE(data.contains("cases"));
  REQUIRE(!data["cases"].empty());
  return data["cases"];
}

/// A JSON list of numbers as a vector of T (exact: the fixtures' inputs are float32 values).
template <class T>
std::vector<T> values(const json& list) {
  std::vector<T> out;
  out.reserve(list.size());
  for (const auto& x : list) out.push_back(static_cast<T>(x.get<double>()));
  return out;
}

inline std::vector<std::int32_t> ints(const json& list) {
  std::vector<std::int32_t> out;
  for (const auto& x : list) out.push_back(x.get<std::int32_t>());
  return out;
}

/// ||got − want||₂ / ||want||₂ (the absolute norm when want is zero).
template <class T>
double relative_error(const std::vector<T>& got, const vec& want) {
  REQUIRE(got.size() == want.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    norm += want[i] * want[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

inline double relative_error(double got, double want) {
  return want != 0 ? std::abs(got - want) / std::abs(want) : std::abs(got);
}

/// The fixture tolerance for T.
template <class T>
constexpr double tolerance() {
  return sizeof(T) < sizeof(double) ? 1e-5 : 1e-12;
}

/// Checks one output against the fixture and prints the relative error (the report quotes these lines).
template <class T, class Got>
void check_fixture(const std::string& what, const Got& got, const json& want) {
  double err = 0;
  if constexpr (std::is_arithmetic_v<Got>)
    err = relative_error(static_cast<double>(got), want.get<double>());
  else
    err = relative_error(got, values<double>(want));
  std::cout << "losses fixture " << what << " (" << (sizeof(T) < sizeof(double) ? "float" : "double")
            << "): relative error " << err << "\n";
  INFO(what << ": relative error " << err);
  CHECK(err < tolerance<T>());
}

/// n values uniform in [lo, hi), from a fixed seed.
inline vec random_vec(std::size_t n, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  cai::rng g(seed);
  vec v(n);
  for (auto& x : v) x = lo + (hi - lo) * g.uniform_real();
  return v;
}

/// Central differences of the scalar `objective` with respect to every element of x, compared with
/// `analytic` in the norm-relative measure (< 1e-6).
inline void check_gradient(const std::function<double()>& objective, vec& x, const vec& analytic,
                           double tol = 1e-6) {
  REQUIRE(analytic.size() == x.size());
  const double h = 1e-6;
  vec numeric(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = objective();
    x[i] = keep - h;
    const double down = objective();
    x[i] = keep;
    numeric[i] = (up - down) / (2 * h);
  }
  const double err = relative_error(analytic, numeric);
  std::cout << "losses finite differences: relative error " << err << "\n";
  INFO("finite-difference relative error " << err);
  CHECK(err < tol);
}

/// Σ w_i v_i, the scalar whose gradient a vector-valued forward is checked through.
inline double dot(const vec& w, const vec& v) {
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) s += w[i] * v[i];
  return s;
}

}  // namespace losses_test
