// `cai run` on a real model (SmolLM2 or any directory or GGUF): SL-CAI and RL-CAI by DPO on red-team
// prompts; no oracle exists for real text, so the report shows what the model wrote.
#pragma once

#include "run_world.hpp"

namespace cai_cli {

#ifndef CAI_SHARED_DATA_DIR
#define CAI_SHARED_DATA_DIR "../shared/data"
#endif

// `cai run` on a real model: no oracle exists for real text, so the report shows what the model wrote
// (answers, critiques, revisions, labels and their principles) and the AI-judged statistics.
inline int run_real(const common_args& a, const std::string& prompts_file, std::size_t n_prompts, std::size_t steps,
             cai::decode_weights decode) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path out = a.out;
  fs::create_directories(out / "prompts");
  const auto constitution = resolve_constitution(a.constitution == "world" ? "default" : a.constitution);
  const fs::path base = resolve_model(a.model);
  auto red = read_any_prompts(prompts_file, n_prompts);
  const cai::world::assistant_world world;  // helpful prompts: the world's benign requests (no oracle here)
  std::vector<std::string> helpful;
  for (const auto& r : world.generate_requests(cai::world::split::train, 3 * n_prompts, a.seed))
    if (r.kind == cai::world::request_kind::benign && helpful.size() < n_prompts) helpful.push_back(r.text);
  const fs::path red_path = out / "prompts" / "red_team.jsonl", helpful_path = out / "prompts" / "helpful.jsonl";
  cai::stages::write_prompts(red_path, red);
  cai::stages::write_prompts(helpful_path, helpful);

  cai::sl_cai_stage_options sl;
  sl.engine.batch_size = 8;
  sl.engine.response_generation.max_new_tokens = 64;
  sl.critic.critique_generation.max_new_tokens = 64;
  sl.critic.revision_generation.max_new_tokens = 64;
  sl.helpful_samples = n_prompts;
  sl.helpful_generation.max_new_tokens = 64;
  sl.training = training(steps, 4, 2e-4f, true);
  sl.decode = decode;
  const fs::path sl_policy = run_sl_cai<4>(base, red_path, helpful_path, constitution, sl, a.seed, out / "sl-cai");

  cai::rl_stage_options rl;
  rl.prompts_per_kind = n_prompts;
  rl.decode = decode;
  // A 135M model sampled at temperature 1 writes word salad; 0.7 with nucleus 0.9 keeps both responses
  // of a pair readable while they still differ.
  for (auto* g : {&rl.pairs.first, &rl.pairs.second}) {
    g->max_new_tokens = 48;
    g->temperature = 0.7;
    g->top_p = 0.9;
  }
  rl.policy_training = training(steps, 4, 1e-4f, true);
  const fs::path rl_policy = run_rlaif<cai::dpo_method>(sl_policy, red_path, helpful_path, constitution, rl, a.seed, out / "rl-cai-dpo");

  // the report: what the model wrote, and the AI-judged statistics
  const auto traces = cai::read_revision_traces(out / "sl-cai" / "1-sl-cai" / "revisions.jsonl");
  const auto labels = cai::read_preferences(out / "rl-cai-dpo" / "1-rlaif" / "ai_preferences.jsonl");
  double mean_confidence = 0.0;
  std::size_t decided = 0;
  for (const auto& l : labels) {
    mean_confidence += std::max(l.p_a, 1.0 - l.p_a) / static_cast<double>(labels.size());
    decided += std::abs(l.p_a - 0.5) > 0.1 ? 1 : 0;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json metrics{{"model", a.model}, {"constitution", constitution.name}, {"seed", a.seed},
                         {"red_team_prompts", red.size()}, {"revision_records", traces.size()},
                         {"ai_labels", labels.size()}, {"mean_label_confidence", mean_confidence},
                         {"labels_beyond_60_40", decided}, {"seconds", seconds},
                         {"policies", {{"sl_cai", sl_policy.string()}, {"rl_cai_dpo", rl_policy.string()}}}};
  std::ofstream(out / "metrics.json", std::ios::trunc) << metrics.dump(2) << '\n';
  std::ofstream report(out / "report.md", std::ios::trunc);
  report << "# Constitutional AI on " << a.model << "\n\nConstitution: " << constitution.name << "; " << red.size()
         << " red-team prompts from " << prompts_file << "; seed " << a.seed << "; " << static_cast<int>(seconds)
         << " s. No oracle exists for real text: below is what the model wrote.\n\n"
         << "AI labels: " << labels.size() << ", mean confidence max(p, 1-p) = " << mean_confidence << ", "
         << decided << " beyond 60/40.\n\n## Critique and revision\n";
  for (const auto& t : traces) {
    report << "\n### " << t.context.back().content << "\n\n- **Initial:** " << t.initial_response << "\n";
    for (const auto& step : t.steps)
      report << "- **" << step.principle << "** critique: " << step.critique << "\n  revision: " << step.revision << "\n";
  }
  report << "\n## AI labels\n";
  for (const auto& l : labels)
    report << "\n- " << l.pair.context.back().content << " | principle " << l.principle << " | P(A) = " << l.p_a
           << "\n  (A) " << l.pair.response_a << "\n  (B) " << l.pair.response_b << "\n";
  std::cout << "\nreal model: " << traces.size() << " critique records, " << labels.size() << " AI labels (mean confidence "
            << mean_confidence << "), LoRA SFT and DPO done in " << static_cast<int>(seconds) << " s\nreport: "
            << (out / "report.md").string() << "  metrics: " << (out / "metrics.json").string() << "\n";
  return 0;
}

}  // namespace cai_cli
