/// @file critique/engine.hpp
/// The SL-CAI engine (Bai et al. 2022, arXiv:2212.08073, section 3.1): for each red-team prompt the
/// model answers; a revision strategy then critiques and revises the answer in rounds, a principle drawn
/// for each; every finished record (prompt, initial response, each round's principle, critique and
/// revision, final revision) is appended to a JSONL file as soon as its batch completes.
///
/// The engine pulls prompts lazily from any input range (range-v3 views included), sends them to the
/// model in batches, and resumes: run it again on the same output file and the records already there are
/// neither redone nor duplicated, and a last line cut short by a killed run is detected and redone.
/// Draws and seeds depend only on (run seed, prompt position, round), so a resumed run writes what an
/// uninterrupted one would have.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <range/v3/range/access.hpp>
#include <range/v3/range/concepts.hpp>

#include "cai/concepts.hpp"
#include "cai/config.hpp"
#include "cai/data/jsonl.hpp"
#include "cai/prompts/chat.hpp"
#include "cai/prompts/parse.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/random.hpp"
#include "cai/text/json.hpp"

namespace cai {

/// Options of `critique_revise`.
struct sl_cai_options {
  std::size_t batch_size = CAI_DEFAULT_BATCH_SIZE;  ///< prompts per batched model call
  std::uint64_t seed = 0;                           ///< fixes every draw and every sample of the run
  /// Sampling of the initial responses; `stop` defaults to the transcript's turn markers.
  generation_options response_generation{.max_new_tokens = 256, .temperature = 0.0, .stop = prompts::stop_sequences()};
  bool chat_messages = false;   ///< also send role-tagged messages, for chat models
  std::filesystem::path output; ///< JSONL file to append records to and resume from; empty: none
  std::function<void(const revision_trace&)> on_record;  ///< called for each record as it is finished
};

/// What a `critique_revise` run did.
struct sl_cai_summary {
  std::size_t prompts = 0;    ///< prompts read from the input
  std::size_t resumed = 0;    ///< prompts whose record was already in the output, skipped
  std::size_t written = 0;    ///< records produced by this run
  bool redid_truncated_line = false;  ///< the output ended in a partial line, which was removed and redone
};

/// A prompt, as the engine accepts it: a string (one user turn) or a whole dialogue.
template <class T>
concept prompt_like = std::convertible_to<T, std::string> || std::convertible_to<T, dialogue>;

namespace detail {
template <class T>
dialogue as_dialogue(T&& prompt) {
  if constexpr (std::convertible_to<T, dialogue>) return dialogue(std::forward<T>(prompt));
  else return user_turn(std::string(std::forward<T>(prompt)));
}
}  // namespace detail

/// The seed of the record at position `id` of a run seeded with `run_seed`.
[[nodiscard]] constexpr std::uint64_t record_seed(std::uint64_t run_seed, std::uint64_t id) noexcept {
  return derive_seed(run_seed, {id});
}

/// Runs SL-CAI over `prompts`.
///
/// @tparam Model models `language_model`: writes the initial responses.
/// @tparam Reviser models `reviser` for `Principles` (`multi_turn<self_critic<Model>, 4>`, ...).
/// @tparam Principles models `principle_set` (a `constitution`).
/// @tparam Prompts a range-v3 input range of strings or dialogues; read once, lazily, in order.
/// @param options batch size, seed, sampling, the output file and a per-record callback.
/// @throws config_error for a batch size of 0; io_error / parse_error for an unusable output file;
///         validation_error when the output holds a record for a different prompt at the same position.
template <class Model, class Reviser, class Principles, class Prompts>
sl_cai_summary critique_revise(Model& model, Reviser& reviser, const Principles& principles,
                               Prompts&& prompts, const sl_cai_options& options = {}) {
  CAI_ASSERT_LANGUAGE_MODEL(Model);
  static_assert(principle_set<Principles>,
                "cai::critique_revise: Principles must model cai::principle_set (e.g. cai::constitution)");
  CAI_ASSERT_REVISER(Reviser, Principles);
  static_assert(ranges::input_range<Prompts>, "cai::critique_revise: prompts must be an input range");
  static_assert(prompt_like<ranges::range_reference_t<Prompts>>,
                "cai::critique_revise: each prompt must convert to std::string or cai::dialogue");
  if (options.batch_size == 0) throw config_error("critique_revise: batch_size must be at least 1");

  sl_cai_summary summary;
  std::map<std::uint64_t, dialogue> done;  // records already in the output, by id
  std::optional<jsonl_writer> writer;
  if (!options.output.empty()) {
    const std::string file = options.output.string();
    auto recovery = recover_jsonl(options.output, [&](const nlohmann::json& j, std::size_t) {
      revision_trace t = j.get<revision_trace>();
      done[t.id] = std::move(t.context);
    });
    summary.redid_truncated_line = recovery.truncated_tail;
    writer.emplace(options.output);
  }

  std::vector<std::uint64_t> ids;
  std::vector<dialogue> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    // 1. The initial responses, batched.
    std::vector<generation_request> requests;
    std::vector<std::uint64_t> seeds;
    requests.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      seeds.push_back(record_seed(options.seed, ids[i]));
      generation_request r{prompts::initial_prompt(batch[i]), options.response_generation, {}};
      r.options.seed = derive_seed(seeds.back(), {~std::uint64_t{0}});
      if (options.chat_messages) r.messages = batch[i];
      requests.push_back(std::move(r));
    }
    std::vector<std::string> responses = model.generate(std::span<const generation_request>(requests));
    if (responses.size() != requests.size())
      throw error("critique_revise: the model returned " + std::to_string(responses.size()) +
                  " texts for " + std::to_string(requests.size()) + " prompts");
    std::vector<exchange> starts;
    starts.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
      starts.push_back({batch[i], prompts::clean_generation(responses[i], options.response_generation.stop)});

    // 2. The critique-revision rounds.
    std::vector<std::vector<critique_step>> rounds =
        reviser.revise(std::span<const exchange>(starts), std::span<const std::uint64_t>(seeds), principles);
    if (rounds.size() != starts.size())
      throw error("critique_revise: the reviser returned " + std::to_string(rounds.size()) +
                  " traces for " + std::to_string(starts.size()) + " exchanges");

    // 3. Each finished record, written and reported in input order.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      revision_trace trace{ids[i], std::move(starts[i].context), std::move(starts[i].response), std::move(rounds[i])};
      if (writer) writer->write(nlohmann::json(trace));
      ++summary.written;
      if (options.on_record) options.on_record(trace);
    }
    batch.clear();
    ids.clear();
  };

  std::uint64_t id = 0;
  for (auto&& prompt : prompts) {
    dialogue d = detail::as_dialogue(std::forward<decltype(prompt)>(prompt));
    ++summary.prompts;
    if (auto it = done.find(id); it != done.end()) {
      if (it->second != d)
        throw validation_error(options.output.string() + ": record " + std::to_string(id) +
                               " was written for a different prompt than input " + std::to_string(id) +
                               "; resume with the same prompts in the same order, or write to a new file");
      ++summary.resumed;
    } else {
      ids.push_back(id);
      batch.push_back(std::move(d));
      if (batch.size() == options.batch_size) flush();
    }
    ++id;
  }
  flush();
  return summary;
}

/// Reads the records of an SL-CAI output file.
/// @throws parse_error naming the line of a malformed record.
[[nodiscard]] inline std::vector<revision_trace> read_revision_traces(const std::filesystem::path& path) {
  std::vector<revision_trace> traces;
  for_each_jsonl(path, [&](const nlohmann::json& j, std::size_t) { traces.push_back(j.get<revision_trace>()); });
  return traces;
}

/// One supervised example cut from SL-CAI: the dialogue and the response to train on.
struct sft_example {
  dialogue context;
  std::string response;
};

/// The SL-CAI-`rounds` dataset of the paper: each prompt paired with its response after `rounds`
/// revisions (the last revision when a record has fewer rounds; `rounds` = 0 gives the initial answers).
[[nodiscard]] inline std::vector<sft_example> sl_cai_dataset(std::span<const revision_trace> traces,
                                                            std::size_t rounds) {
  std::vector<sft_example> out;
  out.reserve(traces.size());
  for (const auto& t : traces) out.push_back({t.context, t.response_after(rounds)});
  return out;
}

}  // namespace cai
