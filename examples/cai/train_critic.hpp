// `cai train-critic`: a dedicated critique model (the paper's separate critique models), fine-tuned on
// critique records (critique and revision turns) or on the assistant world's worked rounds.
#pragma once

#include "common.hpp"

namespace cai_cli {

struct train_critic_command {
  CLI::App* cmd = nullptr;
  std::size_t world_rounds = 0, steps = 100;
  float lr = 3e-4f;
  std::string data;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("train-critic", "fine-tune a dedicated critique model on critique records");
    add_common(cmd, a);
    cmd->add_option("--data", data,
                    "critique records (revisions.jsonl of 'cai critique' or SL-CAI); principles found by name in --constitution");
    cmd->add_option("--world", world_rounds, "train on this many worked rounds of the assistant world instead");
    cmd->add_option("--steps", steps)->capture_default_str();
    cmd->add_option("--lr", lr)->capture_default_str();
  }

  int run(const common_args& a) {
    const auto constitution = resolve_constitution(a.constitution);
    std::vector<cai::critique_example> examples;
    if (world_rounds != 0) {
      examples = cai::world::critique_examples(cai::world::assistant_world{}, world_rounds, a.seed);
    } else {
      if (data.empty()) throw cai::config_error("cai train-critic: give --data FILE or --world N");
      const auto traces = cai::read_revision_traces(data);
      examples = cai::stages::critique_examples(std::span<const cai::revision_trace>(traces), constitution);
      if (examples.empty())
        throw cai::io_error(data, "no round of these records names a principle of the constitution '" + constitution.name + "'");
    }
    const fs::path dir = train_critic(resolve_model(a.model), examples, steps, lr, a.lora, a.seed, a.out);
    std::cout << "train-critic: " << examples.size() << " rounds; critique model in " << dir.string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
