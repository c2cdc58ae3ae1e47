// `cai audit`: a constitution's principle conflicts, coverage gaps and refusal rate.
#pragma once

#include "common.hpp"
#include "cai/critique/judge.hpp"
#include "cai/eval/audit.hpp"

namespace cai_cli {

struct audit_command {
  CLI::App* cmd = nullptr;
  std::string preferences, revisions;
  std::size_t limit = 0;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("audit", "audit a constitution: principle conflicts, coverage gaps, refusals");
    add_common(cmd, a);
    cmd->add_option("--preferences", preferences, "comparisons to label under every principle (TRL preference JSONL)")->required();
    cmd->add_option("--revisions", revisions, "SL-CAI records (revisions.jsonl) for the refusal audit");
    cmd->add_option("--limit", limit, "at most this many comparisons (0: all)");
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    const auto constitution = resolve_constitution(a.constitution);
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    auto prefs = cai::read_preferences(preferences);
    if (limit != 0 && prefs.size() > limit) prefs.resize(limit);
    std::vector<cai::comparison> pairs;
    std::vector<cai::exchange> exchanges;
    for (const auto& p : prefs) {
      pairs.push_back(p.pair);
      exchanges.push_back({p.pair.context, p.pair.response_a});
    }
    cai::choice_ranker<cai::native_model<cai::cpu_t>> ranker(model);
    cai::critique_judge<cai::native_model<cai::cpu_t>> judge(model);
    cai::constitution_audit report;
    report.constitution = constitution.name;
    report.disagreement = cai::audit_disagreement(ranker, constitution, std::span<const cai::comparison>(pairs),
                                                  {.swap_orders = true, .seed = a.seed});
    report.coverage = cai::audit_coverage(judge, constitution, std::span<const cai::exchange>(exchanges), a.seed);
    if (!revisions.empty()) {
      const auto traces = cai::read_revision_traces(revisions);
      report.refusals = cai::audit_refusals(std::span<const cai::revision_trace>(traces), cai::refusal_detector{});
    }
    std::ofstream(out / "audit.json", std::ios::trunc) << nlohmann::json(report).dump(2) << '\n';
    std::cout << cai::audit_table(report) << "\naudit: " << (out / "audit.json").string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
