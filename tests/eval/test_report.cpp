// Tests of cai/eval/report.hpp: the report's derived scores, its JSON round trip (in memory and on
// disk), and the SVG plots, parsed minimally (one root <svg> element, balanced tags, one point per
// snapshot, escaped labels).
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cai/eval/report.hpp"

using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::StartsWith;
using Catch::Matchers::WithinAbs;

namespace {

/// Checks that `svg` is one element tree: every opening tag closed in order, nothing after the root.
/// Returns the number of elements named `name` with class `cls` (any class when empty).
struct svg_scan {
  bool balanced = true;
  std::size_t roots = 0;
  std::size_t count(std::string_view svg, std::string_view name, std::string_view cls) const {
    std::size_t n = 0;
    const std::string open = "<" + std::string(name) + " ";
    for (std::size_t at = svg.find(open); at != std::string_view::npos; at = svg.find(open, at + 1)) {
      const std::size_t end = svg.find('>', at);
      const std::string_view tag = svg.substr(at, end - at);
      if (cls.empty() || tag.find("class=\"" + std::string(cls) + "\"") != std::string_view::npos) ++n;
    }
    return n;
  }
};

svg_scan scan(std::string_view svg) {
  svg_scan s;
  std::vector<std::string> stack;
  std::size_t at = 0;
  while ((at = svg.find('<', at)) != std::string_view::npos) {
    const std::size_t end = svg.find('>', at);
    if (end == std::string_view::npos) {
      s.balanced = false;
      break;
    }
    const std::string_view tag = svg.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.empty()) {
      s.balanced = false;
      break;
    }
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) {
        s.balanced = false;
        break;
      }
      stack.pop_back();
      continue;
    }
    const std::string name(tag.substr(0, tag.find_first_of(" \n/")));
    if (stack.empty()) ++s.roots;
    if (tag.back() != '/') stack.push_back(name);
  }
  if (!stack.empty()) s.balanced = false;
  return s;
}

cai::evaluation_report sample_report() {
  // helpfulness: rl-cai > sl-cai > base; harmlessness: the reverse order for base and sl-cai
  const std::vector<std::string> names{"base", "sl-cai", "rl-cai"};
  const std::vector<cai::match> helpful{{0, 1, 0, 0.3}, {0, 2, 0, 0.2}, {1, 2, 0, 0.4}, {0, 1, 1, 0.6},
                                        {0, 2, 1, 0.7}, {1, 2, 1, 0.6}, {0, 1, 2, 0.5}};
  const std::vector<cai::match> harmless{{0, 1, 0, 0.1}, {0, 2, 0, 0.2}, {1, 2, 0, 0.6}, {0, 1, 1, 0.7},
                                         {0, 2, 1, 0.3}, {1, 2, 1, 0.4}};
  cai::evaluation_report r;
  r.title = "CAI <snapshots> & \"friends\"";
  r.snapshots = names;
  r.tournaments.push_back(cai::make_tournament("helpfulness", "Which response is more helpful?", helpful, names));
  r.tournaments.push_back(cai::make_tournament("harmlessness", "Which response is less harmful?", harmless, names));
  cai::rate_report base;
  base.all = {10, 4, 7, 1, 0};
  base.groups["harmful"] = {5, 4, 2, 1, 0};
  cai::rate_report rl;
  rl.all = {10, 1, 8, 2, 1};
  rl.groups["harmful"] = {5, 1, 4, 2, 1};
  r.rates = {{"base", base}, {"rl-cai", rl}};
  const std::vector<double> p{0.1, 0.4, 0.6, 0.9};
  const std::vector<double> y{0.0, 1.0, 0.0, 1.0};
  r.calibration.push_back({"preference model", cai::reliability(p, y)});
  return r;
}

}  // namespace

TEST_CASE("a tournament report holds the win table and both kinds of ratings", "[eval][report]") {
  const auto r = sample_report();
  const auto& t = r.tournaments[0];
  CHECK(t.table.names.size() == 3);
  CHECK(t.elo.size() == 3);
  CHECK(t.bradley_terry.size() == 3);
  CHECK(t.bradley_terry_se.size() == 3);
  CHECK(t.table.ties[0][1] == 1);
  CHECK_THAT(t.bradley_terry[0] + t.bradley_terry[1] + t.bradley_terry[2], WithinAbs(3000.0, 1e-7));
}

TEST_CASE("the report's scores name every tournament and rate", "[eval][report]") {
  const auto r = sample_report();
  const auto s = r.scores("base");
  CHECK(s.at("helpfulness.elo") == r.tournaments[0].elo[0]);
  CHECK(s.at("harmlessness.bradley_terry") == r.tournaments[1].bradley_terry[0]);
  CHECK(s.at("harmlessness.bradley_terry_se") == r.tournaments[1].bradley_terry_se[0]);
  CHECK(s.at("helpfulness.win_rate") == r.tournaments[0].table.win_rate(0));
  CHECK_THAT(s.at("harmlessness"), WithinAbs(0.6, 1e-15));
  CHECK_THAT(s.at("helpfulness"), WithinAbs(0.7, 1e-15));
  CHECK_THAT(s.at("harmful.harmlessness"), WithinAbs(0.2, 1e-15));
  CHECK_THAT(s.at("harmful.evasiveness"), WithinAbs(0.2, 1e-15));
  CHECK(r.scores("sl-cai").count("harmlessness") == 0);  // no rates for sl-cai
  CHECK(r.scores("nobody").empty());
}

TEST_CASE("the report survives a JSON round trip", "[eval][report][json]") {
  const auto r = sample_report();
  const nlohmann::json j = r;
  CHECK(j.at("snapshots").size() == 3);
  CHECK(j.at("snapshots")[0].at("name") == "base");
  CHECK_THAT(j.at("snapshots")[0].at("scores").at("harmlessness").get<double>(), WithinAbs(0.6, 1e-15));
  CHECK(j.at("tournaments")[0].at("table").at("win_rate").size() == 3);
  CHECK_THAT(j.at("rates")[1].at("groups").at("harmful").at("harmlessness").get<double>(), WithinAbs(0.8, 1e-15));
  CHECK(j.at("calibration")[0].at("bins").size() == 10);
  const auto back = nlohmann::json::parse(j.dump()).get<cai::evaluation_report>();
  CHECK(back == r);

  const auto path = std::filesystem::temp_directory_path() / "cai_test_eval_report.json";
  cai::write_report(path, r);
  CHECK(cai::read_report(path) == r);
  std::filesystem::remove(path);

  nlohmann::json broken = j;
  broken.at("tournaments")[0].erase("elo");
  CHECK_THROWS_WITH(broken.get<cai::evaluation_report>(), ContainsSubstring("missing field 'elo'"));
  nlohmann::json bad_table = j;
  bad_table.at("tournaments")[0].at("table").at("wins")[0] = nlohmann::json::array({0});
  CHECK_THROWS_AS(bad_table.get<cai::evaluation_report>(), cai::validation_error);
}

TEST_CASE("non-finite numbers become null in the JSON", "[eval][report][json]") {
  cai::tournament_report t;
  t.name = "x";
  t.table = cai::tabulate({}, {"a"});
  t.elo = {1000.0};
  t.bradley_terry = {1000.0};
  t.bradley_terry_se = {HUGE_VAL};
  const nlohmann::json j = t;
  CHECK(j.at("bradley_terry_se")[0].is_null());
  const auto back = j.get<cai::tournament_report>();
  CHECK(std::isnan(back.bradley_terry_se[0]));
}

TEST_CASE("the harmlessness versus helpfulness plot is well-formed SVG with one point per snapshot", "[eval][report][svg]") {
  const auto r = sample_report();
  const std::string svg = cai::harmlessness_helpfulness_svg(r);
  CHECK_THAT(svg, StartsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  const auto s = scan(svg);
  CHECK(s.balanced);
  CHECK(s.roots == 1);
  CHECK(s.count(svg, "circle", "point") == 3);
  CHECK(s.count(svg, "polyline", "trajectory") == 1);
  CHECK(s.count(svg, "line", "error-bar") == 6);
  CHECK_THAT(svg, ContainsSubstring("<title>sl-cai</title>"));
  CHECK_THAT(svg, ContainsSubstring("CAI &lt;snapshots&gt; &amp; &quot;friends&quot;"));
  CHECK_THAT(svg, ContainsSubstring("helpfulness.bradley_terry"));

  // rates on the axes: only the snapshots with rates get a point
  const std::string rates = cai::harmlessness_helpfulness_svg(r, "helpfulness", "harmful.harmlessness");
  CHECK(scan(rates).balanced);
  CHECK(scan(rates).count(rates, "circle", "point") == 2);
  CHECK_THROWS_AS(cai::harmlessness_helpfulness_svg(r, "nothing", "harmlessness"), cai::config_error);
}

TEST_CASE("scatter points carry Bradley-Terry error bars", "[eval][report][svg]") {
  const auto r = sample_report();
  const auto points = cai::scatter_points(r, "helpfulness.bradley_terry", "harmlessness.elo");
  REQUIRE(points.size() == 3);
  CHECK(points[1].label == "sl-cai");
  CHECK(points[1].x == r.tournaments[0].bradley_terry[1]);
  CHECK_THAT(points[1].x_error, WithinAbs(1.96 * r.tournaments[0].bradley_terry_se[1], 1e-12));
  CHECK(points[1].y_error == 0.0);
  // fixed axes and a single point
  const std::vector<cai::plot_point> one{{"only", 0.5, 0.5}};
  cai::plot_options o;
  o.x_min = 0.0, o.x_max = 1.0, o.y_min = 0.0, o.y_max = 1.0;
  const std::string svg = cai::scatter_svg(one, o);
  CHECK(scan(svg).balanced);
  CHECK(scan(svg).count(svg, "circle", "point") == 1);
  CHECK_THAT(svg, ContainsSubstring("cx=\"345.0\""));  // 70 + 0.5 * (640 - 90)
  CHECK(scan(svg).count(svg, "polyline", "") == 0);
}

TEST_CASE("the reliability diagram draws the diagonal and one circle per non-empty bin", "[eval][report][svg]") {
  const auto r = sample_report();
  const std::string svg = cai::reliability_svg(r.calibration[0].data);
  CHECK_THAT(svg, StartsWith("<svg"));
  const auto s = scan(svg);
  CHECK(s.balanced);
  CHECK(s.roots == 1);
  CHECK(s.count(svg, "circle", "bin") == 4);
  CHECK(s.count(svg, "line", "diagonal") == 1);
  CHECK_THAT(svg, ContainsSubstring("ECE 0.350"));

  const auto path = std::filesystem::temp_directory_path() / "cai_test_eval_reliability.svg";
  cai::write_text_file(path, svg);
  CHECK(std::filesystem::file_size(path) == svg.size());
  std::filesystem::remove(path);
  CHECK_THROWS_AS(cai::write_text_file(path / "no" / "such" / "dir.svg", svg), cai::io_error);
}

TEST_CASE("a tournament that one snapshot sweeps is rated with a prior", "[eval][report][bradley_terry]") {
  const std::vector<cai::match> sweep{{0, 1, 0, 0.9}, {0, 1, 1, 0.8}};
  CHECK_THROWS_AS(cai::make_tournament("helpfulness", "q", sweep, {"rl", "base"}), cai::config_error);
  const auto t = cai::make_tournament("helpfulness", "q", sweep, {"rl", "base"}, {}, {.prior = 1.0});
  CHECK(t.bradley_terry[0] > t.bradley_terry[1]);
  CHECK_THAT(t.bradley_terry[0] + t.bradley_terry[1], WithinAbs(2000.0, 1e-7));
  CHECK(t.table.win_rate(0) == 1.0);
}
