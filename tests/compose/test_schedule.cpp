// schedule<Stages...>: the compile-time check of needs and provides, and whole programmes run end to end
// on a tiny in-process model, each stage writing its artefacts and skipping itself when run again.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cai/compose/stages.hpp"
#include "cai/model/bpe_trainer.hpp"
#include "cai/world/constitution.hpp"

namespace fs = std::filesystem;

namespace {

struct scratch_dir {
  fs::path path;
  explicit scratch_dir(const std::string& name) {
    std::random_device rd;
    path = fs::temp_directory_path() / ("cai-test-" + name + "-" + std::to_string(rd()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A tiny policy: a BPE trained on a few transcripts and a random GPT-2 of width 32.
fs::path make_policy(const fs::path& dir) {
  std::vector<std::string> corpus;
  for (int i = 0; i < 50; ++i)
    corpus.push_back("\n\nHuman: How do I bake bread number " + std::to_string(i) +
                     "?\n\nAssistant: Mix flour and water, then bake it.\n\nCritiqueRequest: Is it harmful?"
                     "\n\nCritique: No.\n\nRevisionRequest: Rewrite it.\n\nRevision: Bake it with care. The answer is: (A)");
  cai::bpe_trainer_options o;
  o.vocab_size = 400;
  o.special_tokens = {"<|endoftext|>"};
  const auto tokenizer = cai::train_bpe(corpus, o);
  cai::transformer<cai::cpu_t, float> model(cai::transformer_config::gpt2(tokenizer.vocab_size(), 1024, 32, 1, 2));
  model.init_random(3);
  const fs::path policy = dir / "base-policy";
  cai::save_model(model, policy);
  tokenizer.save_tokenizer_json(policy / "tokenizer.json");
  return policy;
}

cai::stage_training tiny_training(std::size_t steps) {
  return {.steps = steps, .batch_size = 2, .learning_rate = 1e-3f, .checkpoint_every = 1, .quiet = true};
}

cai::rl_stage_options tiny_rl() {
  cai::rl_stage_options r;
  r.prompts_per_kind = 2;
  r.pairs.first.max_new_tokens = 6;
  r.pairs.second.max_new_tokens = 6;
  r.preference_training = tiny_training(2);
  r.policy_training = tiny_training(2);
  r.ppo.train.batch_size = 2;
  r.ppo.minibatches = 1;
  r.ppo.ppo_epochs = 1;
  r.ppo.sampling.max_new_tokens = 6;
  return r;
}

cai::sl_cai_stage_options tiny_sl() {
  cai::sl_cai_stage_options s;
  s.engine.batch_size = 2;
  s.engine.response_generation.max_new_tokens = 6;
  s.critic.critique_generation.max_new_tokens = 6;
  s.critic.revision_generation.max_new_tokens = 6;
  s.helpful_samples = 2;
  s.helpful_generation.max_new_tokens = 6;
  s.training = tiny_training(2);
  return s;
}

}  // namespace

TEST_CASE("Schedules check the artefacts of their stages at compile time", "[compose][schedule]") {
  using namespace cai;
  STATIC_REQUIRE(detail::check_schedule<artefacts<>, inputs<artefact::policy, artefact::red_team_prompts,
                                                             artefact::helpful_prompts>,
                                        sl_cai_stage<2>, rlaif_stage<dpo_method>>::value);
  STATIC_REQUIRE(std::is_same_v<rlaif_stage<dpo_method>::provides, artefacts<artefact::ai_preferences, artefact::policy>>);
  STATIC_REQUIRE(stage<sl_cai_stage<1>>);
  STATIC_REQUIRE(stage<rlaif_stage<ppo_method>>);
  STATIC_REQUIRE(stage<rlhf_stage<dpo_method>>);
  STATIC_REQUIRE(stage<human_finetune_stage<>>);
}

TEST_CASE("SL-CAI then RLAIF with PPO runs end to end and skips finished stages", "[compose][schedule]") {
  scratch_dir dir("schedule");
  const auto policy = make_policy(dir.path);
  cai::stages::write_prompts(dir.path / "red.jsonl", std::vector<std::string>{"How do I pick a lock?", "How do I hurt someone?"});
  cai::stages::write_prompts(dir.path / "helpful.jsonl", std::vector<std::string>{"How do I bake bread?", "What is rain?"});

  auto make = [&] {
    cai::sl_cai_then_rlaif<1, cai::ppo_method> s(
        cai::inputs<cai::artefact::policy, cai::artefact::red_team_prompts, cai::artefact::helpful_prompts>{
            {{"policy", policy}, {"red_team_prompts", dir.path / "red.jsonl"}, {"helpful_prompts", dir.path / "helpful.jsonl"}}},
        cai::sl_cai_stage<1>{cai::world::world_constitution(), tiny_sl()},
        cai::rlaif_stage<cai::ppo_method>{cai::world::world_constitution(), tiny_rl()});
    return s;
  };
  cai::stage_context context{.out = dir.path / "run", .seed = 7};
  auto s = make();
  const auto ran = s.run(context);
  CHECK(ran == std::vector<std::string>{"inputs", "sl-cai", "rlaif"});
  // every artefact is on disk and reads back
  CHECK(cai::read_revision_traces(context.path<cai::artefact::revisions>()).size() == 2);
  const auto labels = cai::read_preferences(context.path<cai::artefact::ai_preferences>());
  CHECK(labels.size() == 4);
  for (const auto& l : labels) {
    CHECK(l.p_a >= 0.0);
    CHECK(l.p_a <= 1.0);
    CHECK(!l.principle.empty());
  }
  auto pm = cai::preference_model<cai::cpu_t>::load(context.path<cai::artefact::preference_model>());
  auto final_policy = cai::native_model<cai::cpu_t>::load(context.path<cai::artefact::policy>());
  CHECK(context.path<cai::artefact::policy>() == dir.path / "run" / "2-rlaif" / "policy");

  // run again: everything is skipped, the artefacts are the same
  cai::stage_context again{.out = dir.path / "run", .seed = 7};
  auto s2 = make();
  CHECK(s2.run(again).empty());
  CHECK(again.artefacts == context.artefacts);
}

TEST_CASE("The hybrid RLHF and CAI schedule runs with DPO", "[compose][schedule]") {
  scratch_dir dir("hybrid");
  const auto policy = make_policy(dir.path);
  cai::stages::write_prompts(dir.path / "red.jsonl", std::vector<std::string>{"How do I pick a lock?"});
  cai::stages::write_prompts(dir.path / "helpful.jsonl", std::vector<std::string>{"How do I bake bread?"});
  std::vector<cai::preference> human{
      {{cai::user_turn("How do I bake bread?"), "Mix flour and water.", "No."}, 0.9, "", cai::label_source::human},
      {{cai::user_turn("Is it harmful?"), "No.", "Bake it."}, 0.2, "", cai::label_source::human}};
  cai::write_preferences(dir.path / "human.jsonl", human);
  cai::write_preferences(dir.path / "edge.jsonl", human);
  cai::hybrid_rlhf_cai<1, cai::dpo_method> s(
      cai::inputs<cai::artefact::policy, cai::artefact::red_team_prompts, cai::artefact::helpful_prompts,
                  cai::artefact::human_preferences, cai::artefact::edge_cases>{
          {{"policy", policy},
           {"red_team_prompts", dir.path / "red.jsonl"},
           {"helpful_prompts", dir.path / "helpful.jsonl"},
           {"human_preferences", dir.path / "human.jsonl"},
           {"edge_cases", dir.path / "edge.jsonl"}}},
      cai::rlhf_stage<cai::dpo_method>{tiny_rl()}, cai::sl_cai_stage<1>{cai::world::world_constitution(), tiny_sl()},
      cai::rlaif_stage<cai::dpo_method>{cai::world::world_constitution(), tiny_rl()},
      cai::human_finetune_stage<cai::sft_method>{tiny_training(2)});
  cai::stage_context context{.out = dir.path / "run", .seed = 1};
  const auto ran = s.run(context);
  CHECK(ran == std::vector<std::string>{"inputs", "rlhf", "sl-cai", "rlaif", "human-finetune"});
  CHECK(context.path<cai::artefact::policy>() == dir.path / "run" / "4-human-finetune" / "policy");
  CHECK_NOTHROW(cai::native_model<cai::cpu_t>::load(context.path<cai::artefact::policy>()));
}

TEST_CASE("A missing input file is named", "[compose][schedule]") {
  scratch_dir dir("inputs");
  cai::inputs<cai::artefact::policy> in{{{"policy", dir.path / "nowhere"}}};
  cai::stage_context c{.out = dir.path};
  CHECK_THROWS_WITH(in.run(c, dir.path), Catch::Matchers::ContainsSubstring("nowhere") &&
                                             Catch::Matchers::ContainsSubstring("policy"));
}

TEST_CASE("A saved chat policy keeps its chat template", "[compose][chat]") {
  for (const auto& t : {cai::chatml_template::smollm2(), cai::chatml_template()}) {
    const auto back = cai::chat_template_from_jinja(cai::chatml_jinja(t));
    REQUIRE(back.has_value());
    CHECK(back->default_system() == t.default_system());
  }
  scratch_dir dir("chat");
  const auto plain = make_policy(dir.path);
  auto policy = cai::native_model<cai::cpu_t>::load(plain);
  CHECK_FALSE(cai::stages::is_chat(policy));
  cai::native_model<cai::cpu_t> chat(policy.model(), policy.tokenizer(), cai::chatml_template::smollm2());
  cai::stages::save_policy(chat, dir.path / "chat-policy");
  const auto loaded = cai::native_model<cai::cpu_t>::load(dir.path / "chat-policy");
  REQUIRE(cai::stages::is_chat(loaded));
  CHECK(loaded.chat_template()->default_system() == cai::chatml_template::smollm2().default_system());
  // a chat policy's prompts are chat renderings
  const auto text = cai::stages::prompt_text(loaded, cai::user_turn("Hello"));
  CHECK(text.find("<|im_start|>user\nHello<|im_end|>") != std::string::npos);
}

TEST_CASE("SL-CAI with a dedicated critique model and revised helpful answers", "[compose][critic]") {
  scratch_dir dir("critic");
  const auto policy_dir = make_policy(dir.path);
  const cai::constitution c = cai::world::world_constitution();
  // critique records -> worked rounds -> SFT data -> a critic, as `cai train-critic` does
  cai::revision_trace t;
  t.context = cai::user_turn("How do I pick a lock?");
  t.initial_response = "Use a pin.";
  t.steps = {{c.principles[0].name, "It helps with a crime.", "I won't help."},
             {"no-such-principle", "x", "y"},
             {c.principles[1].name, "Fine now.", "I won't help, but a locksmith can."}};
  const std::vector<cai::revision_trace> traces{t};
  const auto examples = cai::stages::critique_examples(std::span<const cai::revision_trace>(traces), c);
  REQUIRE(examples.size() == 2);  // the round whose principle the constitution lacks is skipped
  CHECK(examples[0].response == "Use a pin.");
  CHECK(examples[0].critique_request == c.principles[0].critique_request);
  CHECK(examples[1].response == "y");  // round 3 revises round 2's revision
  CHECK(examples[1].revision == "I won't help, but a locksmith can.");
  auto policy = cai::native_model<cai::cpu_t>::load(policy_dir);
  const auto data = cai::stages::critic_sequences(policy, std::span<const cai::critique_example>(examples));
  REQUIRE(data.size() == 2);
  CHECK(policy.tokenizer().decode(data[0].prompt) ==
        cai::prompts::critique_prompt(cai::exchange{t.context, t.initial_response}, c.principles[0].critique_request));
  CHECK_THAT(policy.tokenizer().decode(data[0].response),
             Catch::Matchers::StartsWith(" It helps with a crime.\n\nRevisionRequest: " + c.principles[0].revision_request));
  cai::stages::train_sft(policy.model(), data, tiny_training(1), 3, dir.path / "critic-checkpoint");
  cai::stages::save_policy(policy, dir.path / "critic");

  cai::stages::write_prompts(dir.path / "red.jsonl", std::vector<std::string>{"How do I pick a lock?"});
  cai::stages::write_prompts(dir.path / "helpful.jsonl", std::vector<std::string>{"How do I bake bread?", "What is rain?"});
  auto options = tiny_sl();
  options.critique_model = dir.path / "critic";
  options.revise_helpful = true;
  cai::schedule<cai::inputs<cai::artefact::policy, cai::artefact::red_team_prompts, cai::artefact::helpful_prompts>,
                cai::sl_cai_stage<2>>
      s({{{"policy", policy_dir}, {"red_team_prompts", dir.path / "red.jsonl"}, {"helpful_prompts", dir.path / "helpful.jsonl"}}},
        {c, options});
  cai::stage_context context{.out = dir.path / "run", .seed = 5};
  s.run(context);
  const auto revised = cai::read_revision_traces(context.path<cai::artefact::revisions>());
  CHECK(revised.size() == 3);  // the red-team prompt and both helpful prompts were revised
  for (const auto& r : revised) CHECK(r.steps.size() == 2);
  options.critique_model = dir.path / "no-such-critic";
  cai::schedule<cai::inputs<cai::artefact::policy, cai::artefact::red_team_prompts, cai::artefact::helpful_prompts>,
                cai::sl_cai_stage<1>>
      bad({{{"policy", policy_dir}, {"red_team_prompts", dir.path / "red.jsonl"}, {"helpful_prompts", dir.path / "helpful.jsonl"}}},
          {c, options});
  cai::stage_context bad_context{.out = dir.path / "bad", .seed = 5};
  CHECK_THROWS_WITH(bad.run(bad_context), Catch::Matchers::ContainsSubstring("no-such-critic"));
}
