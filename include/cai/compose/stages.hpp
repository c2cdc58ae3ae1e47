/// @file compose/stages.hpp
/// The stages of Constitutional AI and its hybrids with human feedback, for `schedule<Stages...>`
/// (compose/schedule.hpp), on in-process models (`native_model<cpu_t>`, loaded from and saved to Hugging
/// Face directories):
///
///  - `sl_cai_stage<Rounds>`: critique-revision of the red-team prompts (`multi_turn<self_critic, Rounds>`
///    with the stage's constitution), plus the policy's own answers to helpful prompts (the paper mixes
///    helpful samples in to keep helpfulness), then supervised fine-tuning on the final revisions;
///  - `rlaif_stage<Method>`: response pairs sampled from the policy for red-team and helpful prompts, AI
///    soft labels from `choice_ranker` with one comparison principle drawn per label; then either a
///    preference model and PPO (`ppo_method`) or DPO (`dpo_method`);
///  - `rlhf_stage<Method>`: the same training from human preference labels;
///  - `human_finetune_stage<Method>`: SFT (`sft_method`) or DPO (`dpo_method`) on human-labelled edge cases.
///
/// Every stage trains full weights or LoRA adapters (merged before saving) as its `stage_training` says,
/// checkpoints its trainers in its directory and resumes them when the schedule is run again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/compose/schedule.hpp"
#include "cai/constitution/constitution.hpp"
#include "cai/critique/critic.hpp"
#include "cai/critique/engine.hpp"
#include "cai/critique/rounds.hpp"
#include "cai/data/jsonl.hpp"
#include "cai/data/preferences.hpp"
#include "cai/feedback/choice_ranker.hpp"
#include "cai/feedback/labeling.hpp"
#include "cai/feedback/pairs.hpp"
#include "cai/model/load.hpp"
#include "cai/model/native_model.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/dpo.hpp"
#include "cai/train/parameters.hpp"
#include "cai/train/ppo.hpp"
#include "cai/train/preference_model.hpp"
#include "cai/train/sft.hpp"

namespace cai {

/// RL-CAI and RLHF train a preference model, then the policy with PPO against it.
struct ppo_method {
  static constexpr std::string_view name = "ppo";
};
/// Direct preference optimisation instead of a preference model and PPO.
struct dpo_method {
  static constexpr std::string_view name = "dpo";
};
/// Supervised fine-tuning on the preferred responses.
struct sft_method {
  static constexpr std::string_view name = "sft";
};

/// How a stage trains a model.
struct stage_training {
  std::size_t steps = 100;
  std::size_t batch_size = 8;
  float learning_rate = 1e-4f;
  float weight_decay = 0.0f;
  /// Train LoRA adapters (merged into the weights before saving) instead of every weight.
  bool lora = false;
  lora_options lora_settings{};
  std::size_t checkpoint_every = 20;
  /// Silence the trainers' progress bars.
  bool quiet = false;
};

namespace stages {

/// The prompts of a prompts artefact: JSONL, one {"prompt": "..."} per line.
/// @throws parse_error naming the file and line of a record without a string "prompt".
[[nodiscard]] inline std::vector<std::string> read_prompts(const std::filesystem::path& path) {
  std::vector<std::string> out;
  for_each_jsonl(path, [&](const nlohmann::json& j, std::size_t line) {
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      throw parse_error(path.string(), line, 1, "a prompts record needs a string field \"prompt\"");
    out.push_back(j["prompt"].get<std::string>());
  });
  return out;
}

/// Writes prompts as a prompts artefact.
inline void write_prompts(const std::filesystem::path& path, std::span<const std::string> prompts) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& p : prompts) out << nlohmann::json{{"prompt", p}}.dump() << '\n';
  if (!out) throw io_error(path.string(), "cannot write the prompts");
}

/// Writes a policy as a Hugging Face directory with its tokenizer.
inline void save_policy(native_model<cpu_t>& policy, const std::filesystem::path& dir) {
  save_model(policy.model(), dir);
  policy.tokenizer().save_tokenizer_json(dir / "tokenizer.json");
  if (policy.chat_template()) {  // a chat model keeps its template (native_model::load reads it back)
    std::ofstream out(dir / "tokenizer_config.json", std::ios::binary | std::ios::trunc);
    out << nlohmann::json{{"chat_template", chatml_jinja(*policy.chat_template())}}.dump(2) << '\n';
    if (!out) throw io_error((dir / "tokenizer_config.json").string(), "write failed");
  }
}

/// The token that ends a response for `tokenizer` (end of text, end of turn), if it has one.
[[nodiscard]] inline std::optional<std::int32_t> end_token(const bpe_tokenizer& tokenizer) {
  for (const char* t : {"<|endoftext|>", "<|im_end|>", "<|end_of_text|>", "<|eot_id|>", "</s>"})
    if (auto id = tokenizer.token_to_id(t)) return *id;
  return std::nullopt;
}

/// Whether `policy` is prompted through its chat template.
[[nodiscard]] inline bool is_chat(const native_model<cpu_t>& policy) { return policy.chat_template().has_value(); }

/// The token that ends one of `policy`'s responses: end of turn for a chat model, else end of text.
[[nodiscard]] inline std::optional<std::int32_t> response_end(const native_model<cpu_t>& policy) {
  if (is_chat(policy))
    if (auto id = policy.tokenizer().token_to_id(chatml_template::end_of_turn())) return *id;
  return end_token(policy.tokenizer());
}

/// The text `policy` reads before answering `context`: its chat rendering for a chat model, else the
/// paper's transcript ending in "Assistant:".
[[nodiscard]] inline std::string prompt_text(const native_model<cpu_t>& policy, const dialogue& context) {
  return policy.prompt_text(generation_request{prompts::initial_prompt(context), {}, context});
}

/// The tokens of `response` as `policy` writes it after `prompt_text` (a leading space after the
/// transcript's "Assistant:"), with the end token.
[[nodiscard]] inline std::vector<std::int32_t> response_tokens(const native_model<cpu_t>& policy, const std::string& response) {
  auto r = policy.tokenizer().encode(is_chat(policy) ? response : " " + response);
  if (auto end = response_end(policy)) r.push_back(*end);
  return r;
}

/// A dialogue and a response as trainer tokens.
[[nodiscard]] inline sft_sequence to_sequence(const native_model<cpu_t>& policy, const dialogue& context,
                                              const std::string& response) {
  return {policy.tokenizer().encode(prompt_text(policy, context)), response_tokens(policy, response)};
}

/// The worked rounds of critique records: round k of a trace becomes the exchange before it (the initial
/// response, or the revision of round k - 1), the requests of its principle (found by name in `c`), the
/// critique and the revision. Rounds whose principle `c` lacks are skipped.
[[nodiscard]] inline std::vector<critique_example> critique_examples(std::span<const revision_trace> traces,
                                                                     const constitution& c) {
  std::vector<critique_example> out;
  for (const revision_trace& t : traces)
    for (std::size_t k = 0; k < t.steps.size(); ++k) {
      const constitutional_principle* p = c.find(t.steps[k].principle);
      if (p == nullptr || !p->has_critique()) continue;
      out.push_back({t.context, t.response_after(k), p->critique_request, t.steps[k].critique, p->revision_request,
                     t.steps[k].revision});
    }
  return out;
}

/// SFT data for a dedicated critique model (the paper's "separate critique models"): each worked round
/// becomes its critique prompt, followed by what the model learns to write: the critique, the revision
/// request and the revision, then the end token. Transcript models only.
/// @throws config_error for a chat model (its critic would need the chat form of the rounds).
[[nodiscard]] inline std::vector<sft_sequence> critic_sequences(const native_model<cpu_t>& model,
                                                                std::span<const critique_example> examples) {
  if (is_chat(model))
    throw config_error("critic_sequences: a chat model's dedicated critic is not supported yet; use a transcript model");
  std::vector<sft_sequence> out;
  out.reserve(examples.size());
  for (const critique_example& e : examples) {
    const std::string prompt = prompts::critique_prompt(exchange{e.context, e.response}, e.critique_request);
    const std::string whole = prompts::render_critique_example(e);
    sft_sequence s{model.tokenizer().encode(prompt), model.tokenizer().encode(whole.substr(prompt.size()))};
    if (auto end = response_end(model)) s.response.push_back(*end);
    out.push_back(std::move(s));
  }
  return out;
}

/// Trains `model` on `data` with SFT (full weights or LoRA, merged) as `t` says.
inline train_result train_sft(transformer<cpu_t, float>& model, const std::vector<sft_sequence>& data,
                              const stage_training& t, std::uint64_t seed, const std::filesystem::path& checkpoints) {
  sft_options o;
  o.train.batch_size = t.batch_size;
  o.train.max_steps = t.steps;
  o.train.seed = seed;
  o.train.checkpoint_dir = checkpoints;
  o.train.checkpoint_every = t.checkpoint_every;
  const adamw opt{.learning_rate = t.learning_rate, .weight_decay = t.weight_decay};
  auto go = [&](auto& params) {
    sft_trainer trainer(params, opt, o);
    return t.quiet ? trainer.train(data, quiet{}) : trainer.train(data);
  };
  if (t.lora) {
    lora_adapters<cpu_t> lora(model, t.lora_settings);
    return go(lora);  // the trainer leaves W0 + s B A in the model
  }
  full_parameters<cpu_t> full(model);
  return go(full);
}

/// Preferences as preference-model pairs (full sequences) and DPO triples, A = chosen when p_a >= 0.5.
inline void to_pairs(const native_model<cpu_t>& policy, std::span<const preference> prefs,
                     std::vector<preference_pair>* pairs, std::vector<dpo_example>* triples) {
  for (const auto& p : prefs) {
    const auto prompt = policy.tokenizer().encode(prompt_text(policy, p.pair.context));
    auto a = response_tokens(policy, p.pair.response_a), b = response_tokens(policy, p.pair.response_b);
    if (pairs) {
      preference_pair q;
      q.chosen = prompt;
      q.chosen.insert(q.chosen.end(), a.begin(), a.end());
      q.rejected = prompt;
      q.rejected.insert(q.rejected.end(), b.begin(), b.end());
      q.p_chosen = p.p_a;
      pairs->push_back(std::move(q));
    }
    if (triples) {
      const bool a_better = p.p_a >= 0.5;
      triples->push_back({prompt, a_better ? a : b, a_better ? b : a});
    }
  }
}

/// Trains a preference model from `policy`'s weights on `prefs`, saves it to `dir`.
inline preference_model<cpu_t> train_preference_model(native_model<cpu_t>& policy, std::span<const preference> prefs,
                                                      const stage_training& t, std::uint64_t seed,
                                                      const std::filesystem::path& dir) {
  std::vector<preference_pair> pairs;
  to_pairs(policy, prefs, &pairs, nullptr);
  if (pairs.empty()) throw validation_error("preference model: no usable preference pairs");
  preference_model<cpu_t> pm(policy.model(), seed);
  preference_options o;
  o.train.batch_size = t.batch_size;
  o.train.max_steps = t.steps;
  o.train.seed = seed;
  o.train.checkpoint_dir = dir / "checkpoint";
  o.train.checkpoint_every = t.checkpoint_every;
  const adamw opt{.learning_rate = t.learning_rate, .weight_decay = t.weight_decay};
  auto go = [&](auto& params) {
    preference_trainer trainer(pm, params, opt, o);
    if (t.quiet) trainer.train(pairs, quiet{});
    else trainer.train(pairs);
  };
  if (t.lora) {
    lora_adapters<cpu_t> lora(pm.body(), t.lora_settings);
    go(lora);
  } else {
    full_parameters<cpu_t> full(pm.body());
    go(full);
  }
  pm.save(dir / "model");
  return pm;
}

/// PPO of `policy` against `pm` on `prompt_texts`.
inline void train_ppo(native_model<cpu_t>& policy, preference_model<cpu_t>& pm, std::span<const dialogue> contexts,
                      const stage_training& t, ppo_options o, std::uint64_t seed, const std::filesystem::path& checkpoints) {
  std::vector<std::vector<std::int32_t>> prompt_tokens;
  for (const auto& c : contexts) prompt_tokens.push_back(policy.tokenizer().encode(prompt_text(policy, c)));
  if (auto end = response_end(policy)) o.sampling.end_tokens = {*end};
  o.train.batch_size = std::min(o.train.batch_size, prompt_tokens.size());
  o.minibatches = std::min(o.minibatches, o.train.batch_size);
  o.train.max_steps = t.steps;
  o.train.seed = seed;
  o.train.checkpoint_dir = checkpoints;
  o.train.checkpoint_every = t.checkpoint_every;
  auto reference = policy.model();
  const adamw opt{.learning_rate = t.learning_rate, .weight_decay = t.weight_decay};
  preference_reward<cpu_t> reward{&pm, 8};
  auto go = [&](auto& params) {
    ppo_trainer trainer(params, reference, opt, o);
    if (t.quiet) trainer.train(prompt_tokens, reward, quiet{});
    else trainer.train(prompt_tokens, reward);
  };
  if (t.lora) {
    lora_adapters<cpu_t> lora(policy.model(), t.lora_settings);
    go(lora);
  } else {
    full_parameters<cpu_t> full(policy.model());
    go(full);
  }
}

/// DPO of `policy` on `prefs` (its starting weights as the reference).
inline void train_dpo(native_model<cpu_t>& policy, std::span<const preference> prefs, const stage_training& t,
                      const dpo_options& d, std::uint64_t seed, const std::filesystem::path& checkpoints) {
  std::vector<dpo_example> triples;
  to_pairs(policy, prefs, nullptr, &triples);
  if (triples.empty()) throw validation_error("dpo: no usable preference pairs");
  dpo_trainer_options o;
  o.train.batch_size = std::min(t.batch_size, triples.size());
  o.train.max_steps = t.steps;
  o.train.seed = seed;
  o.train.checkpoint_dir = checkpoints;
  o.train.checkpoint_every = t.checkpoint_every;
  o.dpo = d;
  auto reference = policy.model();
  const adamw opt{.learning_rate = t.learning_rate, .weight_decay = t.weight_decay};
  auto go = [&](auto& params) {
    dpo_trainer trainer(params, reference, opt, o);
    if (t.quiet) trainer.train(triples, quiet{});
    else trainer.train(triples);
  };
  if (t.lora) {
    lora_adapters<cpu_t> lora(policy.model(), t.lora_settings);
    go(lora);
  } else {
    full_parameters<cpu_t> full(policy.model());
    go(full);
  }
}

[[nodiscard]] inline std::vector<dialogue> as_dialogues(std::span<const std::string> prompts) {
  std::vector<dialogue> out;
  for (const auto& p : prompts) out.push_back(user_turn(p));
  return out;
}

}  // namespace stages

/// The options of `sl_cai_stage`.
struct sl_cai_stage_options {
  sl_cai_options engine{};
  critic_options critic{};
  /// Helpful prompts whose answers (the policy's own, greedy) join the SFT data; 0: none.
  std::size_t helpful_samples = 64;
  /// Revise the answers to those helpful prompts too (critique-revision rounds, as the red-team ones), so
  /// that what a constitution asks of harmless answers (a caveat, a tone) reaches the SFT data; off, as in
  /// the paper, the helpful answers join the data unrevised.
  bool revise_helpful = false;
  generation_options helpful_generation{.max_new_tokens = 64, .temperature = 0.0, .stop = prompts::stop_sequences()};
  stage_training training{};
  /// The weights of the policy's decode steps (native_model_options::decode).
  decode_weights decode = decode_weights::fp32;
  /// A dedicated critique model (a model directory, such as `cai train-critic` writes) that writes the
  /// critiques while the policy revises (`separate_critic`); empty: the policy critiques itself.
  std::filesystem::path critique_model{};
};

/// SL-CAI: critique and revise the policy's answers to red-team prompts `Rounds` times, then fine-tune
/// the policy on the final revisions (and on its answers to helpful prompts).
template <unsigned Rounds = 4>
struct sl_cai_stage {
  static_assert(Rounds >= 1, "cai::sl_cai_stage: at least one revision round");
  static constexpr std::string_view name = "sl-cai";
  using needs = artefacts<artefact::policy, artefact::red_team_prompts, artefact::helpful_prompts>;
  using provides = artefacts<artefact::revisions, artefact::policy>;

  cai::constitution constitution;
  sl_cai_stage_options options{};

  artefact_paths run(stage_context& context, const std::filesystem::path& dir) {
    auto policy = native_model<cpu_t>::load(context.path<artefact::policy>());
    policy.options().decode = options.decode;
    auto red_team = stages::read_prompts(context.path<artefact::red_team_prompts>());
    auto helpful = stages::read_prompts(context.path<artefact::helpful_prompts>());
    if (helpful.size() > options.helpful_samples) helpful.resize(options.helpful_samples);
    if (options.revise_helpful) {
      red_team.insert(red_team.end(), helpful.begin(), helpful.end());
      helpful.clear();
    }
    critic_options critic = options.critic;
    critic.chat_messages = critic.chat_messages || stages::is_chat(policy);
    sl_cai_options engine = options.engine;
    engine.chat_messages = engine.chat_messages || stages::is_chat(policy);
    engine.output = dir / "revisions.jsonl";
    engine.seed = derive_seed(context.seed, {0x51ca1});
    sl_cai_summary summary;
    if (options.critique_model.empty()) {
      multi_turn<self_critic<native_model<cpu_t>>, Rounds> reviser(self_critic<native_model<cpu_t>>(policy, critic));
      summary = critique_revise(policy, reviser, constitution, red_team, engine);
    } else {
      auto critique_model = native_model<cpu_t>::load(options.critique_model);
      using critic_t = separate_critic<native_model<cpu_t>, native_model<cpu_t>>;
      multi_turn<critic_t, Rounds> reviser(critic_t(policy, critique_model, critic));
      summary = critique_revise(policy, reviser, constitution, red_team, engine);
    }
    context.log("sl-cai: " + std::to_string(summary.written) + " records revised, " + std::to_string(summary.resumed) +
                " resumed");
    std::vector<sft_sequence> data;
    for (const auto& t : read_revision_traces(engine.output))
      data.push_back(stages::to_sequence(policy, t.context, t.final_response()));
    if (!helpful.empty()) {
      std::vector<generation_request> requests;
      for (std::size_t i = 0; i < helpful.size(); ++i) {
        generation_request r{prompts::initial_prompt(user_turn(helpful[i])), options.helpful_generation, {}};
        if (stages::is_chat(policy)) r.messages = user_turn(helpful[i]);
        r.options.seed = derive_seed(context.seed, {0x4e1f, i});
        requests.push_back(std::move(r));
      }
      const auto answers = policy.generate(requests);
      for (std::size_t i = 0; i < helpful.size(); ++i) {
        const auto text = prompts::clean_generation(answers[i], options.helpful_generation.stop);
        if (!text.empty()) data.push_back(stages::to_sequence(policy, user_turn(helpful[i]), text));
      }
    }
    stages::train_sft(policy.model(), data, options.training, context.seed, dir / "sft-checkpoint");
    stages::save_policy(policy, dir / "policy");
    return {{"revisions", engine.output}, {"policy", dir / "policy"}};
  }
};

/// The options of `rlaif_stage` and `rlhf_stage`.
struct rl_stage_options {
  /// Red-team and helpful prompts used for response pairs (each at most this many); 0: all.
  std::size_t prompts_per_kind = 64;
  pair_options pairs{.first = {.max_new_tokens = 64, .temperature = 1.0, .stop = prompts::stop_sequences()},
                     .second = {.max_new_tokens = 64, .temperature = 1.0, .stop = prompts::stop_sequences()}};
  choice_options choice{};
  stage_training preference_training{.steps = 100, .batch_size = 8, .learning_rate = 1e-4f};
  stage_training policy_training{.steps = 20, .batch_size = 8, .learning_rate = 1e-5f};
  ppo_options ppo{};
  dpo_options dpo{};
  /// The weights of the policy's decode steps when it writes response pairs (native_model_options::decode).
  decode_weights decode = decode_weights::fp32;
};

/// RL-CAI (RLAIF): AI soft labels on response pairs of the policy, judged against the constitution; then a
/// preference model and PPO (`ppo_method`) or DPO (`dpo_method`).
template <class Method = ppo_method>
struct rlaif_stage {
  static_assert(std::is_same_v<Method, ppo_method> || std::is_same_v<Method, dpo_method>,
                "cai::rlaif_stage: Method is cai::ppo_method or cai::dpo_method");
  static constexpr std::string_view name = "rlaif";
  using needs = artefacts<artefact::policy, artefact::red_team_prompts, artefact::helpful_prompts>;
  using provides = std::conditional_t<std::is_same_v<Method, ppo_method>,
                                      artefacts<artefact::ai_preferences, artefact::preference_model, artefact::policy>,
                                      artefacts<artefact::ai_preferences, artefact::policy>>;

  cai::constitution constitution;
  rl_stage_options options{};

  artefact_paths run(stage_context& context, const std::filesystem::path& dir) {
    auto policy = native_model<cpu_t>::load(context.path<artefact::policy>());
    policy.options().decode = options.decode;
    const auto labels_path = dir / "ai_preferences.jsonl";
    std::vector<dialogue> contexts;
    for (const auto* which : {&context.path<artefact::red_team_prompts>(), &context.path<artefact::helpful_prompts>()}) {
      auto p = stages::read_prompts(*which);
      if (options.prompts_per_kind != 0 && p.size() > options.prompts_per_kind) p.resize(options.prompts_per_kind);
      for (auto& d : stages::as_dialogues(p)) contexts.push_back(std::move(d));
    }
    std::vector<preference> prefs;
    if (std::filesystem::exists(labels_path)) {
      prefs = read_preferences(labels_path);  // labelled before: resume with training
    } else {
      auto pair_opts = options.pairs;
      pair_opts.seed = derive_seed(context.seed, {0x9a125});
      pair_opts.chat_messages = pair_opts.chat_messages || stages::is_chat(policy);
      const auto pairs = sample_pairs(policy, contexts, pair_opts);
      const auto tasks = draw_ranking_tasks(std::span<const comparison>(pairs), constitution, derive_seed(context.seed, {0x1abe1}));
      choice_ranker<native_model<cpu_t>> ranker(policy, options.choice);
      prefs = label_preferences(ranker, std::span<const ranking_task<constitutional_principle>>(tasks));
      write_preferences(labels_path.string() + ".tmp", prefs);
      std::filesystem::rename(labels_path.string() + ".tmp", labels_path);
      context.log("rlaif: labelled " + std::to_string(prefs.size()) + " pairs");
    }
    artefact_paths out{{"ai_preferences", labels_path}};
    if constexpr (std::is_same_v<Method, ppo_method>) {
      auto pm = stages::train_preference_model(policy, prefs, options.preference_training, context.seed, dir / "preference_model");
      out["preference_model"] = dir / "preference_model" / "model";
      stages::train_ppo(policy, pm, contexts, options.policy_training, options.ppo, context.seed, dir / "ppo-checkpoint");
    } else {
      stages::train_dpo(policy, prefs, options.policy_training, options.dpo, context.seed, dir / "dpo-checkpoint");
    }
    stages::save_policy(policy, dir / "policy");
    out["policy"] = dir / "policy";
    return out;
  }
};

/// RLHF: a preference model on human labels, then PPO (`ppo_method`); or DPO on them (`dpo_method`).
template <class Method = ppo_method>
struct rlhf_stage {
  static_assert(std::is_same_v<Method, ppo_method> || std::is_same_v<Method, dpo_method>,
                "cai::rlhf_stage: Method is cai::ppo_method or cai::dpo_method");
  static constexpr std::string_view name = "rlhf";
  using needs = artefacts<artefact::policy, artefact::human_preferences>;
  using provides = std::conditional_t<std::is_same_v<Method, ppo_method>,
                                      artefacts<artefact::preference_model, artefact::policy>, artefacts<artefact::policy>>;

  rl_stage_options options{};

  artefact_paths run(stage_context& context, const std::filesystem::path& dir) {
    auto policy = native_model<cpu_t>::load(context.path<artefact::policy>());
    policy.options().decode = options.decode;
    auto prefs = read_preferences(context.path<artefact::human_preferences>());
    if (options.prompts_per_kind != 0 && prefs.size() > 4 * options.prompts_per_kind) prefs.resize(4 * options.prompts_per_kind);
    artefact_paths out;
    if constexpr (std::is_same_v<Method, ppo_method>) {
      auto pm = stages::train_preference_model(policy, prefs, options.preference_training, context.seed, dir / "preference_model");
      out["preference_model"] = dir / "preference_model" / "model";
      std::vector<dialogue> contexts;
      for (const auto& p : prefs) contexts.push_back(p.pair.context);
      if (options.prompts_per_kind != 0 && contexts.size() > options.prompts_per_kind) contexts.resize(options.prompts_per_kind);
      stages::train_ppo(policy, pm, contexts, options.policy_training, options.ppo, context.seed, dir / "ppo-checkpoint");
    } else {
      stages::train_dpo(policy, prefs, options.policy_training, options.dpo, context.seed, dir / "dpo-checkpoint");
    }
    stages::save_policy(policy, dir / "policy");
    out["policy"] = dir / "policy";
    return out;
  }
};

/// Fine-tuning on human-labelled edge cases: SFT on the preferred responses (`sft_method`) or DPO on the
/// pairs (`dpo_method`).
template <class Method = sft_method>
struct human_finetune_stage {
  static_assert(std::is_same_v<Method, sft_method> || std::is_same_v<Method, dpo_method>,
                "cai::human_finetune_stage: Method is cai::sft_method or cai::dpo_method");
  static constexpr std::string_view name = "human-finetune";
  using needs = artefacts<artefact::policy, artefact::edge_cases>;
  using provides = artefacts<artefact::policy>;

  stage_training training{.steps = 20, .batch_size = 8, .learning_rate = 1e-5f};
  dpo_options dpo{};

  artefact_paths run(stage_context& context, const std::filesystem::path& dir) {
    auto policy = native_model<cpu_t>::load(context.path<artefact::policy>());
    const auto cases = read_preferences(context.path<artefact::edge_cases>());
    if constexpr (std::is_same_v<Method, sft_method>) {
      std::vector<sft_sequence> data;
      for (const auto& p : cases)
        data.push_back(stages::to_sequence(policy, p.pair.context,
                                           p.p_a >= 0.5 ? p.pair.response_a : p.pair.response_b));
      stages::train_sft(policy.model(), data, training, context.seed, dir / "sft-checkpoint");
    } else {
      stages::train_dpo(policy, cases, training, dpo, context.seed, dir / "dpo-checkpoint");
    }
    stages::save_policy(policy, dir / "policy");
    return {{"policy", dir / "policy"}};
  }
};

/// The paper's programme: SL-CAI with `Rounds` revision rounds, then RL-CAI by `Method`.
template <unsigned Rounds = 4, class Method = ppo_method>
using sl_cai_then_rlaif =
    schedule<inputs<artefact::policy, artefact::red_team_prompts, artefact::helpful_prompts>, sl_cai_stage<Rounds>,
             rlaif_stage<Method>>;

/// Human preferences first (RLHF), then SL-CAI and RL-CAI to scale harmlessness, then human fine-tuning
/// on the edge cases that AI feedback gets wrong.
template <unsigned Rounds = 4, class Method = ppo_method>
using hybrid_rlhf_cai =
    schedule<inputs<artefact::policy, artefact::red_team_prompts, artefact::helpful_prompts, artefact::human_preferences,
                    artefact::edge_cases>,
             rlhf_stage<Method>, sl_cai_stage<Rounds>, rlaif_stage<Method>, human_finetune_stage<sft_method>>;

}  // namespace cai
