// Tests of cai/train/losses/token.hpp: per-token target log-probabilities and softmax entropies, against
// finite differences (double), the PyTorch fixtures token_logprob.json and token_entropy.json (float and
// double; tolerances in support.hpp) and their defining properties.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/train/losses.hpp"
#include "losses/support.hpp"

using namespace losses_test;
using Catch::Matchers::WithinAbs;

TEST_CASE("token log-probability backward matches finite differences", "[losses][token]") {
  const std::size_t N = 5, V = 6;
  vec logits = random_vec(N * V, 1, -3.0, 3.0);
  const vec w = random_vec(N, 2);
  const std::vector<std::int32_t> targets = {3, -1, 0, 5, -100};
  auto objective = [&] {
    vec logp(N), lse(N);
    cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
    return dot(w, logp);
  };
  vec logp(N), lse(N), dlogits(N * V, 0.0);
  cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
  cai::token_logprob_backward(cai::cpu, dlogits.data(), w.data(), logits.data(), lse.data(), targets.data(), N, V);
  check_gradient(objective, logits, dlogits);
  for (std::size_t v = 0; v < V; ++v) {  // masked rows are untouched
    CHECK(dlogits[1 * V + v] == 0.0);
    CHECK(dlogits[4 * V + v] == 0.0);
  }
  CHECK(logp[1] == 0.0);
  CHECK(logp[4] == 0.0);
}

TEMPLATE_TEST_CASE("token log-probabilities match the PyTorch fixture", "[losses][token][reference]", float, double) {
  for (const auto& c : load_cases("token_logprob")) {
    const std::size_t N = c["N"], V = c["V"];
    const auto logits = values<TestType>(c["logits"]);
    const auto targets = ints(c["targets"]);
    const auto dlogp = values<TestType>(c["dlogp"]);
    std::vector<TestType> logp(N), lse(N), dlogits(N * V, TestType(0));
    cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
    cai::token_logprob_backward(cai::cpu, dlogits.data(), dlogp.data(), logits.data(), lse.data(), targets.data(), N,
                                V);
    check_fixture<TestType>("token_logprob logp", logp, c["logp"]);
    check_fixture<TestType>("token_logprob lse", lse, c["lse"]);
    check_fixture<TestType>("token_logprob dlogits", dlogits, c["dlogits"]);
  }
}

TEST_CASE("token log-probabilities are minus the backend cross-entropy", "[losses][token]") {
  const std::size_t N = 4, V = 9;
  const vec logits = random_vec(N * V, 3, -4.0, 4.0);
  const std::vector<std::int32_t> targets = {0, 8, -1, 4};
  vec logp(N), lse(N), ce(N), lse_ce(N);
  cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
  cai::crossentropy_forward(cai::cpu, ce.data(), lse_ce.data(), logits.data(), targets.data(), N, V);
  for (std::size_t n = 0; n < N; ++n) {
    CHECK_THAT(logp[n], WithinAbs(-ce[n], 1e-14));
    CHECK_THAT(lse[n], WithinAbs(lse_ce[n], 1e-14));
  }
}

TEST_CASE("token log-probabilities reject a target outside the vocabulary", "[losses][token][errors]") {
  const std::size_t N = 2, V = 3;
  const vec logits(N * V, 0.0);
  const std::vector<std::int32_t> targets = {1, 3};
  vec logp(N), lse(N);
  CHECK_THROWS_AS(cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V),
                  cai::validation_error);
  try {
    cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
  } catch (const cai::error& e) {
    const std::string what = e.what();
    CHECK(what.find("token_logprob_forward") != std::string::npos);
    CHECK(what.find("target 3 at row 1") != std::string::npos);
  }
}

TEST_CASE("token entropy backward matches finite differences", "[losses][token][entropy]") {
  const std::size_t N = 4, V = 7;
  vec logits = random_vec(N * V, 4, -3.0, 3.0);
  const vec w = random_vec(N, 5);
  auto objective = [&] {
    vec entropy(N);
    cai::token_entropy_forward(cai::cpu, entropy.data(), logits.data(), N, V);
    return dot(w, entropy);
  };
  vec dlogits(N * V, 0.0);
  cai::token_entropy_backward(cai::cpu, dlogits.data(), w.data(), logits.data(), N, V);
  check_gradient(objective, logits, dlogits);
}

TEMPLATE_TEST_CASE("token entropy matches the PyTorch fixture", "[losses][token][entropy][reference]", float, double) {
  for (const auto& c : load_cases("token_entropy")) {
    const std::size_t N = c["N"], V = c["V"];
    const auto logits = values<TestType>(c["logits"]);
    const auto dentropy = values<TestType>(c["dentropy"]);
    std::vector<TestType> entropy(N), dlogits(N * V, TestType(0));
    cai::token_entropy_forward(cai::cpu, entropy.data(), logits.data(), N, V);
    cai::token_entropy_backward(cai::cpu, dlogits.data(), dentropy.data(), logits.data(), N, V);
    check_fixture<TestType>("token_entropy entropy", entropy, c["entropy"]);
    check_fixture<TestType>("token_entropy dlogits", dlogits, c["dlogits"]);
  }
}

TEST_CASE("token entropy is log V for uniform logits and near zero for a one-hot row", "[losses][token][entropy]") {
  const std::size_t V = 50;
  vec logits(2 * V, 1.25);
  for (std::size_t v = 0; v < V; ++v) logits[V + v] = v == 7 ? 60.0 : 0.0;
  vec entropy(2);
  cai::token_entropy_forward(cai::cpu, entropy.data(), logits.data(), 2, V);
  CHECK_THAT(entropy[0], WithinAbs(std::log(static_cast<double>(V)), 1e-12));
  CHECK(entropy[1] >= 0.0);
  CHECK(entropy[1] < 1e-20);
  // the uniform distribution is a maximum: its gradient vanishes
  const vec one = {1.0, 1.0};
  vec dlogits(2 * V, 0.0);
  cai::token_entropy_backward(cai::cpu, dlogits.data(), one.data(), logits.data(), 2, V);
  for (std::size_t v = 0; v < V; ++v) CHECK_THAT(dlogits[v], WithinAbs(0.0, 1e-15));
}

TEST_CASE("token backward functions accumulate into the logit gradient", "[losses][token]") {
  const std::size_t N = 3, V = 4;
  const vec logits = random_vec(N * V, 6, -2.0, 2.0);
  const vec w = random_vec(N, 7);
  const std::vector<std::int32_t> targets = {2, 0, -1};
  vec logp(N), lse(N), once(N * V, 0.0), twice(N * V, 0.0), ent_once(N * V, 0.0), ent_twice(N * V, 0.0);
  cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
  cai::token_logprob_backward(cai::cpu, once.data(), w.data(), logits.data(), lse.data(), targets.data(), N, V);
  cai::token_entropy_backward(cai::cpu, ent_once.data(), w.data(), logits.data(), N, V);
  for (int k = 0; k < 2; ++k) {
    cai::token_logprob_backward(cai::cpu, twice.data(), w.data(), logits.data(), lse.data(), targets.data(), N, V);
    cai::token_entropy_backward(cai::cpu, ent_twice.data(), w.data(), logits.data(), N, V);
  }
  for (std::size_t i = 0; i < N * V; ++i) {
    CHECK_THAT(twice[i], WithinAbs(2 * once[i], 1e-15));
    CHECK_THAT(ent_twice[i], WithinAbs(2 * ent_once[i], 1e-15));
  }
}

TEST_CASE("token kernels agree with the direct formulas above the parallel threshold", "[losses][token]") {
  // N * V = 65536 exceeds CAI_PARALLEL_FOR's threshold, so an OpenMP build splits these loops over threads
  const std::size_t N = 64, V = 1024;
  const std::vector<float> logits = [&] {
    const vec x = random_vec(N * V, 8, -6.0, 6.0);
    return std::vector<float>(x.begin(), x.end());
  }();
  std::vector<std::int32_t> targets(N);
  for (std::size_t n = 0; n < N; ++n) targets[n] = n % 9 == 4 ? -1 : static_cast<std::int32_t>((n * 37) % V);
  std::vector<float> logp(N), lse(N), entropy(N), ones(N, 1.0f), dlogits(N * V, 0.0f);
  cai::token_logprob_forward(cai::cpu, logp.data(), lse.data(), logits.data(), targets.data(), N, V);
  cai::token_entropy_forward(cai::cpu, entropy.data(), logits.data(), N, V);
  cai::token_logprob_backward(cai::cpu, dlogits.data(), ones.data(), logits.data(), lse.data(), targets.data(), N, V);
  for (std::size_t n = 0; n < N; ++n) {
    double m = logits[n * V], sum = 0, weighted = 0;
    for (std::size_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(logits[n * V + v]));
    for (std::size_t v = 0; v < V; ++v) sum += std::exp(logits[n * V + v] - m);
    const double row_lse = m + std::log(sum);
    for (std::size_t v = 0; v < V; ++v) weighted += std::exp(logits[n * V + v] - row_lse) * logits[n * V + v];
    const double want = targets[n] < 0 ? 0.0 : logits[n * V + static_cast<std::size_t>(targets[n])] - row_lse;
    CHECK_THAT(logp[n], WithinAbs(want, 1e-5));
    CHECK_THAT(entropy[n], WithinAbs(row_lse - weighted, 1e-4));
    double row_grad = 0;  // onehot − softmax sums to zero over a row (masked rows stay zero)
    for (std::size_t v = 0; v < V; ++v) row_grad += dlogits[n * V + v];
    CHECK_THAT(row_grad, WithinAbs(0.0, 1e-5));
  }
}
