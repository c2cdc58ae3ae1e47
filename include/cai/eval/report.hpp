/// @file eval/report.hpp
/// The evaluation report of a set of snapshots, as JSON (nlohmann-json) and as plots (SVG text, written
/// without any dependency): tournaments judged by a ranker (win table, Elo, Bradley-Terry with standard
/// errors), each snapshot's rates from a judge, and reliability data of preference or feedback models.
/// The main plot is harmlessness against helpfulness per snapshot, in the manner of Bai et al. 2022
/// (arXiv:2212.08073), figures 2 and 8 (Elo scores on both axes, one point per snapshot, joined in
/// training order); the reliability diagram follows their figure 5.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"
#include "cai/eval/calibration.hpp"
#include "cai/eval/rates.hpp"
#include "cai/eval/win_rate.hpp"
#include "cai/text/json.hpp"

namespace cai {

// ---------------------------------------------------------------------------------------------------
// The report

/// One tournament: every pair of snapshots compared under one principle.
struct tournament_report {
  std::string name;                      ///< e.g. "helpfulness", "harmlessness"; used in score keys
  std::string principle;                 ///< the principle (or question) the ranker was asked
  win_table table;                       ///< names: the snapshots, in report order
  std::vector<double> elo;               ///< sequential Elo, one per snapshot
  std::vector<double> bradley_terry;     ///< Bradley-Terry ratings (Elo scale)
  std::vector<double> bradley_terry_se;  ///< their standard errors
  friend bool operator==(const tournament_report&, const tournament_report&) = default;
};

/// Builds a tournament's report from its matches: the win table (ties by `elo.rule.tie_margin`), the
/// sequential Elo ratings and the Bradley-Terry fit.
/// @param names the snapshots, indexed by the matches.
/// @throws config_error as `tabulate`, `elo_ratings` and `bradley_terry` do; in particular when a
///         snapshot won or lost every game and `bt.prior` is 0 (pass a prior to rate such sweeps).
[[nodiscard]] inline tournament_report make_tournament(std::string name, std::string principle,
                                                       std::span<const match> matches, std::vector<std::string> names,
                                                       const elo_options& elo = {},
                                                       const bradley_terry_options& bt = {}) {
  tournament_report t;
  t.name = std::move(name);
  t.principle = std::move(principle);
  const std::size_t n = names.size();
  t.table = tabulate(matches, std::move(names), elo.rule);
  t.elo = elo_ratings(matches, n, elo);
  bradley_terry_fit fit = bradley_terry(matches, n, bt);
  t.bradley_terry = std::move(fit.ratings);
  t.bradley_terry_se = std::move(fit.standard_errors);
  return t;
}

/// One snapshot's rates.
struct snapshot_rates {
  std::string snapshot;
  rate_report rates;
  friend bool operator==(const snapshot_rates&, const snapshot_rates&) = default;
};

/// Reliability data of one model (a preference model, a feedback model).
struct named_reliability {
  std::string name;
  reliability_data data;
  friend bool operator==(const named_reliability&, const named_reliability&) = default;
};

/// Everything measured about a set of snapshots.
struct evaluation_report {
  std::string title;
  std::vector<std::string> snapshots;  ///< report order: the order of the points on the plot
  std::vector<tournament_report> tournaments;
  std::vector<snapshot_rates> rates;
  std::vector<named_reliability> calibration;

  /// The numbers known for `snapshot`, by key:
  /// - per tournament T: "T.elo", "T.bradley_terry", "T.bradley_terry_se", "T.win_rate";
  /// - rates over all responses: "harmlessness", "helpfulness", "evasiveness", "disrespect";
  /// - rates of request group G: "G.harmlessness", "G.helpfulness", "G.evasiveness", "G.disrespect".
  [[nodiscard]] std::map<std::string, double, std::less<>> scores(std::string_view snapshot) const {
    std::map<std::string, double, std::less<>> out;
    for (const tournament_report& t : tournaments) {
      const auto& names = t.table.names;
      const auto it = std::find(names.begin(), names.end(), snapshot);
      if (it == names.end()) continue;
      const auto i = static_cast<std::size_t>(it - names.begin());
      if (i < t.elo.size()) out[t.name + ".elo"] = t.elo[i];
      if (i < t.bradley_terry.size()) out[t.name + ".bradley_terry"] = t.bradley_terry[i];
      if (i < t.bradley_terry_se.size()) out[t.name + ".bradley_terry_se"] = t.bradley_terry_se[i];
      out[t.name + ".win_rate"] = t.table.win_rate(i);
    }
    for (const snapshot_rates& s : rates) {
      if (s.snapshot != snapshot) continue;
      auto put = [&](const std::string& prefix, const response_rates& r) {
        out[prefix + "harmlessness"] = r.harmlessness();
        out[prefix + "helpfulness"] = r.helpfulness();
        out[prefix + "evasiveness"] = r.evasiveness();
        out[prefix + "disrespect"] = r.disrespect();
      };
      put("", s.rates.all);
      for (const auto& [group, r] : s.rates.groups) put(group + ".", r);
    }
    return out;
  }
  friend bool operator==(const evaluation_report&, const evaluation_report&) = default;
};

// ---------------------------------------------------------------------------------------------------
// JSON (found by argument-dependent lookup). Reading validates nothing beyond the fields' presence and
// types; a missing or mistyped field is a validation_error naming it.

namespace detail {
/// JSON has no infinity or NaN: they are written as null and read back as NaN.
inline nlohmann::json finite_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); }
inline std::vector<double> doubles_from(const nlohmann::json& j, const char* object, const char* field) {
  const auto arr = required_field<nlohmann::json>(j, object, field);
  if (!arr.is_array()) throw validation_error(std::string(object) + ": field '" + field + "' must be an array");
  std::vector<double> out;
  for (const auto& x : arr) out.push_back(x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>());
  return out;
}
inline nlohmann::json doubles_to(const std::vector<double>& v) {
  nlohmann::json arr = nlohmann::json::array();
  for (double x : v) arr.push_back(finite_or_null(x));
  return arr;
}
}  // namespace detail

inline void to_json(nlohmann::json& j, const match& m) {
  j = nlohmann::json{{"a", m.a}, {"b", m.b}, {"prompt", m.prompt}, {"p_a", m.p_a}};
}
inline void from_json(const nlohmann::json& j, match& m) {
  m.a = detail::required_field<std::size_t>(j, "match", "a");
  m.b = detail::required_field<std::size_t>(j, "match", "b");
  m.prompt = detail::required_field<std::size_t>(j, "match", "prompt");
  m.p_a = detail::required_field<double>(j, "match", "p_a");
}

inline void to_json(nlohmann::json& j, const win_table& t) {
  nlohmann::json rates = nlohmann::json::array();
  for (std::size_t i = 0; i < t.names.size(); ++i) rates.push_back(t.win_rate(i));
  j = nlohmann::json{{"names", t.names}, {"wins", t.wins}, {"ties", t.ties}, {"win_rate", rates}};
}
inline void from_json(const nlohmann::json& j, win_table& t) {
  t.names = detail::required_field<std::vector<std::string>>(j, "win table", "names");
  t.wins = detail::required_field<std::vector<std::vector<std::size_t>>>(j, "win table", "wins");
  t.ties = detail::required_field<std::vector<std::vector<std::size_t>>>(j, "win table", "ties");
  const std::size_t n = t.names.size();
  auto square = [&](const auto& m) {
    return m.size() == n && std::all_of(m.begin(), m.end(), [&](const auto& row) { return row.size() == n; });
  };
  if (!square(t.wins) || !square(t.ties))
    throw validation_error("win table: 'wins' and 'ties' must be " + std::to_string(n) + " x " + std::to_string(n) +
                           " matrices, one row and column per name");
}

inline void to_json(nlohmann::json& j, const tournament_report& t) {
  j = nlohmann::json{{"name", t.name},
                     {"principle", t.principle},
                     {"table", t.table},
                     {"elo", detail::doubles_to(t.elo)},
                     {"bradley_terry", detail::doubles_to(t.bradley_terry)},
                     {"bradley_terry_se", detail::doubles_to(t.bradley_terry_se)}};
}
inline void from_json(const nlohmann::json& j, tournament_report& t) {
  t.name = detail::required_field<std::string>(j, "tournament", "name");
  t.principle = detail::required_field<std::string>(j, "tournament", "principle");
  t.table = detail::required_field<win_table>(j, "tournament", "table");
  t.elo = detail::doubles_from(j, "tournament", "elo");
  t.bradley_terry = detail::doubles_from(j, "tournament", "bradley_terry");
  t.bradley_terry_se = detail::doubles_from(j, "tournament", "bradley_terry_se");
}

inline void to_json(nlohmann::json& j, const response_rates& r) {
  j = nlohmann::json{{"count", r.count},
                     {"harmful", r.harmful},
                     {"helpful", r.helpful},
                     {"evasive", r.evasive},
                     {"disrespectful", r.disrespectful},
                     {"harmlessness", r.harmlessness()},
                     {"helpfulness", r.helpfulness()},
                     {"evasiveness", r.evasiveness()},
                     {"disrespect", r.disrespect()}};
}
inline void from_json(const nlohmann::json& j, response_rates& r) {
  r.count = detail::required_field<std::size_t>(j, "rates", "count");
  r.harmful = detail::required_field<std::size_t>(j, "rates", "harmful");
  r.helpful = detail::required_field<std::size_t>(j, "rates", "helpful");
  r.evasive = detail::required_field<std::size_t>(j, "rates", "evasive");
  r.disrespectful = detail::required_field<std::size_t>(j, "rates", "disrespectful");
}

inline void to_json(nlohmann::json& j, const rate_report& r) {
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [name, g] : r.groups) groups[name] = g;
  j = nlohmann::json{{"all", r.all}, {"groups", groups}};
}
inline void from_json(const nlohmann::json& j, rate_report& r) {
  r.all = detail::required_field<response_rates>(j, "rate report", "all");
  r.groups.clear();
  const auto groups = detail::required_field<nlohmann::json>(j, "rate report", "groups");
  if (!groups.is_object()) throw validation_error("rate report: field 'groups' must be an object");
  for (const auto& [name, g] : groups.items()) r.groups[name] = g.get<response_rates>();
}

inline void to_json(nlohmann::json& j, const reliability_bin& b) {
  j = nlohmann::json{{"lower", b.lower},
                     {"upper", b.upper},
                     {"count", b.count},
                     {"mean_predicted", b.mean_predicted},
                     {"mean_observed", b.mean_observed}};
}
inline void from_json(const nlohmann::json& j, reliability_bin& b) {
  b.lower = detail::required_field<double>(j, "reliability bin", "lower");
  b.upper = detail::required_field<double>(j, "reliability bin", "upper");
  b.count = detail::required_field<std::size_t>(j, "reliability bin", "count");
  b.mean_predicted = detail::required_field<double>(j, "reliability bin", "mean_predicted");
  b.mean_observed = detail::required_field<double>(j, "reliability bin", "mean_observed");
}

inline void to_json(nlohmann::json& j, const reliability_data& r) {
  j = nlohmann::json{{"count", r.count},
                     {"expected_calibration_error", r.expected_calibration_error},
                     {"max_calibration_error", r.max_calibration_error},
                     {"brier_score", r.brier_score},
                     {"log_loss", r.log_loss},
                     {"bins", r.bins}};
}
inline void from_json(const nlohmann::json& j, reliability_data& r) {
  r.count = detail::required_field<std::size_t>(j, "reliability", "count");
  r.expected_calibration_error = detail::required_field<double>(j, "reliability", "expected_calibration_error");
  r.max_calibration_error = detail::required_field<double>(j, "reliability", "max_calibration_error");
  r.brier_score = detail::required_field<double>(j, "reliability", "brier_score");
  r.log_loss = detail::required_field<double>(j, "reliability", "log_loss");
  r.bins = detail::required_field<std::vector<reliability_bin>>(j, "reliability", "bins");
}

/// The report as JSON:
///
///     {"title": ..., "snapshots": [{"name": ..., "scores": {"helpfulness.elo": ..., ...}}, ...],
///      "tournaments": [...], "rates": [{"snapshot": ..., "all": {...}, "groups": {...}}],
///      "calibration": [{"name": ..., "count": ..., "bins": [...], ...}]}
///
/// "scores" (`evaluation_report::scores`) is derived, for readers and plotting tools, and ignored when
/// reading. Infinite or NaN numbers are written as null.
inline void to_json(nlohmann::json& j, const evaluation_report& r) {
  nlohmann::json snapshots = nlohmann::json::array();
  for (const std::string& s : r.snapshots) {
    nlohmann::json scores = nlohmann::json::object();
    for (const auto& [key, value] : r.scores(s)) scores[key] = detail::finite_or_null(value);
    snapshots.push_back({{"name", s}, {"scores", scores}});
  }
  nlohmann::json rates = nlohmann::json::array();
  for (const auto& s : r.rates) {
    nlohmann::json x = s.rates;
    x["snapshot"] = s.snapshot;
    rates.push_back(std::move(x));
  }
  nlohmann::json calibration = nlohmann::json::array();
  for (const auto& c : r.calibration) {
    nlohmann::json x = c.data;
    x["name"] = c.name;
    calibration.push_back(std::move(x));
  }
  j = nlohmann::json{{"title", r.title},
                     {"snapshots", snapshots},
                     {"tournaments", r.tournaments},
                     {"rates", rates},
                     {"calibration", calibration}};
}
inline void from_json(const nlohmann::json& j, evaluation_report& r) {
  r.title = detail::required_field<std::string>(j, "evaluation report", "title");
  r.snapshots.clear();
  for (const auto& s : detail::required_field<nlohmann::json>(j, "evaluation report", "snapshots"))
    r.snapshots.push_back(detail::required_field<std::string>(s, "snapshot", "name"));
  r.tournaments = detail::required_field<std::vector<tournament_report>>(j, "evaluation report", "tournaments");
  r.rates.clear();
  for (const auto& s : detail::required_field<nlohmann::json>(j, "evaluation report", "rates"))
    r.rates.push_back({detail::required_field<std::string>(s, "rates", "snapshot"), s.get<rate_report>()});
  r.calibration.clear();
  for (const auto& c : detail::required_field<nlohmann::json>(j, "evaluation report", "calibration"))
    r.calibration.push_back({detail::required_field<std::string>(c, "calibration", "name"), c.get<reliability_data>()});
}

/// Writes `text` to `path`, replacing the file.
/// @throws io_error when the file cannot be written.
inline void write_text_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw io_error(path.string(), "cannot open for writing (does the folder exist?)");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw io_error(path.string(), "writing failed (disk full?)");
}

/// Writes the report as indented JSON.
/// @throws io_error when the file cannot be written.
inline void write_report(const std::filesystem::path& path, const evaluation_report& report) {
  write_text_file(path, nlohmann::json(report).dump(2) + "\n");
}

/// Reads a report written by `write_report`.
/// @throws io_error when the file cannot be read; parse_error for text that is not JSON;
///         validation_error for a missing or mistyped field.
[[nodiscard]] inline evaluation_report read_report(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path.string(), "cannot open for reading");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw parse_error(path.string(), 0, 0, std::string("not JSON: ") + e.what());
  }
  return j.get<evaluation_report>();
}

// ---------------------------------------------------------------------------------------------------
// SVG plots

/// One point of a scatter plot. Error bars are half-widths (0: none).
struct plot_point {
  std::string label;
  double x = 0.0;
  double y = 0.0;
  double x_error = 0.0;
  double y_error = 0.0;
};

/// Options of the SVG plots. A NaN bound is computed from the data (with a 10% margin).
struct plot_options {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 640;
  int height = 480;
  double x_min = std::numeric_limits<double>::quiet_NaN();
  double x_max = std::numeric_limits<double>::quiet_NaN();
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
  /// Join the points in order with a line (snapshots in training order, as in the paper's figures).
  bool connect = true;
  /// Label each point with its `label`.
  bool label_points = true;
};

namespace detail {
inline std::string svg_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}
/// A number with `digits` decimals, in the C locale whatever the global locale.
inline std::string svg_number(double v, int digits = 2) {
  if (!std::isfinite(v)) v = 0.0;
  if (std::abs(v) < 0.5 * std::pow(10.0, -digits)) v = 0.0;  // no "-0.00"
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::fixed, digits);
  return std::string(buffer, result.ptr);
}
/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
inline double tick_step(double span, int target = 5) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}
/// Decimals needed to print ticks of `step` distinctly.
inline int tick_digits(double step) { return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9))); }

/// The frame of a plot: axes, ticks, labels and title; maps data to pixels.
struct svg_frame {
  double x0, x1, y0, y1;         // data range
  double left = 70, right = 20, top = 40, bottom = 55;
  double width, height;

  [[nodiscard]] double px(double x) const { return left + (x - x0) / (x1 - x0) * (width - left - right); }
  [[nodiscard]] double py(double y) const { return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom); }

  void open(std::string& out, const plot_options& o) const {
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(o.width) + "\" height=\"" +
           std::to_string(o.height) + "\" viewBox=\"0 0 " + std::to_string(o.width) + " " +
           std::to_string(o.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    out += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(o.width) + "\" height=\"" + std::to_string(o.height) +
           "\" fill=\"white\"/>\n";
    if (!o.title.empty())
      out += "<text x=\"" + svg_number(width / 2, 1) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
             svg_escape(o.title) + "</text>\n";
    // axes box
    out += "<rect x=\"" + svg_number(left, 1) + "\" y=\"" + svg_number(top, 1) + "\" width=\"" +
           svg_number(width - left - right, 1) + "\" height=\"" + svg_number(height - top - bottom, 1) +
           "\" fill=\"none\" stroke=\"black\"/>\n";
    const double xs = tick_step(x1 - x0), ys = tick_step(y1 - y0);
    const int xd = tick_digits(xs), yd = tick_digits(ys);
    out += "<g class=\"ticks\" stroke=\"#dddddd\">\n";
    std::string labels;
    for (double t = std::ceil(x0 / xs - 1e-9) * xs; t <= x1 + 1e-9 * xs; t += xs) {
      out += "<line x1=\"" + svg_number(px(t), 1) + "\" y1=\"" + svg_number(top, 1) + "\" x2=\"" +
             svg_number(px(t), 1) + "\" y2=\"" + svg_number(height - bottom, 1) + "\"/>\n";
      labels += "<text x=\"" + svg_number(px(t), 1) + "\" y=\"" + svg_number(height - bottom + 16, 1) +
                "\" text-anchor=\"middle\">" + svg_number(t, xd) + "</text>\n";
    }
    for (double t = std::ceil(y0 / ys - 1e-9) * ys; t <= y1 + 1e-9 * ys; t += ys) {
      out += "<line x1=\"" + svg_number(left, 1) + "\" y1=\"" + svg_number(py(t), 1) + "\" x2=\"" +
             svg_number(width - right, 1) + "\" y2=\"" + svg_number(py(t), 1) + "\"/>\n";
      labels += "<text x=\"" + svg_number(left - 6, 1) + "\" y=\"" + svg_number(py(t) + 4, 1) +
                "\" text-anchor=\"end\">" + svg_number(t, yd) + "</text>\n";
    }
    out += "</g>\n<g class=\"tick-labels\">\n" + labels + "</g>\n";
    if (!o.x_label.empty())
      out += "<text x=\"" + svg_number((left + width - right) / 2, 1) + "\" y=\"" + svg_number(height - 12, 1) +
             "\" text-anchor=\"middle\">" + svg_escape(o.x_label) + "</text>\n";
    if (!o.y_label.empty()) {
      const std::string cy = svg_number((top + height - bottom) / 2, 1);
      out += "<text x=\"16\" y=\"" + cy + "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " + cy + ")\">" +
             svg_escape(o.y_label) + "</text>\n";
    }
  }
};

/// The data range of values, widened by 10% (or by 1 when all are equal), unless fixed by the options.
inline std::pair<double, double> svg_range(double lo, double hi, double fixed_lo, double fixed_hi) {
  if (!(lo <= hi)) lo = 0.0, hi = 1.0;
  const double pad = hi > lo ? 0.1 * (hi - lo) : (lo == 0.0 ? 1.0 : 0.1 * std::abs(lo));
  double a = std::isnan(fixed_lo) ? lo - pad : fixed_lo;
  double b = std::isnan(fixed_hi) ? hi + pad : fixed_hi;
  if (!(b > a)) b = a + 1.0;
  return {a, b};
}
}  // namespace detail

/// A scatter plot as SVG text: one `<circle class="point">` per point (its `<title>` is the label, for
/// tooltips), optional error bars and labels, the points joined in order when `options.connect`.
[[nodiscard]] inline std::string scatter_svg(std::span<const plot_point> points, const plot_options& options = {}) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& p : points) {
    xlo = std::min(xlo, p.x - p.x_error), xhi = std::max(xhi, p.x + p.x_error);
    ylo = std::min(ylo, p.y - p.y_error), yhi = std::max(yhi, p.y + p.y_error);
  }
  const auto [x0, x1] = detail::svg_range(xlo, xhi, options.x_min, options.x_max);
  const auto [y0, y1] = detail::svg_range(ylo, yhi, options.y_min, options.y_max);
  const detail::svg_frame f{x0, x1, y0, y1, 70, 20, 40, 55, static_cast<double>(options.width),
                            static_cast<double>(options.height)};
  std::string out;
  f.open(out, options);
  using detail::svg_number;
  if (options.connect && points.size() > 1) {
    out += "<polyline class=\"trajectory\" fill=\"none\" stroke=\"#4477aa\" stroke-width=\"1.5\" points=\"";
    for (std::size_t i = 0; i < points.size(); ++i)
      out += (i ? " " : "") + svg_number(f.px(points[i].x), 1) + "," + svg_number(f.py(points[i].y), 1);
    out += "\"/>\n";
  }
  for (const auto& p : points) {
    const std::string cx = svg_number(f.px(p.x), 1), cy = svg_number(f.py(p.y), 1);
    if (p.x_error > 0.0)
      out += "<line class=\"error-bar\" stroke=\"#888888\" x1=\"" + svg_number(f.px(p.x - p.x_error), 1) + "\" y1=\"" +
             cy + "\" x2=\"" + svg_number(f.px(p.x + p.x_error), 1) + "\" y2=\"" + cy + "\"/>\n";
    if (p.y_error > 0.0)
      out += "<line class=\"error-bar\" stroke=\"#888888\" x1=\"" + cx + "\" y1=\"" +
             svg_number(f.py(p.y - p.y_error), 1) + "\" x2=\"" + cx + "\" y2=\"" +
             svg_number(f.py(p.y + p.y_error), 1) + "\"/>\n";
    out += "<circle class=\"point\" cx=\"" + cx + "\" cy=\"" + cy + "\" r=\"5\" fill=\"#cc3311\"><title>" +
           detail::svg_escape(p.label) + "</title></circle>\n";
    if (options.label_points && !p.label.empty())
      out += "<text class=\"point-label\" x=\"" + svg_number(f.px(p.x) + 8, 1) + "\" y=\"" +
             svg_number(f.py(p.y) - 8, 1) + "\">" + detail::svg_escape(p.label) + "</text>\n";
  }
  out += "</svg>\n";
  return out;
}

/// The points (x, y) of every snapshot of `report` that has both scores (`evaluation_report::scores`
/// keys), in report order. A Bradley-Terry key ("T.bradley_terry") gets error bars of `z` standard errors.
[[nodiscard]] inline std::vector<plot_point> scatter_points(const evaluation_report& report, std::string_view x_key,
                                                            std::string_view y_key, double z = 1.96) {
  std::vector<plot_point> out;
  auto error_of = [&](const auto& scores, std::string_view key) {
    constexpr std::string_view bt = ".bradley_terry";
    if (key.size() < bt.size() || key.substr(key.size() - bt.size()) != bt) return 0.0;
    const auto it = scores.find(std::string(key) + "_se");
    return it == scores.end() || !std::isfinite(it->second) ? 0.0 : z * it->second;
  };
  for (const std::string& s : report.snapshots) {
    const auto scores = report.scores(s);
    const auto x = scores.find(x_key), y = scores.find(y_key);
    if (x == scores.end() || y == scores.end()) continue;
    out.push_back({s, x->second, y->second, error_of(scores, x_key), error_of(scores, y_key)});
  }
  return out;
}

/// The paper's plot: harmlessness (y) against helpfulness (x), one point per snapshot, joined in report
/// order. By default the axes are the Bradley-Terry Elo ratings of the tournaments named "helpfulness" and
/// "harmlessness", as in Bai et al. 2022, figure 2; pass rate keys ("benign.helpfulness",
/// "harmful.harmlessness") to plot the judge's rates instead.
/// @throws config_error when no snapshot has both scores.
[[nodiscard]] inline std::string harmlessness_helpfulness_svg(const evaluation_report& report,
                                                              std::string_view x_key = "helpfulness.bradley_terry",
                                                              std::string_view y_key = "harmlessness.bradley_terry",
                                                              plot_options options = {}) {
  const auto points = scatter_points(report, x_key, y_key);
  if (points.empty())
    throw config_error("harmlessness_helpfulness_svg: no snapshot of the report has both '" + std::string(x_key) +
                       "' and '" + std::string(y_key) + "'; see evaluation_report::scores for the keys");
  if (options.title.empty()) options.title = report.title.empty() ? "Harmlessness vs helpfulness" : report.title;
  if (options.x_label.empty()) options.x_label = std::string(x_key);
  if (options.y_label.empty()) options.y_label = std::string(y_key);
  return scatter_svg(points, options);
}

/// A reliability diagram as SVG text: the diagonal (perfect calibration), and one `<circle class="bin">`
/// per non-empty bin at (mean predicted, mean observed), its radius growing with the bin's count.
[[nodiscard]] inline std::string reliability_svg(const reliability_data& data, plot_options options = {}) {
  if (options.title.empty()) options.title = "Calibration";
  if (options.x_label.empty()) options.x_label = "predicted probability";
  if (options.y_label.empty()) options.y_label = "observed frequency";
  const double x0 = std::isnan(options.x_min) ? 0.0 : options.x_min;
  const double x1 = std::isnan(options.x_max) ? 1.0 : options.x_max;
  const double y0 = std::isnan(options.y_min) ? 0.0 : options.y_min;
  const double y1 = std::isnan(options.y_max) ? 1.0 : options.y_max;
  const detail::svg_frame f{x0, x1, y0, y1, 70, 20, 40, 55, static_cast<double>(options.width),
                            static_cast<double>(options.height)};
  std::string out;
  f.open(out, options);
  using detail::svg_number;
  const double lo = std::max(x0, y0), hi = std::min(x1, y1);
  out += "<line class=\"diagonal\" stroke=\"#888888\" stroke-dasharray=\"4 4\" x1=\"" + svg_number(f.px(lo), 1) +
         "\" y1=\"" + svg_number(f.py(lo), 1) + "\" x2=\"" + svg_number(f.px(hi), 1) + "\" y2=\"" +
         svg_number(f.py(hi), 1) + "\"/>\n";
  std::size_t largest = 1;
  for (const auto& b : data.bins) largest = std::max(largest, b.count);
  std::string line;
  for (const auto& b : data.bins) {
    if (b.count == 0) continue;
    const std::string cx = svg_number(f.px(b.mean_predicted), 1), cy = svg_number(f.py(b.mean_observed), 1);
    line += (line.empty() ? "" : " ") + cx + "," + cy;
    const double r = 3.0 + 7.0 * std::sqrt(static_cast<double>(b.count) / static_cast<double>(largest));
    out += "<circle class=\"bin\" cx=\"" + cx + "\" cy=\"" + cy + "\" r=\"" + svg_number(r, 1) +
           "\" fill=\"#cc3311\" fill-opacity=\"0.7\"><title>[" + svg_number(b.lower) + ", " + svg_number(b.upper) +
           "): " + std::to_string(b.count) + "</title></circle>\n";
  }
  if (options.connect && !line.empty())
    out += "<polyline class=\"reliability\" fill=\"none\" stroke=\"#cc3311\" points=\"" + line + "\"/>\n";
  out += "<text x=\"" + svg_number(f.px(x0) + 8, 1) + "\" y=\"" + svg_number(f.py(y1) + 16, 1) + "\">ECE " +
         svg_number(data.expected_calibration_error, 3) + "</text>\n";
  out += "</svg>\n";
  return out;
}

}  // namespace cai
