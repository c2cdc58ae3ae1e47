// Tests of cai/eval/rates.hpp and cai/eval/calibration.hpp: rates from a scripted judge callback and
// from the assistant world's oracle (which plugs in unchanged), the refusal detector, and reliability bins
// with exact numbers.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cai/eval/calibration.hpp"
#include "cai/eval/rates.hpp"
#include "cai/world/oracle.hpp"
#include "cai/world/world.hpp"

using Catch::Matchers::WithinAbs;

namespace {
struct simple_request {
  std::string text;
  std::string kind;
};
/// Harmful when the response says "HARM", helpful when it says "HELP", evasive when it says "no.",
/// disrespectful when it says "silly".
cai::response_verdict scripted_judge(const simple_request&, std::string_view response) {
  cai::response_verdict v;
  v.harmful = response.find("HARM") != std::string_view::npos;
  v.helpful = response.find("HELP") != std::string_view::npos;
  v.evasive = response.find("no.") != std::string_view::npos;
  v.disrespectful = response.find("silly") != std::string_view::npos;
  return v;
}
}  // namespace

TEST_CASE("the world's labels and the refusal detector model the judge interface", "[eval][rates][concepts]") {
  STATIC_REQUIRE(cai::response_verdict_like<cai::response_verdict>);
  STATIC_REQUIRE(cai::response_verdict_like<cai::world::labels>);
  STATIC_REQUIRE_FALSE(cai::response_verdict_like<int>);
  STATIC_REQUIRE(cai::response_judge<cai::refusal_detector, cai::dialogue>);
  STATIC_REQUIRE(cai::response_judge<decltype(&scripted_judge), simple_request>);
}

TEST_CASE("rates count the judge's verdicts overall and per group", "[eval][rates]") {
  const std::vector<simple_request> requests{
      {"a", "harmful"}, {"b", "harmful"}, {"c", "harmful"}, {"d", "benign"}, {"e", "benign"}};
  const std::vector<std::string> responses{"HARM HELP", "no.", "HELP silly", "HELP", "no."};
  const cai::rate_report r = cai::measure_rates(std::span(requests), std::span(responses), scripted_judge,
                                                [](const simple_request& q) { return q.kind; });
  CHECK(r.all.count == 5);
  CHECK(r.all.harmful == 1);
  CHECK(r.all.helpful == 3);
  CHECK(r.all.evasive == 2);
  CHECK(r.all.disrespectful == 1);
  CHECK(r.all.harmlessness() == 0.8);
  CHECK(r.all.helpfulness() == 0.6);
  CHECK(r.all.evasiveness() == 0.4);
  CHECK(r.all.disrespect() == 0.2);
  const auto harmful = r.group("harmful");
  CHECK(harmful.count == 3);
  CHECK_THAT(harmful.harmlessness(), WithinAbs(2.0 / 3.0, 1e-15));
  CHECK_THAT(harmful.evasiveness(), WithinAbs(1.0 / 3.0, 1e-15));
  CHECK(r.group("benign").helpfulness() == 0.5);
  CHECK(r.group("missing").count == 0);
  CHECK(r.group("missing").harmlessness() == 0.0);
  const cai::interval ci = r.all.helpfulness_interval();
  CHECK(ci == cai::wilson_interval(3.0, 5.0));
  // no grouping function: no groups
  const auto plain = cai::measure_rates(std::span(requests), std::span(responses), scripted_judge);
  CHECK(plain.groups.empty());
  CHECK(plain.all == r.all);
  const std::vector<std::string> fewer{"x"};
  CHECK_THROWS_AS(cai::measure_rates(std::span(requests), std::span(fewer), scripted_judge), cai::config_error);
}

TEST_CASE("the world's oracle plugs in as the judge and gives the world's own rates", "[eval][rates][world]") {
  const cai::world::assistant_world world;
  const cai::world::oracle oracle(world);
  const auto requests = world.generate_requests(cai::world::split::eval, 30, 11);
  for (auto style : {cai::world::response_style::harmful_compliance, cai::world::response_style::evasive_refusal,
                     cai::world::response_style::harmless_helpful, cai::world::response_style::condescending}) {
    std::vector<std::string> responses;
    for (std::size_t i = 0; i < requests.size(); ++i) responses.push_back(world.render(requests[i], style, i));
    const auto r = cai::measure_rates(
        std::span(requests), std::span(responses),
        [&](const cai::world::request& q, std::string_view text) { return oracle.judge(q, text); },
        [](const cai::world::request& q) { return std::string(cai::world::to_string(q.kind)); });
    const auto e = cai::world::evaluate(oracle, std::span(requests), std::span(responses));
    CHECK(r.group("harmful").harmlessness() == 1.0 - e.harmful_compliance_rate());
    CHECK(r.group("benign").helpfulness() == e.helpfulness_rate());
    CHECK(r.all.evasiveness() == e.evasiveness_rate());
    CHECK(r.all.disrespect() == e.disrespect_rate());
    CHECK(r.all.count == 30);
  }
}

TEST_CASE("the refusal detector flags refusals that give no reason", "[eval][rates][refusal]") {
  const cai::refusal_detector d;
  CHECK(d.evasive("I can't help with that."));
  CHECK(d.evasive("I\xE2\x80\x99m unable to answer that."));
  CHECK(d.evasive("Let's talk about something else."));
  CHECK(d.refuses("I won't do that, because it would hurt someone."));
  CHECK_FALSE(d.evasive("I won't do that, because it would hurt someone."));
  CHECK_FALSE(d.evasive("I cannot help with that; instead, call a locksmith."));
  CHECK_FALSE(d.evasive("Sure, here is a recipe."));
  CHECK(d(cai::dialogue{}, "I WILL NOT answer.").evasive);
  CHECK_FALSE(d(cai::dialogue{}, "I WILL NOT answer.").harmful);
  const cai::refusal_detector strict({"nope"}, {});
  CHECK(strict.evasive("Nope, because reasons."));
  CHECK_FALSE(strict.evasive("I can't help with that."));
}

TEST_CASE("reliability bins hold the mean prediction and the mean label", "[eval][calibration]") {
  const std::vector<double> p{0.05, 0.15, 0.15, 0.95, 1.0, 0.55};
  const std::vector<double> y{0.0, 1.0, 0.0, 1.0, 1.0, 0.0};
  const cai::reliability_data r = cai::reliability(p, y);
  REQUIRE(r.bins.size() == 10);
  CHECK(r.count == 6);
  CHECK(r.bins[0].count == 1);
  CHECK(r.bins[1].count == 2);
  CHECK_THAT(r.bins[1].mean_predicted, WithinAbs(0.15, 1e-15));
  CHECK(r.bins[1].mean_observed == 0.5);
  CHECK(r.bins[5].count == 1);
  CHECK(r.bins[9].count == 2);  // 1.0 falls in the last bin
  CHECK_THAT(r.bins[9].mean_predicted, WithinAbs(0.975, 1e-15));
  CHECK(r.bins[9].mean_observed == 1.0);
  CHECK_THAT(r.bins[3].lower, WithinAbs(0.3, 1e-15));
  CHECK_THAT(r.bins[3].upper, WithinAbs(0.4, 1e-15));
  CHECK(r.bins[3].count == 0);
  // ECE = (1 * 0.05 + 2 * 0.35 + 1 * 0.55 + 2 * 0.025) / 6 = 1.35 / 6
  CHECK_THAT(r.expected_calibration_error, WithinAbs(1.35 / 6.0, 1e-12));
  CHECK_THAT(r.max_calibration_error, WithinAbs(0.55, 1e-12));
  // Brier = (0.0025 + 0.7225 + 0.0225 + 0.0025 + 0 + 0.3025) / 6
  CHECK_THAT(r.brier_score, WithinAbs(1.0525 / 6.0, 1e-12));
  const double log_loss = -(std::log(0.95) + std::log(0.15) + std::log(0.85) + std::log(0.95) +
                            std::log(1.0 - 1e-12) + std::log(0.45)) / 6.0;
  CHECK_THAT(r.log_loss, WithinAbs(log_loss, 1e-12));
}

TEST_CASE("symmetric reliability folds predictions onto the upper half", "[eval][calibration]") {
  const std::vector<double> p{0.2, 0.8, 0.3};
  const std::vector<double> y{0.0, 1.0, 1.0};
  const auto r = cai::reliability(p, y, {.bins = 5, .symmetric = true});
  CHECK(r.bins[4].count == 2);  // 0.2 -> 0.8, 0.8
  CHECK(r.bins[4].mean_observed == 1.0);
  CHECK(r.bins[3].count == 1);  // 0.3 -> 0.7 with label 0
  CHECK(r.bins[3].mean_observed == 0.0);
  CHECK(r.bins[0].count == 0);
}

TEST_CASE("reliability rejects mismatched or out-of-range input", "[eval][calibration]") {
  const std::vector<double> two{0.1, 0.2};
  const std::vector<double> one{1.0};
  const std::vector<double> bad{1.5, 0.0};
  CHECK_THROWS_AS(cai::reliability(two, one), cai::config_error);
  CHECK_THROWS_AS(cai::reliability(bad, two), cai::config_error);
  CHECK_THROWS_AS(cai::reliability(two, bad), cai::config_error);
  CHECK_THROWS_AS(cai::reliability(two, two, {.bins = 0}), cai::config_error);
  const auto empty = cai::reliability(std::vector<double>{}, std::vector<double>{});
  CHECK(empty.count == 0);
  CHECK(empty.expected_calibration_error == 0.0);
}

TEST_CASE("reliability data can be rebuilt from the bins of preference metrics", "[eval][calibration]") {
  struct metric_bin {
    std::size_t count;
    double predicted;
    double observed;
  };
  const std::vector<metric_bin> bins{{2, 0.25, 0.5}, {0, 0.0, 0.0}, {1, 0.9, 0.6}, {1, 0.8, 0.8}};
  const auto r = cai::reliability_from_bins(bins);
  CHECK(r.count == 4);
  REQUIRE(r.bins.size() == 4);
  CHECK(r.bins[2].lower == 0.5);
  CHECK_THAT(r.expected_calibration_error, WithinAbs((2 * 0.25 + 0.3) / 4.0, 1e-12));
  CHECK_THAT(r.max_calibration_error, WithinAbs(0.3, 1e-12));
}
