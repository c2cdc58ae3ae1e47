// cai: the command-line tool. `cai run` runs Constitutional AI end to end (Bai et al. 2022,
// arXiv:2212.08073) on the embedded assistant world and its tiny base model, and measures what it did with
// the world's oracle on held-out requests; one subcommand per phase runs that phase on your own files:
//
//   cai run       SL-CAI (4 revision rounds, SFT), AI soft labels, preference model + PPO, and DPO, for the
//                 default world constitution and the comparison constitutions; report
//   cai study     cai run's comparison over several seeds: means, standard errors, targets
//   cai critique  critique-revision of prompts (JSONL {"prompt"} or HH-RLHF transcripts, .gz accepted)
//   cai sft       supervised fine-tuning on critique records (their final revisions)
//   cai train-critic  a dedicated critique model, fine-tuned on critique records (or the world's worked rounds)
//   cai label     response pairs sampled from a policy, labelled by the feedback model against the constitution
//   cai train-pm  a preference model on preference JSONL (AI or human labels)
//   cai ppo       PPO of a policy against a preference model
//   cai dpo       DPO of a policy on preference JSONL
//   cai eval      the oracle's rates on held-out world requests
//   cai audit     a constitution's principle conflicts, coverage gaps and refusal rate
//
// Every phase writes its outputs to --out as it goes and resumes when run again. Models are Hugging Face
// directories (config.json, model.safetensors, tokenizer.json) or GGUF files; "embedded" names the shipped
// tiny model and "smollm2" the SmolLM2-135M-Instruct GGUF that scripts/setup fetches.
//
// One file per subcommand (examples/cai/): each holds its options and its body; the shared pieces are
// common.hpp, world_eval.hpp (the oracle's evaluation), run_world.hpp and run_real.hpp (`cai run`).
#include "audit.hpp"
#include "critique.hpp"
#include "dpo.hpp"
#include "eval.hpp"
#include "label.hpp"
#include "ppo.hpp"
#include "run.hpp"
#include "sft.hpp"
#include "study.hpp"
#include "train_critic.hpp"
#include "train_pm.hpp"

int main(int argc, char** argv) {
  using namespace cai_cli;
  CLI::App app{"cai: Constitutional AI (Bai et al. 2022) end to end, or one phase at a time"};
  app.require_subcommand(1);
  common_args a;
  run_command run;
  study_command study;
  critique_command critique;
  train_critic_command train_critic_cmd;
  sft_command sft;
  label_command label;
  train_pm_command train_pm;
  ppo_command ppo;
  dpo_command dpo;
  eval_command eval;
  audit_command audit;
  run.add(app, a);
  study.add(app, a);
  critique.add(app, a);
  train_critic_cmd.add(app, a);
  sft.add(app, a);
  label.add(app, a);
  train_pm.add(app, a);
  ppo.add(app, a);
  dpo.add(app, a);
  eval.add(app, a);
  audit.add(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    fs::create_directories(a.out);
    if (run.cmd->parsed()) return run.run(a);
    if (study.cmd->parsed()) return study.run(a);
    if (critique.cmd->parsed()) return critique.run(a);
    if (train_critic_cmd.cmd->parsed()) return train_critic_cmd.run(a);
    if (sft.cmd->parsed()) return sft.run(a);
    if (label.cmd->parsed()) return label.run(a);
    if (train_pm.cmd->parsed()) return train_pm.run(a);
    if (ppo.cmd->parsed()) return ppo.run(a);
    if (dpo.cmd->parsed()) return dpo.run(a);
    if (eval.cmd->parsed()) return eval.run(a);
    if (audit.cmd->parsed()) return audit.run(a);
  } catch (const std::exception& e) {
    std::cerr << "cai: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
