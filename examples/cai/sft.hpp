// `cai sft`: supervised fine-tuning on critique records (their final revisions).
#pragma once

#include "common.hpp"

namespace cai_cli {

struct sft_command {
  CLI::App* cmd = nullptr;
  std::string data;
  std::size_t steps = 100;
  float lr = 1e-4f;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("sft", "fine-tune on the final revisions of critique records");
    add_common(cmd, a);
    cmd->add_option("--data", data, "critique records (the revisions.jsonl of 'cai critique')")->required();
    cmd->add_option("--steps", steps)->capture_default_str();
    cmd->add_option("--lr", lr)->capture_default_str();
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    std::vector<cai::sft_sequence> sequences;
    for (const auto& t : cai::read_revision_traces(data))
      sequences.push_back(cai::stages::to_sequence(model, t.context, t.final_response()));
    cai::stages::train_sft(model.model(), sequences, training(steps, 8, lr, a.lora), a.seed, out / "checkpoint");
    cai::stages::save_policy(model, out / "policy");
    std::cout << "sft: policy written to " << (out / "policy").string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
