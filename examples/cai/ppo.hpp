// `cai ppo`: PPO of a policy against a preference model.
#pragma once

#include "common.hpp"

namespace cai_cli {

struct ppo_command {
  CLI::App* cmd = nullptr;
  std::string pm_dir, prompts_file;
  std::size_t steps = 100, limit = 0;
  float lr = 1e-4f;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("ppo", "PPO of a policy against a preference model");
    add_common(cmd, a);
    cmd->add_option("--pm", pm_dir, "a preference model directory (from 'cai train-pm')")->required();
    cmd->add_option("--prompts", prompts_file, "JSONL {\"prompt\"} or HH-RLHF transcripts")->required();
    cmd->add_option("--steps", steps)->capture_default_str();
    cmd->add_option("--lr", lr)->capture_default_str();
    cmd->add_option("--limit", limit, "at most this many prompts (0: all)");
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    auto p = cai::preference_model<cai::cpu_t>::load(pm_dir);
    const auto contexts = cai::stages::as_dialogues(read_any_prompts(prompts_file, limit));
    cai::stages::train_ppo(model, p, contexts, training(steps, 8, lr, a.lora), cai::ppo_options{}, a.seed, out / "checkpoint");
    cai::stages::save_policy(model, out / "policy");
    std::cout << "ppo: policy written to " << (out / "policy").string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
