// `cai run`: Constitutional AI end to end. On the embedded assistant world (run_world.hpp) it compares the
// default constitution with the comparison constitutions; on a real model (run_real.hpp) it runs SL-CAI
// and RL-CAI by DPO on red-team prompts and reports what the model wrote.
#pragma once

#include "run_real.hpp"
#include "run_world.hpp"

namespace cai_cli {

struct run_command {
  CLI::App* cmd = nullptr;
  run_sizes z;
  std::string method = "both", critic_kind = "self", only, decode = "fp32", prompts;
  bool small = false, compare = true, world_mode = false;
  std::size_t real_prompts = 8;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("run", "the whole pipeline on the embedded assistant world (every constitution), with a report");
    add_common(cmd, a);
    add_world_options(cmd, z, method, critic_kind, only, small);
    cmd->add_option("--compare-constitution", compare,
                    "also run the comparison constitutions: harm-only, helpful-only, default+caveats, control, held-out-wording")
        ->capture_default_str();
    cmd->add_option("--decode-weights", decode,
                    "the policy's decode steps in 'fp32' or in 8-bit blocks, 'q8_0' (faster; the prefill stays fp32)")
        ->check(CLI::IsMember({"fp32", "q8_0"}))
        ->capture_default_str();
    cmd->add_flag("--world", world_mode, "run the assistant world (and its oracle) even with another --model");
    cmd->add_option("--prompts", prompts, "a real model's red-team prompts (default: the shared HH-RLHF transcripts)");
    cmd->add_option("--real-prompts", real_prompts, "red-team prompts for a real model")->capture_default_str();
  }

  int run(const common_args& a) {
    z.decode = decode == "q8_0" ? cai::decode_weights::q8_0 : cai::decode_weights::fp32;
    z.dedicated_critic = critic_kind == "dedicated";
    if (a.model != "embedded" && !world_mode)
      return run_real(a, prompts.empty() ? std::string(CAI_SHARED_DATA_DIR "/hh-rlhf/harmless-base-test.jsonl.gz") : prompts,
                      small ? 2 : real_prompts, small ? 1 : 10, z.decode);
    return run_all(a, small ? small_sizes(z) : z, method, compare, only);
  }
};

}  // namespace cai_cli
