// Tests of cai/train/losses/dpo.hpp: DPO, cDPO (label smoothing) and IPO, against finite differences
// (double), the PyTorch fixture dpo.json (TRL's DPOTrainer.dpo_loss written out in torch) and their
// defining properties.
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

namespace {
cai::dpo_options options(cai::dpo_variant variant, double beta, double eps = 0.0) {
  cai::dpo_options o;
  o.variant = variant;
  o.beta = beta;
  o.label_smoothing = eps;
  return o;
}
}  // namespace

TEST_CASE("DPO backward matches finite differences for every variant", "[losses][dpo]") {
  const std::size_t n = 7;
  vec pc = random_vec(n, 21, -30.0, -5.0), pr = random_vec(n, 22, -30.0, -5.0);
  const vec rc = random_vec(n, 23, -30.0, -5.0), rr = random_vec(n, 24, -30.0, -5.0);
  for (const auto& opt : {options(cai::dpo_variant::sigmoid, 0.1), options(cai::dpo_variant::sigmoid, 0.5, 0.25),
                          options(cai::dpo_variant::ipo, 0.1), options(cai::dpo_variant::ipo, 3.0)}) {
    INFO("variant " << static_cast<int>(opt.variant) << " beta " << opt.beta << " label smoothing "
                    << opt.label_smoothing);
    const double dloss = 0.8;
    auto objective = [&] {
      return dloss * cai::dpo_loss_forward(cai::cpu, pc.data(), pr.data(), rc.data(), rr.data(), n, opt);
    };
    vec dc(n, 0.0), dr(n, 0.0);
    cai::dpo_loss_backward(cai::cpu, dc.data(), dr.data(), pc.data(), pr.data(), rc.data(), rr.data(), n, opt, dloss);
    check_gradient(objective, pc, dc);
    check_gradient(objective, pr, dr);
  }
}

TEMPLATE_TEST_CASE("DPO losses match the PyTorch fixture", "[losses][dpo][reference]", float, double) {
  for (const auto& c : load_cases("dpo")) {
    const std::string name = "dpo " + c["name"].get<std::string>();
    INFO(name);
    const std::size_t n = c["n"];
    const auto opt = options(c["variant"] == "ipo" ? cai::dpo_variant::ipo : cai::dpo_variant::sigmoid,
                             c["beta"].get<double>(), c["label_smoothing"].get<double>());
    const auto pc = values<TestType>(c["policy_chosen"]), pr = values<TestType>(c["policy_rejected"]);
    const auto rc = values<TestType>(c["ref_chosen"]), rr = values<TestType>(c["ref_rejected"]);
    const auto dloss = static_cast<TestType>(c["dloss"].get<double>());
    std::vector<TestType> chosen_rewards(n), rejected_rewards(n), dc(n, TestType(0)), dr(n, TestType(0));
    const TestType loss = cai::dpo_loss_forward(cai::cpu, pc.data(), pr.data(), rc.data(), rr.data(), n, opt,
                                                chosen_rewards.data(), rejected_rewards.data());
    cai::dpo_loss_backward(cai::cpu, dc.data(), dr.data(), pc.data(), pr.data(), rc.data(), rr.data(), n, opt, dloss);
    check_fixture<TestType>(name + " loss", loss, c["loss"]);
    check_fixture<TestType>(name + " chosen_rewards", chosen_rewards, c["chosen_rewards"]);
    check_fixture<TestType>(name + " rejected_rewards", rejected_rewards, c["rejected_rewards"]);
    check_fixture<TestType>(name + " dpolicy_chosen", dc, c["dpolicy_chosen"]);
    check_fixture<TestType>(name + " dpolicy_rejected", dr, c["dpolicy_rejected"]);
  }
}

TEST_CASE("DPO loss is log 2 when the policy equals the reference", "[losses][dpo]") {
  const std::size_t n = 4;
  const vec chosen = random_vec(n, 25, -20.0, -1.0), rejected = random_vec(n, 26, -20.0, -1.0);
  for (const double eps : {0.0, 0.1, 0.3}) {
    const auto opt = options(cai::dpo_variant::sigmoid, 0.1, eps);
    vec cr(n), rr(n);
    const double loss = cai::dpo_loss_forward(cai::cpu, chosen.data(), rejected.data(), chosen.data(), rejected.data(),
                                              n, opt, cr.data(), rr.data());
    CHECK_THAT(loss, WithinRel(std::log(2.0), 1e-14));
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(cr[i] == 0.0);
      CHECK(rr[i] == 0.0);
    }
  }
  // IPO's loss there is (1 / (2 beta))^2
  const auto ipo = options(cai::dpo_variant::ipo, 0.25);
  CHECK_THAT(cai::dpo_loss_forward(cai::cpu, chosen.data(), rejected.data(), chosen.data(), rejected.data(), n, ipo),
             WithinRel(4.0, 1e-14));
}

TEST_CASE("DPO gradient raises the chosen and lowers the rejected log-probability", "[losses][dpo]") {
  const std::size_t n = 3;
  const vec pc = {-10.0, -12.0, -8.0}, pr = {-11.0, -9.0, -8.5}, rc = {-10.5, -12.0, -9.0}, rr = {-10.0, -9.5, -8.0};
  for (const auto& opt : {options(cai::dpo_variant::sigmoid, 0.1), options(cai::dpo_variant::sigmoid, 0.1, 0.2),
                          options(cai::dpo_variant::ipo, 0.1)}) {
    vec dc(n, 0.0), dr(n, 0.0);
    cai::dpo_loss_backward(cai::cpu, dc.data(), dr.data(), pc.data(), pr.data(), rc.data(), rr.data(), n, opt);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(dc[i] < 0.0);  // gradient descent increases log pi(chosen)
      CHECK(dr[i] > 0.0);
      CHECK_THAT(dc[i], WithinAbs(-dr[i], 1e-15));
    }
  }
  // a gradient step lowers the loss
  const auto opt = options(cai::dpo_variant::sigmoid, 0.1);
  vec dc(n, 0.0), dr(n, 0.0), pc2 = pc, pr2 = pr;
  cai::dpo_loss_backward(cai::cpu, dc.data(), dr.data(), pc.data(), pr.data(), rc.data(), rr.data(), n, opt);
  for (std::size_t i = 0; i < n; ++i) {
    pc2[i] -= 1.0 * dc[i];
    pr2[i] -= 1.0 * dr[i];
  }
  CHECK(cai::dpo_loss_forward(cai::cpu, pc2.data(), pr2.data(), rc.data(), rr.data(), n, opt) <
        cai::dpo_loss_forward(cai::cpu, pc.data(), pr.data(), rc.data(), rr.data(), n, opt));
}

TEST_CASE("DPO loss stays finite for huge log-ratio margins in float", "[losses][dpo]") {
  const std::vector<float> pc = {-1.0f, -5000.0f}, pr = {-5000.0f, -1.0f}, ref = {-100.0f, -100.0f};
  const auto opt = options(cai::dpo_variant::sigmoid, 1.0, 0.1);
  const float loss = cai::dpo_loss_forward(cai::cpu, pc.data(), pr.data(), ref.data(), ref.data(), 2, opt);
  CHECK(std::isfinite(loss));
  std::vector<float> dc(2, 0.0f), dr(2, 0.0f);
  cai::dpo_loss_backward(cai::cpu, dc.data(), dr.data(), pc.data(), pr.data(), ref.data(), ref.data(), 2, opt, 1.0);
  CHECK(std::isfinite(dc[0]));
  CHECK(std::isfinite(dc[1]));
}

TEST_CASE("DPO options reject a bad beta or label smoothing and name the value", "[losses][dpo][errors]") {
  auto message = [](const cai::dpo_options& o) {
    try {
      o.validate();
    } catch (const cai::config_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_NOTHROW(cai::dpo_options{}.validate());
  CHECK(message(options(cai::dpo_variant::sigmoid, 0.0)).find("beta = 0") != std::string::npos);
  CHECK(message(options(cai::dpo_variant::sigmoid, -1.0)).find("beta = -1") != std::string::npos);
  CHECK(!message(options(cai::dpo_variant::sigmoid, std::numeric_limits<double>::quiet_NaN())).empty());
  CHECK(!message(options(cai::dpo_variant::sigmoid, std::numeric_limits<double>::infinity())).empty());
  CHECK(message(options(cai::dpo_variant::sigmoid, 0.1, 0.5)).find("label_smoothing = 0.5") != std::string::npos);
  CHECK(message(options(cai::dpo_variant::sigmoid, 0.1, -0.1)).find("label_smoothing = -0.1") != std::string::npos);
  CHECK(!message(options(static_cast<cai::dpo_variant>(7), 0.1)).empty());

  const vec x = {-1.0};
  vec d(1, 0.0);
  CHECK_THROWS_AS(cai::dpo_loss_forward(cai::cpu, x.data(), x.data(), x.data(), x.data(), 0, cai::dpo_options{}),
                  cai::config_error);
  try {
    (void)cai::dpo_loss_forward(cai::cpu, x.data(), x.data(), x.data(), x.data(), 1,
                                options(cai::dpo_variant::sigmoid, 0.0));
    FAIL("no exception");
  } catch (const cai::config_error& e) {
    CHECK(std::string(e.what()).find("dpo_loss_forward") != std::string::npos);
  }
  CHECK_THROWS_AS(cai::dpo_loss_backward(cai::cpu, d.data(), d.data(), x.data(), x.data(), x.data(), x.data(), 1,
                                         options(cai::dpo_variant::ipo, 0.1, 0.7)),
                  cai::config_error);
}
