// `cai study`: `cai run`'s constitution comparison over several seeds, with means, standard errors and the
// targets.
#pragma once

#include "run_world.hpp"

namespace cai_cli {

// `cai study`: the constitution comparison over several seeds (each a `cai run` into <out>/seed-S, resumed
// when run again), then every rate's mean and standard error, and the targets on the means with the
// standard errors of the paired differences.
inline int run_study(common_args a, const run_sizes& z, const std::string& method, std::size_t seeds, const std::string& only) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path out = a.out;
  std::vector<nlohmann::json> runs;
  const std::uint64_t first = a.seed;
  for (std::size_t i = 0; i < seeds; ++i) {
    common_args s = a;
    s.seed = first + i;
    s.out = (out / ("seed-" + std::to_string(s.seed))).string();
    std::cerr << "study: seed " << s.seed << " (" << i + 1 << "/" << seeds << ")\n";
    run_all(s, z, method, true, only, false);
    std::ifstream in(fs::path(s.out) / "metrics.json");
    runs.push_back(nlohmann::json::parse(in));
  }
  const std::string primary = runs.front()["constitution"].get<std::string>();
  const std::string snapshot = runs.front()["targets_snapshot"].get<std::string>();
  nlohmann::json summary{{"seeds", nlohmann::json::array()}, {"snapshot", snapshot}, {"constitution", primary}};
  for (const auto& r : runs) summary["seeds"].push_back(r["seed"]);
  auto stats = [&](auto get) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(get(r));
    double m = 0;
    for (double x : v) m += x / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - m) * (x - m);
    const double sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
    return nlohmann::json{{"mean", m}, {"sd", sd}, {"se", sd / std::sqrt(static_cast<double>(v.size()))}, {"values", v}};
  };
  std::string table = "| constitution | snapshot | harmful compliance | helpful (benign) | helpful (borderline) | evasive (all) | caveat where needed / elsewhere |\n"
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
  auto cell = [](const nlohmann::json& s) {
    char b[64];
    std::snprintf(b, sizeof b, "%.1f ± %.1f%%", 100 * s["mean"].get<double>(), 100 * s["se"].get<double>());
    return std::string(b);
  };
  for (const auto& [rate, v] : runs.front()["base"].items()) {
    if (rate == "requests") continue;
    summary["base"][rate] = stats([&](const nlohmann::json& r) { return r["base"][rate].get<double>(); });
  }
  table += "| - | base | " + cell(summary["base"]["harmful_compliance"]) + " | " + cell(summary["base"]["helpfulness"]) + " | " +
           cell(summary["base"]["borderline_helpfulness"]) + " | " + cell(summary["base"]["evasiveness"]) + " | " +
           cell(summary["base"]["caveat_where_needed"]) + " / " + cell(summary["base"]["caveat_elsewhere"]) + " |\n";
  for (const auto& [name, snaps] : runs.front()["constitutions"].items())
    for (const auto& [snap, rates] : snaps.items()) {
      for (const auto& [rate, v] : rates.items()) {
        if (rate == "requests") continue;
        summary["constitutions"][name][snap][rate] =
            stats([&](const nlohmann::json& r) { return r["constitutions"][name][snap][rate].get<double>(); });
      }
      const auto& s = summary["constitutions"][name][snap];
      table += "| " + name + " | " + snap + " | " + cell(s["harmful_compliance"]) + " | " + cell(s["helpfulness"]) + " | " +
               cell(s["borderline_helpfulness"]) + " | " + cell(s["evasiveness"]) + " | " + cell(s["caveat_where_needed"]) + " / " +
               cell(s["caveat_elsewhere"]) + " |\n";
    }
  for (const auto& [name, m] : runs.front()["base_skills"]["constitutions"].items()) {
    summary["base_skills"][name]["revision_agreement"] =
        stats([&](const nlohmann::json& r) { return r["base_skills"]["constitutions"][name]["revision_agreement"].get<double>(); });
    summary["base_skills"][name]["label_agreement"] =
        stats([&](const nlohmann::json& r) { return r["base_skills"]["constitutions"][name]["label_agreement"].get<double>(); });
  }
  summary["label_flip"]["flip_rate"] = stats([&](const nlohmann::json& r) { return r["base_skills"]["label_flip"]["flip_rate"].get<double>(); });
  summary["targets"] = compute_targets(runs, primary, snapshot);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary["seconds"] = seconds;
  std::ofstream(out / "study.json", std::ios::trunc) << summary.dump(2) << '\n';
  std::ofstream report(out / "study.md", std::ios::trunc);
  report << "# The constitution comparison over " << runs.size() << " seeds\n\nSeeds " << first << " to " << first + runs.size() - 1
         << "; mean ± standard error over seeds; targets on " << snapshot << ". " << static_cast<int>(seconds) << " s.\n\n"
         << table << "\n## Targets\n\n" << targets_table(summary["targets"]) << "\n";
  std::cout << "\n" << table << "\n" << targets_table(summary["targets"]) << "\nstudy: " << (out / "study.md").string() << "  "
            << (out / "study.json").string() << "\n";
  return 0;
}

struct study_command {
  CLI::App* cmd = nullptr;
  run_sizes z;
  std::string method = "both", critic_kind = "self", only;
  bool small = false;
  std::size_t seeds = 4;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("study", "the constitution comparison of 'cai run' over several seeds: means, standard errors, targets");
    add_common(cmd, a);
    add_world_options(cmd, z, method, critic_kind, only, small);
    cmd->add_option("--seeds", seeds, "seeds --seed, --seed + 1, ...")->check(CLI::Range(1, 64))->capture_default_str();
  }

  int run(const common_args& a) {
    z.dedicated_critic = critic_kind == "dedicated";
    return run_study(a, small ? small_sizes(z) : z, method, seeds, only);
  }
};

}  // namespace cai_cli
