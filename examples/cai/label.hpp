// `cai label`: response pairs sampled from a policy, labelled by AI feedback against the constitution.
#pragma once

#include "common.hpp"

namespace cai_cli {

struct label_command {
  CLI::App* cmd = nullptr;
  std::string prompts_file;
  std::size_t limit = 0;

  void add(CLI::App& app, common_args& a) {
    cmd = app.add_subcommand("label", "sample response pairs and label them with AI feedback");
    add_common(cmd, a);
    cmd->add_option("--prompts", prompts_file, "JSONL {\"prompt\"} or HH-RLHF transcripts")->required();
    cmd->add_option("--limit", limit, "at most this many prompts (0: all)");
  }

  int run(const common_args& a) {
    const fs::path out = a.out;
    const auto constitution = resolve_constitution(a.constitution);
    auto model = cai::native_model<cai::cpu_t>::load(resolve_model(a.model));
    const auto contexts = cai::stages::as_dialogues(read_any_prompts(prompts_file, limit));
    cai::pair_options po;
    po.seed = a.seed;
    po.chat_messages = cai::stages::is_chat(model);
    const auto pairs = cai::sample_pairs(model, contexts, po);
    const auto tasks = cai::draw_ranking_tasks(std::span<const cai::comparison>(pairs), constitution, a.seed);
    cai::choice_ranker<cai::native_model<cai::cpu_t>> ranker(model);
    const auto prefs = cai::label_preferences(ranker, std::span<const cai::ranking_task<cai::constitutional_principle>>(tasks));
    cai::write_preferences(out / "ai_preferences.jsonl", prefs);
    std::cout << "label: " << prefs.size() << " labelled pairs in " << (out / "ai_preferences.jsonl").string() << "\n";
    return 0;
  }
};

}  // namespace cai_cli
