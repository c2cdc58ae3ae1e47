// Tests of cai/train/schedule.hpp: constant, linear and cosine decays, linear warm-up, apply_schedule,
// and the factors of Hugging Face transformers' get_*_schedule_with_warmup for the same settings
// (tests/data/optim/schedules.json, written by tests/optim/make_fixtures.py), within 1e-12.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <string>

#include "cai/error.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/schedule.hpp"
#include "cai/train/sgd.hpp"
#include "optim/fixtures.hpp"

namespace {
struct halving {  // a user-defined schedule without validate()
  double operator()(std::size_t step) const { return std::ldexp(1.0, -static_cast<int>(step)); }
};
struct returns_float {
  float operator()(std::size_t) const { return 1.0f; }
};
struct broken {
  double operator()(std::size_t) const { return -1.0; }
};
}  // namespace

TEST_CASE("the shipped schedules model lr_schedule", "[optim][schedule]") {
  STATIC_REQUIRE(cai::lr_schedule<cai::constant_schedule>);
  STATIC_REQUIRE(cai::lr_schedule<cai::linear_decay>);
  STATIC_REQUIRE(cai::lr_schedule<cai::cosine_decay>);
  STATIC_REQUIRE(cai::lr_schedule<cai::warmup<cai::cosine_decay>>);
  STATIC_REQUIRE(cai::lr_schedule<cai::warmup<cai::warmup<cai::linear_decay>>>);
  STATIC_REQUIRE(cai::lr_schedule<halving>);
  STATIC_REQUIRE_FALSE(cai::lr_schedule<returns_float>);
  STATIC_REQUIRE_FALSE(cai::lr_schedule<double>);
}

TEST_CASE("the constant schedule is one at every step", "[optim][schedule]") {
  const cai::constant_schedule s;
  REQUIRE(s(0) == 1.0);
  REQUIRE(s(1000000) == 1.0);
}

TEST_CASE("linear decay goes from one to the final ratio and stays there", "[optim][schedule]") {
  const cai::linear_decay to_zero{.total_steps = 4};
  REQUIRE(to_zero(0) == 1.0);
  REQUIRE(to_zero(1) == 0.75);
  REQUIRE(to_zero(2) == 0.5);
  REQUIRE(to_zero(4) == 0.0);
  REQUIRE(to_zero(100) == 0.0);
  const cai::linear_decay to_half{.total_steps = 4, .final_ratio = 0.5};
  REQUIRE(to_half(0) == 1.0);
  REQUIRE(to_half(2) == 0.75);
  REQUIRE(to_half(4) == 0.5);
  REQUIRE(to_half(9) == 0.5);
}

TEST_CASE("cosine decay follows half a cosine to the minimum ratio and stays there", "[optim][schedule]") {
  const cai::cosine_decay s{.total_steps = 100, .min_ratio = 0.1};
  REQUIRE(s(0) == 1.0);
  REQUIRE(std::abs(s(50) - 0.55) < 1e-15);
  REQUIRE(std::abs(s(25) - (0.1 + 0.9 * 0.5 * (1.0 + std::cos(std::numbers::pi / 4)))) < 1e-15);
  REQUIRE(std::abs(s(100) - 0.1) < 1e-15);
  REQUIRE(s(100) == s(1000));
  for (std::size_t step = 1; step <= 100; ++step) REQUIRE(s(step) <= s(step - 1));
}

TEST_CASE("warmup rises linearly from zero then runs the inner schedule from its start", "[optim][schedule]") {
  const cai::warmup s{4, cai::linear_decay{.total_steps = 2}};
  REQUIRE(s(0) == 0.0);
  REQUIRE(s(1) == 0.25);
  REQUIRE(s(3) == 0.75);
  REQUIRE(s(4) == 1.0);
  REQUIRE(s(5) == 0.5);
  REQUIRE(s(6) == 0.0);
  const cai::warmup<cai::constant_schedule> none{};
  REQUIRE(none(0) == 1.0);
  const cai::warmup<halving> custom{.warmup_steps = 2};
  REQUIRE(custom(1) == 0.5);
  REQUIRE(custom(4) == 0.25);
}

TEST_CASE("apply schedule sets the learning rate of the optimizer", "[optim][schedule]") {
  cai::adamw opt;
  const cai::warmup s{4, cai::linear_decay{.total_steps = 2}};
  cai::apply_schedule(opt, 1e-3f, s, 1);
  REQUIRE(opt.learning_rate == static_cast<float>(double(1e-3f) * 0.25));
  cai::apply_schedule(opt, 1e-3f, s, 4);
  REQUIRE(opt.learning_rate == 1e-3f);
  cai::sgd plain;
  cai::apply_schedule(plain, 0.5f, halving{}, 3);
  REQUIRE(plain.learning_rate == 0.0625f);
}

TEST_CASE("invalid schedules throw a config error that names the field", "[optim][schedule]") {
  using Catch::Matchers::ContainsSubstring;
  using Catch::Matchers::MessageMatches;
  REQUIRE_THROWS_MATCHES(cai::linear_decay{.total_steps = 0}.validate(), cai::config_error,
                         MessageMatches(ContainsSubstring("cai::linear_decay: total_steps = 0 is invalid")));
  REQUIRE_THROWS_MATCHES((cai::linear_decay{.total_steps = 5, .final_ratio = 1.5}.validate()), cai::config_error,
                         MessageMatches(ContainsSubstring("final_ratio = 1.5")));
  REQUIRE_THROWS_MATCHES((cai::cosine_decay{.total_steps = 5, .min_ratio = -0.1}.validate()), cai::config_error,
                         MessageMatches(ContainsSubstring("cai::cosine_decay: min_ratio = -0.1")));
  REQUIRE_THROWS_AS((cai::cosine_decay{.total_steps = 5, .min_ratio = std::nan("")}.validate()), cai::config_error);
  REQUIRE_THROWS_MATCHES((cai::warmup{3, cai::cosine_decay{.total_steps = 0}}.validate()), cai::config_error,
                         MessageMatches(ContainsSubstring("cai::cosine_decay: total_steps = 0")));
  REQUIRE_NOTHROW(cai::warmup<halving>{}.validate());

  cai::adamw opt{.learning_rate = 0.25f};
  REQUIRE_THROWS_AS(cai::apply_schedule(opt, 1e-3f, cai::cosine_decay{.total_steps = 0}, 0), cai::config_error);
  REQUIRE_THROWS_MATCHES(cai::apply_schedule(opt, -1.0f, cai::constant_schedule{}, 0), cai::config_error,
                         MessageMatches(ContainsSubstring("base_lr = -1")));
  REQUIRE_THROWS_MATCHES(cai::apply_schedule(opt, 1e-3f, broken{}, 7), cai::config_error,
                         MessageMatches(ContainsSubstring("the schedule returned -1 at step 7")));
  REQUIRE(opt.learning_rate == 0.25f);
}

TEST_CASE("the schedules match the factors of hugging face transformers", "[optim][schedule][reference]") {
  const auto fixture = optim_test::read_fixture("schedules.json");
  if (fixture.is_null()) SKIP("no schedules.json in " + optim_test::fixture_dir().string());
  int compared = 0;
  for (const auto& c : fixture.at("cases")) {
    const auto kind = c.at("kind").get<std::string>();
    const auto w = c.at("warmup").get<std::size_t>();
    const auto total = c.at("total").get<std::size_t>();
    const auto min_ratio = c.at("min_lr_rate").get<double>();
    const auto factors = optim_test::as_vector<double>(c.at("factors"));
    REQUIRE(factors.size() == total + 1);
    auto compare = [&](const auto& schedule) {
      schedule.validate();
      double worst = 0.0;
      for (std::size_t step = 0; step <= total; ++step) {
        INFO(c.at("name").get<std::string>() << " at step " << step);
        CHECK(std::abs(schedule(step) - factors[step]) <= 1e-12);
        worst = std::max(worst, std::abs(schedule(step) - factors[step]));
      }
      INFO(c.at("name").get<std::string>() << ": largest difference " << worst);
      CHECK(worst <= 1e-12);
      ++compared;
    };
    if (kind == "linear") {
      compare(cai::warmup{w, cai::linear_decay{.total_steps = total - w}});
    } else if (kind == "cosine") {
      compare(cai::warmup{w, cai::cosine_decay{.total_steps = total - w}});
    } else if (kind == "cosine_min") {
      compare(cai::warmup{w, cai::cosine_decay{.total_steps = total - w, .min_ratio = min_ratio}});
    } else if (kind == "constant") {
      compare(cai::warmup{w, cai::constant_schedule{}});
    } else {
      FAIL("unknown schedule kind " << kind);
    }
  }
  REQUIRE(compared == static_cast<int>(fixture.at("cases").size()));
}
