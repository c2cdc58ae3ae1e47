// `cai dpo`: DPO of a policy on preference JSONL.
#pragma once

#include "common.hpp"

namespace cai_cli {

struct dpo_command {
  CLI::App* cmd = nullptr;
  std::string preferences;
  std::size_t steps = 100;
  float lr = 1e-4f;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("dpo", "DPO of a policy on preference JSONL");
    add_common(cmd, a);
    cmd->add_option("--preferences", preferences, "TRL preference JSONL")->required();
    cmd->add_option("--steps", steps)->capture_default_str();
    cmd->add_option("--lr", lr)->capture_default_str();
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    const auto prefs = cai::read_preferences(preferences);
    cai::stages::train_dpo(model, prefs, training(steps, 8, lr, a.lora), cai::dpo_options{}, a.seed, out / "checkpoint");
    cai::stages::save_policy(model, out / "policy");
    std::cout << "dpo: policy written to " << (out / "policy").string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
