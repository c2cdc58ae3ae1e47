// Tests of cai/train/losses/preference.hpp: the Bradley-Terry preference loss with soft targets and a
// symmetric margin, against finite differences (double), the PyTorch fixture preference_loss.json (whose
// hard-label cases are TRL RewardTrainer's formula) and its defining properties.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cai/train/losses.hpp"
#include "losses/support.hpp"

using namespace losses_test;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

TEST_CASE("preference loss backward matches finite differences", "[losses][preference]") {
  const std::size_t n = 8;
  vec a = random_vec(n, 11, -3.0, 3.0), b = random_vec(n, 12, -3.0, 3.0);
  vec p = random_vec(n, 13, 0.0, 1.0);
  p[0] = 0.0;
  p[1] = 1.0;
  for (const double margin : {0.0, 0.4, -0.2}) {
    INFO("margin " << margin);
    const double dloss = 1.7;
    auto objective = [&] {
      return dloss * cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), n, margin);
    };
    vec da(n, 0.0), db(n, 0.0);
    cai::preference_loss_backward(cai::cpu, da.data(), db.data(), a.data(), b.data(), p.data(), n, margin, dloss);
    check_gradient(objective, a, da);
    check_gradient(objective, b, db);
  }
}

TEMPLATE_TEST_CASE("preference loss matches the PyTorch fixture", "[losses][preference][reference]", float, double) {
  for (const auto& c : load_cases("preference_loss")) {
    INFO(c["name"].get<std::string>());
    const std::size_t n = c["n"];
    const auto a = values<TestType>(c["reward_a"]), b = values<TestType>(c["reward_b"]), p = values<TestType>(c["p_a"]);
    const auto margin = static_cast<TestType>(c["margin"].get<double>());
    const auto dloss = static_cast<TestType>(c["dloss"].get<double>());
    const TestType loss = cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), n, margin);
    std::vector<TestType> da(n, TestType(0)), db(n, TestType(0));
    cai::preference_loss_backward(cai::cpu, da.data(), db.data(), a.data(), b.data(), p.data(), n, margin, dloss);
    const std::string name = "preference_loss " + c["name"].get<std::string>();
    check_fixture<TestType>(name + " loss", loss, c["loss"]);
    check_fixture<TestType>(name + " dreward_a", da, c["dreward_a"]);
    check_fixture<TestType>(name + " dreward_b", db, c["dreward_b"]);
  }
}

TEST_CASE("preference loss decreases when the chosen reward rises", "[losses][preference]") {
  vec a = {0.3, -1.0, 2.0}, b = {0.5, -0.5, 1.0};
  const vec p = {1.0, 1.0, 1.0};
  double previous = cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), 3, 0.25);
  for (int step = 0; step < 5; ++step) {
    for (auto& x : a) x += 0.5;
    const double now = cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), 3, 0.25);
    CHECK(now < previous);
    previous = now;
  }
  // the gradient points the same way: raising a lowers the loss, raising b raises it (hard label)
  vec da(3, 0.0), db(3, 0.0);
  cai::preference_loss_backward(cai::cpu, da.data(), db.data(), a.data(), b.data(), p.data(), 1, 0.0);
  CHECK(da[0] < 0.0);
  CHECK(db[0] > 0.0);
}

TEST_CASE("preference loss with a soft label is smallest where the reward gap is the logit of the label",
          "[losses][preference]") {
  // p = 0.8, no margin: the Bradley-Terry probability sigma(a - b) should equal p, so a - b = log 4
  const vec b = {0.0}, p = {0.8};
  const vec best = {std::log(4.0)};
  vec da(1, 0.0), db(1, 0.0);
  cai::preference_loss_backward(cai::cpu, da.data(), db.data(), best.data(), b.data(), p.data(), 1, 0.0);
  CHECK_THAT(da[0], WithinAbs(0.0, 1e-15));
  const double at_best = cai::preference_loss_forward(cai::cpu, best.data(), b.data(), p.data(), 1);
  for (const double shift : {-0.5, 0.5}) {  // rising past the optimum costs again: the target is soft
    const vec a = {best[0] + shift};
    CHECK(cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), 1) > at_best);
  }
}

TEST_CASE("preference loss with a hard label is the reward-model loss with its margin", "[losses][preference]") {
  const vec a = {1.0, -0.5}, b = {0.25, 0.75}, p = {1.0, 1.0};
  const double margin = 0.5;
  const double loss = cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), 2, margin);
  const double expected =
      0.5 * (std::log1p(std::exp(-(1.0 - 0.25 - margin))) + std::log1p(std::exp(-(-0.5 - 0.75 - margin))));
  CHECK_THAT(loss, WithinRel(expected, 1e-14));
  // no margin, equal rewards, any label: log 2
  const vec same = {0.3}, half = {0.5};
  CHECK_THAT(cai::preference_loss_forward(cai::cpu, same.data(), same.data(), half.data(), 1),
             WithinRel(std::log(2.0), 1e-14));
}

TEST_CASE("preference loss is unchanged by swapping the pair and the label", "[losses][preference]") {
  const std::size_t n = 6;
  const vec a = random_vec(n, 14, -2.0, 2.0), b = random_vec(n, 15, -2.0, 2.0), p = random_vec(n, 16, 0.0, 1.0);
  vec q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = 1.0 - p[i];
  for (const double margin : {0.0, 0.7}) {
    CHECK_THAT(cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), n, margin),
               WithinRel(cai::preference_loss_forward(cai::cpu, b.data(), a.data(), q.data(), n, margin), 1e-14));
  }
  // with p = 1/2 the optimum is a = b whatever the margin: the gradient vanishes there
  const vec x = {0.9}, half = {0.5};
  vec da(1, 0.0), db(1, 0.0);
  cai::preference_loss_backward(cai::cpu, da.data(), db.data(), x.data(), x.data(), half.data(), 1, 0.7);
  CHECK_THAT(da[0], WithinAbs(0.0, 1e-15));
}

TEST_CASE("preference loss stays finite for huge reward gaps", "[losses][preference]") {
  const std::vector<float> a = {1e4f, -1e4f}, b = {-1e4f, 1e4f}, p = {1.0f, 1.0f};
  const float loss = cai::preference_loss_forward(cai::cpu, a.data(), b.data(), p.data(), 2);
  CHECK(std::isfinite(loss));
  CHECK_THAT(loss, WithinRel(1e4f, 1e-6f));  // (0 + 2e4) / 2
  std::vector<float> da(2, 0.0f), db(2, 0.0f);
  cai::preference_loss_backward(cai::cpu, da.data(), db.data(), a.data(), b.data(), p.data(), 2,
                                0.0);  // a double margin for float rewards
  CHECK_THAT(da[0], WithinAbs(0.0, 1e-12));
  CHECK_THAT(da[1], WithinAbs(-0.5, 1e-7));
  CHECK_THAT(db[1], WithinAbs(0.5, 1e-7));
}

TEST_CASE("preference loss rejects an empty batch and labels outside zero to one", "[losses][preference][errors]") {
  const vec a = {0.0}, b = {0.0}, bad = {1.5}, nan = {std::numeric_limits<double>::quiet_NaN()}, ok = {1.0};
  vec da(1, 0.0), db(1, 0.0);
  CHECK_THROWS_AS(cai::preference_loss_forward(cai::cpu, a.data(), b.data(), ok.data(), 0), cai::config_error);
  CHECK_THROWS_AS(cai::preference_loss_backward(cai::cpu, da.data(), db.data(), a.data(), b.data(), ok.data(), 0, 0.0),
                  cai::config_error);
  CHECK_THROWS_AS(cai::preference_loss_forward(cai::cpu, a.data(), b.data(), bad.data(), 1), cai::validation_error);
  CHECK_THROWS_AS(cai::preference_loss_forward(cai::cpu, a.data(), b.data(), nan.data(), 1), cai::validation_error);
  CHECK_THROWS_AS(
      cai::preference_loss_forward(cai::cpu, a.data(), b.data(), ok.data(), 1, std::numeric_limits<double>::infinity()),
      cai::config_error);
  try {
    (void)cai::preference_loss_forward(cai::cpu, a.data(), b.data(), bad.data(), 1);
  } catch (const cai::error& e) {
    const std::string what = e.what();
    CHECK(what.find("preference_loss_forward") != std::string::npos);
    CHECK(what.find("p_a[0] = 1.5") != std::string::npos);
  }
}
