// Helpers of the tests/optim tests: where the PyTorch fixtures are (tests/data/optim, or
// $CAI_OPTIM_FIXTURES when set: the live check of tests/optim/live.cmake regenerates them there), how to
// read them, and the relative error that the comparisons use.
#pragma once

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace optim_test {

inline std::filesystem::path fixture_dir() {
  if (const char* env = std::getenv("CAI_OPTIM_FIXTURES"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(CAI_TEST_DATA_DIR) / "optim";
}

/// The fixture `name` (adamw.json, sgd.json, schedules.json), parsed; null when the file is missing.
inline nlohmann::json read_fixture(const std::string& name) {
  const auto path = fixture_dir() / name;
  std::ifstream in(path);
  if (!in) return nullptr;
  return nlohmann::json::parse(in);
}

template <class T>
std::vector<T> as_vector(const nlohmann::json& values) {
  std::vector<T> out;
  out.reserve(values.size());
  for (const auto& v : values) out.push_back(static_cast<T>(v.get<double>()));
  return out;
}

/// ‖a − b‖ / ‖b‖ in double (0 when both are empty or zero).
template <class A, class B>
double relative_error(std::span<const A> a, std::span<const B> b) {
  REQUIRE(a.size() == b.size());
  double diff = 0.0, ref = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    diff += d * d;
    ref += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  if (ref == 0.0) return std::sqrt(diff);
  return std::sqrt(diff / ref);
}

/// Runs f() on `threads` OpenMP threads (or as it is without OpenMP) and returns its result.
template <class F>
auto with_threads(int threads, F f) {
#if defined(_OPENMP)
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto r = f();
  omp_set_num_threads(before);
  return r;
#else
  (void)threads;
  return f();
#endif
}

}  // namespace optim_test
