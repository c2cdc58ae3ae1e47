// `cai critique`: critique-revision of prompts (JSONL {"prompt"} or HH-RLHF transcripts), 1 to 4 rounds.
#pragma once

#include "common.hpp"

namespace cai_cli {

struct critique_command {
  CLI::App* cmd = nullptr;
  std::string prompts_file;
  std::size_t limit = 0, rounds = 4;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("critique", "critique-revision of prompts (4 rounds by default)");
    add_common(cmd, a);
    cmd->add_option("--prompts", prompts_file, "JSONL {\"prompt\"} or HH-RLHF transcripts (.gz accepted)")->required();
    cmd->add_option("--limit", limit, "at most this many prompts (0: all)");
    cmd->add_option("--rounds", rounds, "revision rounds, 1 to 4")->check(CLI::Range(1, 4))->capture_default_str();
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    const auto constitution = resolve_constitution(a.constitution);
    const auto prompts = read_any_prompts(prompts_file, limit);
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    cai::sl_cai_options o;
    o.output = out / "revisions.jsonl";
    o.seed = a.seed;
    o.on_record = [&](const cai::revision_trace& t) { std::fprintf(stderr, "\rcritique: record %llu", static_cast<unsigned long long>(t.id + 1)); };
    o.chat_messages = cai::stages::is_chat(model);
    cai::self_critic<cai::native_model<cai::cpu_t>> critic(model, {.chat_messages = o.chat_messages});
    cai::sl_cai_summary s;
    switch (rounds) {
      case 1: { cai::multi_turn<decltype(critic), 1> r(critic); s = cai::critique_revise(model, r, constitution, prompts, o); break; }
      case 2: { cai::multi_turn<decltype(critic), 2> r(critic); s = cai::critique_revise(model, r, constitution, prompts, o); break; }
      case 3: { cai::multi_turn<decltype(critic), 3> r(critic); s = cai::critique_revise(model, r, constitution, prompts, o); break; }
      default: { cai::multi_turn<decltype(critic), 4> r(critic); s = cai::critique_revise(model, r, constitution, prompts, o); break; }
    }
    std::cout << "\ncritique: " << s.written << " records written, " << s.resumed << " resumed: " << o.output.string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
