// Tests of cai/train/losses/ppo.hpp: PPO's clipped policy and value losses against finite differences
// (double, at points away from the clipping kinks) and the PyTorch fixtures ppo_policy.json and
// ppo_value.json; the KL penalty, GAE and masked whitening against kl_penalty.json, gae.json and
// whiten.json (TRL's PPOTrainer and trl.core written out in torch); and their defining properties.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "cai/train/losses.hpp"
#include "losses/support.hpp"

using namespace losses_test;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

namespace {
/// Moves x away from each point by at least gap (keeps finite differences off the kinks of max and clip).
double away(double x, std::initializer_list<double> points, double gap = 1e-3) {
  for (const double p : points)
    if (std::abs(x - p) < gap) x = p + (x >= p ? gap : -gap);
  return x;
}
}  // namespace

TEST_CASE("PPO policy loss backward matches finite differences", "[losses][ppo]") {
  const std::size_t N = 16;
  const double clip = 0.2;
  const vec old = random_vec(N, 31, -4.0, -0.5), adv = random_vec(N, 32, -2.0, 2.0);
  const vec diff = random_vec(N, 33, -0.5, 0.5);
  vec logp(N), mask(N, 1.0);
  for (std::size_t i = 0; i < N; ++i) logp[i] = old[i] + away(diff[i], {std::log(1 - clip), std::log(1 + clip)});
  mask[3] = mask[N - 1] = 0.0;
  const double dloss = 1.3;
  auto objective = [&] {
    return dloss *
           cai::ppo_policy_loss_forward(cai::cpu, logp.data(), old.data(), adv.data(), mask.data(), N, clip).loss;
  };
  vec dlogp(N, 0.0);
  cai::ppo_policy_loss_backward(cai::cpu, dlogp.data(), logp.data(), old.data(), adv.data(), mask.data(), N, clip,
                                dloss);
  check_gradient(objective, logp, dlogp);
  CHECK(dlogp[3] == 0.0);
  CHECK(dlogp[N - 1] == 0.0);
  const auto stats = cai::ppo_policy_loss_forward(cai::cpu, logp.data(), old.data(), adv.data(), mask.data(), N, clip);
  CHECK(stats.clip_fraction > 0.0);  // the draw clips some tokens, so both branches are checked
  CHECK(stats.clip_fraction < 1.0);
}

TEST_CASE("PPO value loss backward matches finite differences", "[losses][ppo]") {
  const std::size_t N = 16;
  const double clip = 0.2;
  const vec old = random_vec(N, 34, -1.0, 1.0), ret = random_vec(N, 35, -1.5, 1.5), d = random_vec(N, 36, -0.6, 0.6);
  vec values(N), mask(N, 1.0);
  for (std::size_t i = 0; i < N; ++i) values[i] = old[i] + away(d[i], {-clip, clip});
  mask[0] = 0.0;
  const double dloss = 0.9;
  auto objective = [&] {
    return dloss * cai::ppo_value_loss_forward(cai::cpu, values.data(), old.data(), ret.data(), mask.data(), N, clip);
  };
  vec dvalues(N, 0.0);
  cai::ppo_value_loss_backward(cai::cpu, dvalues.data(), values.data(), old.data(), ret.data(), mask.data(), N, clip,
                               dloss);
  check_gradient(objective, values, dvalues);
  CHECK(dvalues[0] == 0.0);
}

TEMPLATE_TEST_CASE("PPO policy loss matches the PyTorch fixture", "[losses][ppo][reference]", float, double) {
  for (const auto& c : load_cases("ppo_policy")) {
    const std::string name = "ppo_policy " + c["name"].get<std::string>();
    INFO(name);
    const std::size_t N = c["N"];
    const double clip = c["clip_range"];
    const auto logp = values<TestType>(c["logp"]), old = values<TestType>(c["old_logp"]);
    const auto adv = values<TestType>(c["advantages"]), mask = values<TestType>(c["mask"]);
    const auto dloss = static_cast<TestType>(c["dloss"].get<double>());
    const auto stats =
        cai::ppo_policy_loss_forward(cai::cpu, logp.data(), old.data(), adv.data(), mask.data(), N, clip);
    std::vector<TestType> dlogp(N, TestType(0));
    cai::ppo_policy_loss_backward(cai::cpu, dlogp.data(), logp.data(), old.data(), adv.data(), mask.data(), N, clip,
                                  dloss);
    check_fixture<TestType>(name + " loss", stats.loss, c["loss"]);
    check_fixture<TestType>(name + " clip_fraction", stats.clip_fraction, c["clip_fraction"]);
    check_fixture<TestType>(name + " approx_kl", stats.approx_kl, c["approx_kl"]);
    check_fixture<TestType>(name + " dlogp", dlogp, c["dlogp"]);
  }
}

TEMPLATE_TEST_CASE("PPO value loss matches the PyTorch fixture", "[losses][ppo][reference]", float, double) {
  for (const auto& c : load_cases("ppo_value")) {
    const std::string name = "ppo_value " + c["name"].get<std::string>();
    INFO(name);
    const std::size_t N = c["N"];
    const double clip = c["clip_range_value"];
    const auto v = values<TestType>(c["values"]), old = values<TestType>(c["old_values"]);
    const auto ret = values<TestType>(c["returns"]), mask = values<TestType>(c["mask"]);
    const auto dloss = static_cast<TestType>(c["dloss"].get<double>());
    const TestType loss = cai::ppo_value_loss_forward(cai::cpu, v.data(), old.data(), ret.data(), mask.data(), N, clip);
    std::vector<TestType> dv(N, TestType(0));
    cai::ppo_value_loss_backward(cai::cpu, dv.data(), v.data(), old.data(), ret.data(), mask.data(), N, clip, dloss);
    check_fixture<TestType>(name + " loss", loss, c["loss"]);
    check_fixture<TestType>(name + " dvalues", dv, c["dvalues"]);
  }
}

TEMPLATE_TEST_CASE("KL penalty GAE and whitening match the PyTorch fixtures", "[losses][ppo][reference]", float,
                   double) {
  for (const auto& c : load_cases("kl_penalty")) {
    const std::size_t N = c["N"];
    const auto logp = values<TestType>(c["logp"]), ref = values<TestType>(c["ref_logp"]);
    std::vector<TestType> k1(N), k3(N);
    cai::kl_penalty(cai::cpu, k1.data(), logp.data(), ref.data(), N, cai::kl_estimator::k1);
    cai::kl_penalty(cai::cpu, k3.data(), logp.data(), ref.data(), N, cai::kl_estimator::k3);
    check_fixture<TestType>("kl_penalty k1", k1, c["k1"]);
    check_fixture<TestType>("kl_penalty k3", k3, c["k3"]);
  }
  for (const auto& c : load_cases("gae")) {
    const std::string name = "gae " + c["name"].get<std::string>();
    const std::size_t Tn = c["Tn"];
    const auto rewards = values<TestType>(c["rewards"]), vals = values<TestType>(c["values"]);
    std::vector<TestType> adv(Tn), ret(Tn);
    cai::gae_advantages(cai::cpu, adv.data(), ret.data(), rewards.data(), vals.data(), Tn, c["gamma"].get<double>(),
                        c["lambda"].get<double>());
    check_fixture<TestType>(name + " advantages", adv, c["advantages"]);
    check_fixture<TestType>(name + " returns", ret, c["returns"]);
  }
  for (const auto& c : load_cases("whiten")) {
    const std::string name = "whiten " + c["name"].get<std::string>();
    const std::size_t N = c["N"];
    auto x = values<TestType>(c["x"]);
    const auto mask = values<TestType>(c["mask"]);
    cai::whiten(cai::cpu, x.data(), mask.data(), N, c["shift_mean"].get<bool>());
    check_fixture<TestType>(name + " whitened", x, c["whitened"]);
  }
}

TEST_CASE("PPO policy gradient is zero for clipped tokens", "[losses][ppo]") {
  // token 0: A > 0 and r > 1 + eps (clipped); token 1: A < 0 and r < 1 - eps (clipped);
  // token 2: A > 0 and r < 1 - eps (not clipped: the pessimistic term is the unclipped one);
  // token 3: A < 0 and r > 1 + eps (not clipped)
  const double clip = 0.2;
  const vec old = {-1.0, -1.0, -1.0, -1.0}, mask = {1, 1, 1, 1}, adv = {1.5, -0.5, 2.0, -1.0};
  const vec logp = {-1.0 + std::log(1.5), -1.0 + std::log(0.6), -1.0 + std::log(0.6), -1.0 + std::log(1.5)};
  vec dlogp(4, 0.0);
  cai::ppo_policy_loss_backward(cai::cpu, dlogp.data(), logp.data(), old.data(), adv.data(), mask.data(), 4, clip);
  CHECK(dlogp[0] == 0.0);
  CHECK(dlogp[1] == 0.0);
  CHECK_THAT(dlogp[2], WithinRel(-2.0 * 0.6 / 4, 1e-14));
  CHECK_THAT(dlogp[3], WithinRel(1.0 * 1.5 / 4, 1e-14));
  const auto stats = cai::ppo_policy_loss_forward(cai::cpu, logp.data(), old.data(), adv.data(), mask.data(), 4, clip);
  CHECK_THAT(stats.clip_fraction, WithinAbs(0.5, 1e-15));
  CHECK_THAT(stats.loss, WithinRel((-1.5 * 1.2 + 0.5 * 0.8 - 2.0 * 0.6 + 1.0 * 1.5) / 4, 1e-14));
}

TEST_CASE("PPO policy loss at the sampling policy is minus the mean advantage", "[losses][ppo]") {
  const std::size_t N = 5;
  const vec logp = random_vec(N, 37, -3.0, -0.1), adv = random_vec(N, 38), mask = {1, 0, 1, 1, 0};
  const auto stats = cai::ppo_policy_loss_forward(cai::cpu, logp.data(), logp.data(), adv.data(), mask.data(), N, 0.2);
  CHECK_THAT(stats.loss, WithinAbs(-(adv[0] + adv[2] + adv[3]) / 3, 1e-15));
  CHECK(stats.clip_fraction == 0.0);
  CHECK(stats.approx_kl == 0.0);
  vec dlogp(N, 0.0);  // the gradient is the policy gradient −A / Σ mask
  cai::ppo_policy_loss_backward(cai::cpu, dlogp.data(), logp.data(), logp.data(), adv.data(), mask.data(), N, 0.2);
  for (std::size_t i = 0; i < N; ++i) CHECK_THAT(dlogp[i], WithinAbs(-mask[i] * adv[i] / 3, 1e-15));
}

TEST_CASE("PPO value loss gradient is zero where the clipped error is larger", "[losses][ppo]") {
  // v moved past the clip interval away from the return: the clipped error is smaller, the gradient flows;
  // v moved past it towards (and beyond) the return: the clipped error is larger, the gradient is zero
  const vec old = {0.0, 0.0}, ret = {-1.0, 1.0}, v = {0.5, 0.9}, mask = {1, 1};
  vec dv(2, 0.0);
  cai::ppo_value_loss_backward(cai::cpu, dv.data(), v.data(), old.data(), ret.data(), mask.data(), 2, 0.2);
  CHECK_THAT(dv[0], WithinRel(0.5 * 2 * (0.5 + 1.0) / 2, 1e-14));
  CHECK(dv[1] == 0.0);
  const double loss = cai::ppo_value_loss_forward(cai::cpu, v.data(), old.data(), ret.data(), mask.data(), 2, 0.2);
  CHECK_THAT(loss, WithinRel(0.5 * (1.5 * 1.5 + 0.8 * 0.8) / 2, 1e-14));
}

TEST_CASE("GAE with lambda one and gamma one equals reward-to-go minus value", "[losses][ppo][gae]") {
  const std::size_t Tn = 9;
  const vec rewards = random_vec(Tn, 39), values = random_vec(Tn, 40);
  vec adv(Tn), ret(Tn);
  cai::gae_advantages(cai::cpu, adv.data(), ret.data(), rewards.data(), values.data(), Tn, 1.0, 1.0);
  for (std::size_t t = 0; t < Tn; ++t) {
    double to_go = 0;
    for (std::size_t k = t; k < Tn; ++k) to_go += rewards[k];
    CHECK_THAT(adv[t], WithinAbs(to_go - values[t], 1e-14));
    CHECK_THAT(ret[t], WithinAbs(to_go, 1e-14));
  }
}

TEST_CASE("GAE with lambda zero is the one-step temporal difference", "[losses][ppo][gae]") {
  const std::size_t Tn = 6;
  const double gamma = 0.9;
  const vec rewards = random_vec(Tn, 41), values = random_vec(Tn, 42);
  vec adv(Tn), ret(Tn);
  cai::gae_advantages(cai::cpu, adv.data(), ret.data(), rewards.data(), values.data(), Tn, gamma, 0.0);
  for (std::size_t t = 0; t < Tn; ++t) {
    const double next = t + 1 < Tn ? values[t + 1] : 0.0;
    CHECK_THAT(adv[t], WithinAbs(rewards[t] + gamma * next - values[t], 1e-15));
  }
  // an empty sequence writes nothing and does not throw
  CHECK_NOTHROW(cai::gae_advantages(cai::cpu, adv.data(), ret.data(), rewards.data(), values.data(), 0, gamma, 0.95));
}

TEST_CASE("whiten gives zero mean and unit variance over the masked entries", "[losses][ppo][whiten]") {
  const std::size_t N = 12;
  vec x = random_vec(N, 43, -3.0, 5.0);
  const vec mask = {1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0};
  vec kept = x;
  cai::whiten(cai::cpu, x.data(), mask.data(), N);
  double total = 0, sum = 0, sq = 0;
  for (std::size_t i = 0; i < N; ++i) {
    total += mask[i];
    sum += mask[i] * x[i];
  }
  const double mean = sum / total;
  for (std::size_t i = 0; i < N; ++i) sq += mask[i] * (x[i] - mean) * (x[i] - mean);
  CHECK_THAT(mean, WithinAbs(0.0, 1e-14));
  CHECK_THAT(sq / (total - 1), WithinAbs(1.0, 1e-7));  // 1 up to the 1e-8 in the square root
  // shift_mean = false keeps the mean of the masked entries
  double kept_mean = 0;
  for (std::size_t i = 0; i < N; ++i) kept_mean += mask[i] * kept[i];
  kept_mean /= total;
  cai::whiten(cai::cpu, kept.data(), mask.data(), N, false);
  double new_mean = 0;
  for (std::size_t i = 0; i < N; ++i) new_mean += mask[i] * kept[i];
  CHECK_THAT(new_mean / total, WithinAbs(kept_mean, 1e-13));
}

TEST_CASE("KL estimators are zero for equal policies and k3 is never negative", "[losses][ppo][kl]") {
  const std::size_t N = 8;
  const vec logp = random_vec(N, 44, -5.0, -0.1), ref = random_vec(N, 45, -5.0, -0.1);
  vec k1(N), k3(N);
  cai::kl_penalty(cai::cpu, k1.data(), logp.data(), logp.data(), N, cai::kl_estimator::k1);
  cai::kl_penalty(cai::cpu, k3.data(), logp.data(), logp.data(), N, cai::kl_estimator::k3);
  for (std::size_t i = 0; i < N; ++i) {
    CHECK(k1[i] == 0.0);
    CHECK(k3[i] == 0.0);
  }
  cai::kl_penalty(cai::cpu, k1.data(), logp.data(), ref.data(), N, cai::kl_estimator::k1);
  cai::kl_penalty(cai::cpu, k3.data(), logp.data(), ref.data(), N, cai::kl_estimator::k3);
  for (std::size_t i = 0; i < N; ++i) {
    CHECK_THAT(k1[i], WithinAbs(logp[i] - ref[i], 1e-15));
    CHECK(k3[i] >= 0.0);
  }
}

TEST_CASE("PPO functions reject bad clip ranges and empty masks and name the value", "[losses][ppo][errors]") {
  const vec x = {0.0, 0.0}, ones = {1.0, 1.0}, zeros = {0.0, 0.0}, one = {1.0, 0.0};
  vec d(2, 0.0);
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const cai::config_error& e) {
      return std::string(e.what());
    }
    return std::string("no config_error");
  };
  CHECK(message([&] {
          (void)cai::ppo_policy_loss_forward(cai::cpu, x.data(), x.data(), x.data(), ones.data(), 2, 0.0);
        }).find("ppo_policy_loss_forward: clip_range = 0") != std::string::npos);
  CHECK(message([&] {
          cai::ppo_policy_loss_backward(cai::cpu, d.data(), x.data(), x.data(), x.data(), ones.data(), 2, -0.1);
        }).find("ppo_policy_loss_backward: clip_range = -0.1") != std::string::npos);
  CHECK(message([&] {
          (void)cai::ppo_value_loss_forward(cai::cpu, x.data(), x.data(), x.data(), ones.data(), 2, 0.0);
        }).find("ppo_value_loss_forward: clip_range_value = 0") != std::string::npos);
  CHECK(message([&] {
          cai::ppo_value_loss_backward(cai::cpu, d.data(), x.data(), x.data(), x.data(), ones.data(), 2, -1.0);
        }).find("clip_range_value = -1") != std::string::npos);
  CHECK(message([&] {
          (void)cai::ppo_policy_loss_forward(cai::cpu, x.data(), x.data(), x.data(), ones.data(), 0, 0.2);
        }).find("N is 0") != std::string::npos);
  CHECK(message([&] {
          (void)cai::ppo_policy_loss_forward(cai::cpu, x.data(), x.data(), x.data(), zeros.data(), 2, 0.2);
        }).find("mask selects no token") != std::string::npos);
  CHECK(message([&] { cai::whiten(cai::cpu, d.data(), one.data(), 2); }).find("whiten") != std::string::npos);
  CHECK(message([&] {
          cai::gae_advantages(cai::cpu, d.data(), d.data(), x.data(), x.data(), 2, 1.5, 0.95);
        }).find("gamma = 1.5") != std::string::npos);
  CHECK(message([&] {
          cai::gae_advantages(cai::cpu, d.data(), d.data(), x.data(), x.data(), 2, 1.0, -0.5);
        }).find("lambda = -0.5") != std::string::npos);
  CHECK(message([&] {
          cai::kl_penalty(cai::cpu, d.data(), x.data(), x.data(), 2, static_cast<cai::kl_estimator>(9));
        }).find("kl_penalty") != std::string::npos);
}
