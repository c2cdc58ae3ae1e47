// The `cai` command's shared pieces: resolving models and constitutions, the options every subcommand
// takes, the stages' training settings, reading prompts, and running one stage of Constitutional AI.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cai/compose/stages.hpp"
#include "cai/constitution/io.hpp"
#include "cai/constitution/presets.hpp"
#include "cai/data/gzip.hpp"
#include "cai/model/model_cache.hpp"
#include "cai/world.hpp"

namespace cai_cli {

namespace fs = std::filesystem;

#ifndef CAI_EMBEDDED_MODEL_DIR
#define CAI_EMBEDDED_MODEL_DIR "models/assistant-tiny"
#endif

// ---------------------------------------------------------------------------------------------------
// Arguments

inline fs::path resolve_model(const std::string& name) {
  if (name == "embedded") {
    const fs::path p = CAI_EMBEDDED_MODEL_DIR;
    if (!fs::exists(p / "config.json"))
      throw cai::io_error(p.string(), "the embedded model is missing; run scripts/train-base-model to rebuild it");
    return p;
  }
  if (name == "smollm2") {
    const fs::path p = cai::smollm2_gguf_path();
    if (!fs::exists(p)) throw cai::io_error(p.string(), "SmolLM2 is not in the model cache; run scripts/setup");
    return p;
  }
  if (!fs::exists(name)) throw cai::io_error(name, "no such model (a Hugging Face directory, a GGUF file, 'embedded' or 'smollm2')");
  return name;
}

inline cai::constitution resolve_constitution(const std::string& name) {
  // the world's: "world", "harm-only" (alias "least-harmful": the constitution the paper warns about),
  // "helpful-only", "default+caveats", "control", "held-out-wording"
  if (const auto w = cai::world::find_world_constitution(name == "least-harmful" ? "harm-only" : name)) return w->constitution();
  if (fs::exists(name)) return cai::load_constitution(name);
  return cai::preset(name);
}

struct common_args {
  std::string model = "embedded";
  std::string constitution = "world";
  std::uint64_t seed = 2022;
  std::string out = "cai-out";
  bool lora = false;
};

inline void add_common(CLI::App* app, common_args& a, bool model = true) {
  if (model) app->add_option("--model", a.model, "a Hugging Face directory, a GGUF file, 'embedded' or 'smollm2'")->capture_default_str();
  app->add_option("--constitution", a.constitution,
                  "'world' or another world constitution ('harm-only' alias 'least-harmful', 'helpful-only', 'default+caveats', 'control', 'held-out-wording'), a preset ('default', 'default+medical', ...) or a constitution JSON file")
      ->capture_default_str();
  app->add_option("--seed", a.seed, "fixes every draw and every sample")->capture_default_str();
  app->add_option("--out", a.out, "output directory (resumed when it exists)")->capture_default_str();
  app->add_flag("--lora", a.lora, "train LoRA adapters (merged before saving) instead of every weight");
}

inline cai::stage_training training(std::size_t steps, std::size_t batch, float lr, bool lora) {
  cai::stage_training t{.steps = steps, .batch_size = batch, .learning_rate = lr, .checkpoint_every = 10};
  t.lora = lora;
  t.lora_settings = {.rank = 8, .alpha = 16.0, .targets = {"q_proj", "v_proj", "c_attn", "lm_head"}};
  return t;
}

// Prompts from JSONL {"prompt": ...} or, for HH-RLHF transcripts, the first human turn of each.
inline std::vector<std::string> read_any_prompts(const fs::path& path, std::size_t limit) {
  std::vector<std::string> out;
  cai::for_each_gzip_line(path, [&](std::string_view line, std::size_t number) {
    if (limit != 0 && out.size() >= limit) return;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw cai::parse_error(path.string(), number, 1, "not a JSON object");
    if (j.contains("prompt") && j["prompt"].is_string()) {
      out.push_back(j["prompt"].get<std::string>());
    } else if (j.contains("chosen") && j["chosen"].is_string()) {
      const auto d = cai::parse_transcript(j["chosen"].get<std::string>());
      if (d.empty() || d.front().role != cai::role::user)
        throw cai::parse_error(path.string(), number, 1, "the transcript does not open with a human turn");
      if (std::find(out.begin(), out.end(), d.front().content) == out.end()) out.push_back(d.front().content);
    } else {
      throw cai::parse_error(path.string(), number, 1, "a prompt record needs \"prompt\" or an HH-RLHF \"chosen\" transcript");
    }
  });
  return out;
}


template <unsigned Rounds>
inline fs::path run_sl_cai(const fs::path& policy, const fs::path& red, const fs::path& helpful, const cai::constitution& c,
                    const cai::sl_cai_stage_options& o, std::uint64_t seed, const fs::path& out) {
  using namespace cai;
  schedule<inputs<artefact::policy, artefact::red_team_prompts, artefact::helpful_prompts>, sl_cai_stage<Rounds>> s(
      {{{"policy", policy}, {"red_team_prompts", red}, {"helpful_prompts", helpful}}}, {c, o});
  stage_context context{.out = out, .seed = seed, .log = [](std::string_view m) { std::cerr << m << "\n"; }};
  s.run(context);
  return context.path<artefact::policy>();
}

template <class Method>
inline fs::path run_rlaif(const fs::path& policy, const fs::path& red, const fs::path& helpful, const cai::constitution& c,
                   const cai::rl_stage_options& o, std::uint64_t seed, const fs::path& out) {
  using namespace cai;
  schedule<inputs<artefact::policy, artefact::red_team_prompts, artefact::helpful_prompts>, rlaif_stage<Method>> s(
      {{{"policy", policy}, {"red_team_prompts", red}, {"helpful_prompts", helpful}}}, {c, o});
  stage_context context{.out = out, .seed = seed, .log = [](std::string_view m) { std::cerr << m << "\n"; }};
  s.run(context);
  return context.path<artefact::policy>();
}

// A dedicated critique model: `base` fine-tuned on worked critique-revision rounds (critique and revision
// turns), saved to `dir` (a model directory); an existing one is kept (resume).
inline fs::path train_critic(const fs::path& base, const std::vector<cai::critique_example>& examples, std::size_t steps, float lr,
                      bool lora, std::uint64_t seed, const fs::path& dir) {
  const fs::path model_dir = dir / "model";
  if (fs::exists(model_dir / "config.json")) return model_dir;
  auto model = cai::native_model<cai::cpu_t>::load(base);
  const auto data = cai::stages::critic_sequences(model, std::span<const cai::critique_example>(examples));
  cai::stages::train_sft(model.model(), data, training(steps, 8, lr, lora), seed, dir / "checkpoint");
  cai::stages::save_policy(model, dir / "model-tmp");
  fs::rename(dir / "model-tmp", model_dir);
  return model_dir;
}

}  // namespace cai_cli
