/// @file feedback/pairs.hpp
/// The response pairs that AI feedback labels (Bai et al. 2022, arXiv:2212.08073, section 4.1: the
/// SL-CAI model answers each red-team prompt twice, and the feedback model compares the two answers).
/// `sample_pairs` asks a `language_model` policy for two samples per dialogue, with different seeds
/// and, if wished, different sampling settings, and returns the `comparison`s to label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/prompts/parse.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/random.hpp"
#include "cai/text/generation.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// How the two responses of a pair are sampled.
struct pair_options {
  /// Sampling of response A; `stop` defaults to the transcript's turn markers. The seed is set per pair.
  generation_options first{.max_new_tokens = 128, .temperature = 1.0, .stop = prompts::stop_sequences()};
  /// Sampling of response B (the same settings by default; a different temperature gives more diverse
  /// pairs).
  generation_options second{.max_new_tokens = 128, .temperature = 1.0, .stop = prompts::stop_sequences()};
  /// The job's seed: pair i draws response A with `derive_seed(seed, {i, 0})` and B with
  /// `derive_seed(seed, {i, 1})`.
  std::uint64_t seed = 0;
  /// Also fill `generation_request::messages` with the dialogue, for chat models.
  bool chat_messages = false;
};

/// Two responses per dialogue from `policy`, as comparisons (A: the first sample, B: the second).
///
/// Each dialogue is prompted with `prompts::initial_prompt(context)`; the 2n requests go in one batched
/// `generate` call; each text is cleaned with `prompts::clean_generation(text, stop)`. The pair of
/// dialogue i depends only on that dialogue, its index `first_index + i` and the options.
/// @tparam Policy models `language_model`.
/// @param first_index the position of `contexts[0]` in the whole job (for seeds that survive batching).
template <class Policy>
[[nodiscard]] std::vector<comparison> sample_pairs(Policy& policy, std::span<const dialogue> contexts,
                                                   const pair_options& options, std::uint64_t first_index = 0) {
  CAI_ASSERT_LANGUAGE_MODEL(Policy);
  std::vector<generation_request> requests;
  requests.reserve(2 * contexts.size());
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    const std::string prompt = prompts::initial_prompt(contexts[i]);
    for (std::uint64_t s = 0; s < 2; ++s) {
      generation_request r{prompt, s == 0 ? options.first : options.second, {}};
      r.options.seed = derive_seed(options.seed, {first_index + i, s});
      if (options.chat_messages) r.messages = contexts[i];
      requests.push_back(std::move(r));
    }
  }
  const std::vector<std::string> texts = policy.generate(std::span<const generation_request>(requests));
  if (texts.size() != requests.size())
    throw error("sample_pairs: the policy returned " + std::to_string(texts.size()) + " texts for " +
                std::to_string(requests.size()) + " requests (a language_model returns one per request)");
  std::vector<comparison> out;
  out.reserve(contexts.size());
  for (std::size_t i = 0; i < contexts.size(); ++i)
    out.push_back({contexts[i], prompts::clean_generation(texts[2 * i], options.first.stop),
                   prompts::clean_generation(texts[2 * i + 1], options.second.stop)});
  return out;
}

}  // namespace cai
