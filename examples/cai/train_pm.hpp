// `cai train-pm`: a preference model on preference JSONL (AI or human labels).
#pragma once

#include "common.hpp"

namespace cai_cli {

struct train_pm_command {
  CLI::App* cmd = nullptr;
  std::string preferences;
  std::size_t steps = 100;
  float lr = 1e-4f;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("train-pm", "train a preference model on preference JSONL");
    add_common(cmd, a);
    cmd->add_option("--preferences", preferences, "TRL preference JSONL")->required();
    cmd->add_option("--steps", steps)->capture_default_str();
    cmd->add_option("--lr", lr)->capture_default_str();
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    const auto prefs = cai::read_preferences(preferences);
    auto p = cai::stages::train_preference_model(model, prefs, training(steps, 8, lr, a.lora), a.seed, out);
    std::vector<cai::preference_pair> pairs;
    cai::stages::to_pairs(model, prefs, &pairs, nullptr);
    const auto m = cai::evaluate_preferences(p, std::span<const cai::preference_pair>(pairs));
    std::cout << "train-pm: accuracy " << m.accuracy << " calibration error " << m.calibration_error << " on the training pairs; "
              << "model in " << (out / "model").string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
