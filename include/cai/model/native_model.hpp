/// @file model/native_model.hpp
/// `native_model<Backend>`: a tokenizer, a transformer and (for chat models) a chat template, as one
/// policy that models `language_model` and `scoring_model`, so that the SL-CAI engine, the critics and the
/// rankers run on a real model inside the process.
///
/// - Generation is batched: every request of a call gets a slot of one KV cache; the prompts are
///   prefilled in one pass, then all unfinished requests decode one token per step. Sampling is greedy
///   (temperature 0) or by temperature with top-k and top-p; each request draws from its own generator,
///   seeded by its own seed, so a request's text does not depend on the rest of the batch. A request ends
///   at a stop sequence (cut before it), at the end-of-text or end-of-turn token, at max_new_tokens, or
///   when the context is full.
/// - Scoring returns log P(continuation | context), summed over the continuation's tokens; context and
///   continuation are tokenized separately (as evaluation harnesses do), and requests that share a
///   context run it once and fork its KV cache for each continuation.
/// - Chat models: when a request carries `messages` and the model has a chat template, the rendered chat
///   is the prompt; otherwise `prompt` is used as it is.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "cai/concepts.hpp"
#include "cai/error.hpp"
#include "cai/model/chat_template.hpp"
#include "cai/model/gguf.hpp"
#include "cai/model/load.hpp"
#include "cai/model/tokenizer.hpp"
#include "cai/model/transformer.hpp"
#include "cai/random.hpp"
#include "cai/text/generation.hpp"

namespace cai {

/// Draws the next token from a row of logits: greedy at temperature 0, else softmax(logits / T)
/// restricted to the top k tokens (k = 0: all) and to the smallest set whose probability reaches top_p.
/// Greedy takes the first largest logit; plain temperature sampling (k = 0, top_p = 1) walks the
/// cumulative distribution in vocabulary order in one pass, without sorting; top-k and top-p walk it in
/// order of decreasing probability.
/// @param logits (V), modified in place.
inline std::int32_t sample_token(std::span<float> logits, const generation_options& o, rng& g) {
  const std::size_t V = logits.size();
  if (V == 0) throw config_error("sample_token: an empty row of logits");
  if (o.temperature <= 0.0)
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if ((o.top_k == 0 || o.top_k >= V) && o.top_p >= 1.0) {
    // p_i = exp((l_i - max) / T), vectorised into aligned scratch (the same bits at any address), summed
    // and walked in double in vocabulary order
    const auto v = static_cast<Eigen::Index>(V);
    Eigen::Map<const Eigen::ArrayXf> l(logits.data(), v);
    const float top = l.maxCoeff();
    Eigen::ArrayXf p = ((l - top) * static_cast<float>(1.0 / o.temperature)).exp();
    double total = 0;
    for (Eigen::Index i = 0; i < v; ++i) total += p[i];
    double u = g.uniform_real() * total;
    for (Eigen::Index i = 0; i < v; ++i) {
      if (u < p[i]) return static_cast<std::int32_t>(i);
      u -= p[i];
    }
    for (Eigen::Index i = v; i-- > 0;)  // rounding left u at the end: the last token with any probability
      if (p[i] > 0.0f) return static_cast<std::int32_t>(i);
    return static_cast<std::int32_t>(V - 1);
  }
  std::vector<std::int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  const std::size_t k = o.top_k == 0 ? V : std::min(o.top_k, V);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](std::int32_t a, std::int32_t b) { return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)]; });
  order.resize(k);
  const double top = logits[static_cast<std::size_t>(order[0])];
  std::vector<double> p(k);
  double sum = 0;
  for (std::size_t i = 0; i < k; ++i) sum += (p[i] = std::exp((logits[static_cast<std::size_t>(order[i])] - top) / o.temperature));
  std::size_t keep = k;
  if (o.top_p < 1.0) {
    double acc = 0;
    for (std::size_t i = 0; i < k; ++i) {
      acc += p[i] / sum;
      if (acc >= o.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (std::size_t i = 0; i < keep; ++i) total += p[i];
  double u = g.uniform_real() * total;
  for (std::size_t i = 0; i < keep; ++i) {
    if (u < p[i]) return order[i];
    u -= p[i];
  }
  return order[keep - 1];
}

/// The weights of `native_model::generate`'s decode steps.
enum class decode_weights {
  fp32,  ///< the model's own float weights
  q8_0,  ///< 8-bit blocks (backend/cpu_q8.hpp), made from the float weights at the start of every generate
};

/// Options of a native model.
struct native_model_options {
  /// Tokens that end a generation (end-of-text, end-of-turn); filled from the tokenizer when empty.
  std::vector<std::int32_t> end_tokens;
  /// Use the chat template for requests that carry messages.
  bool use_chat_template = true;
  /// The decode steps' weights (CPU only): `q8_0` quantises the model at the start of every `generate`
  /// call and drops the 8-bit copy at its end (transformer::quantize_for_decoding), so that training
  /// between calls is seen and nothing else decodes with a stale copy; a decode step then reads 3.8 times
  /// fewer bytes. The prefill and `score` stay in float.
  decode_weights decode = decode_weights::fp32;
};

/// A tokenizer and a transformer, modelling `language_model` and `scoring_model`.
template <class Backend = CAI_DEFAULT_BACKEND>
class native_model {
 public:
  native_model(transformer<Backend, float> model, bpe_tokenizer tokenizer, std::optional<chatml_template> chat = {},
               native_model_options options = {})
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)), chat_(std::move(chat)), options_(std::move(options)) {
    if (tokenizer_.vocab_size() > model_.config().vocab_size)
      throw validation_error("native_model: the tokenizer has " + std::to_string(tokenizer_.vocab_size()) +
                             " tokens but the model's vocabulary is " + std::to_string(model_.config().vocab_size));
    if (options_.end_tokens.empty())
      for (const char* t : {"<|endoftext|>", "<|im_end|>", "<|end_of_text|>", "<|eot_id|>", "</s>"})
        if (auto id = tokenizer_.token_to_id(t)) options_.end_tokens.push_back(*id);
  }

  /// Loads a GGUF file (weights, tokenizer and chat template from its metadata) or a Hugging Face
  /// directory (weights and tokenizer.json, or vocab.json + merges.txt).
  [[nodiscard]] static native_model load(const std::filesystem::path& path) {
    if (std::filesystem::is_directory(path)) {
      auto model = load_hf_model<Backend>(path);
      const auto tj = path / "tokenizer.json";
      if (std::filesystem::exists(tj)) {
        std::optional<chatml_template> chat;
        const auto config = path / "tokenizer_config.json";
        if (std::filesystem::exists(config)) {
          std::ifstream in(config);
          const auto j = nlohmann::json::parse(in, nullptr, false);
          if (!j.is_discarded() && j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
            chat = chat_template_from_jinja(j["chat_template"].get<std::string>());
        }
        return native_model(std::move(model), bpe_tokenizer::from_tokenizer_json(tj), std::move(chat));
      }
      const auto vocab = path / "vocab.json", merges = path / "merges.txt";
      if (std::filesystem::exists(vocab) && std::filesystem::exists(merges))
        return native_model(std::move(model), bpe_tokenizer::from_gpt2_files(vocab, merges));
      throw validation_error(path.string() + ": no tokenizer.json (or vocab.json + merges.txt) next to the model");
    }
    auto model = load_gguf_model<Backend>(path);
    const gguf_file file(path);
    const auto meta = read_tokenizer_metadata(file);
    auto tokenizer = bpe_tokenizer::from_gguf_metadata(meta, path.string());
    std::optional<chatml_template> chat;
    if (!meta.chat_template.empty()) chat = chat_template_from_jinja(meta.chat_template);
    native_model_options options;
    if (meta.eos_token_id) options.end_tokens.push_back(static_cast<std::int32_t>(*meta.eos_token_id));
    return native_model(std::move(model), std::move(tokenizer), std::move(chat), std::move(options));
  }

  [[nodiscard]] transformer<Backend, float>& model() noexcept { return model_; }
  /// The options, to change after `load` (for example `options().decode = decode_weights::q8_0`).
  [[nodiscard]] native_model_options& options() noexcept { return options_; }
  [[nodiscard]] const bpe_tokenizer& tokenizer() const noexcept { return tokenizer_; }
  [[nodiscard]] const std::optional<chatml_template>& chat_template() const noexcept { return chat_; }

  /// The text a request is tokenized from: its chat rendering, or its prompt.
  [[nodiscard]] std::string prompt_text(const generation_request& r) const {
    if (chat_ && options_.use_chat_template && !r.messages.empty()) {
      std::vector<chat_message> messages;
      for (const auto& m : r.messages) messages.push_back({std::string(to_string(m.role)), m.content});
      return chat_->render(messages, true);
    }
    return r.prompt;
  }

  /// Batched generation (see the file comment).
  std::vector<std::string> generate(std::span<const generation_request> requests) {
    const std::size_t R = requests.size();
    std::vector<std::string> out(R);
    if (R == 0) return out;
    // 8-bit decoding weights live for this call only: whatever else decodes with the transformer (PPO's
    // rollouts, a caller's own loop) while it trains must never see a stale snapshot
    struct decoding_weights_scope {
      transformer<Backend, float>& m;
      bool on;
      decoding_weights_scope(transformer<Backend, float>& model, bool quantise) : m(model), on(quantise) {
        if constexpr (std::is_same_v<Backend, cpu_t>)
          if (on) m.quantize_for_decoding();
      }
      decoding_weights_scope(const decoding_weights_scope&) = delete;
      decoding_weights_scope& operator=(const decoding_weights_scope&) = delete;
      ~decoding_weights_scope() {
        if constexpr (std::is_same_v<Backend, cpu_t>)
          if (on) m.drop_decoding_weights();
      }
    } decoding(model_, options_.decode == decode_weights::q8_0);
    const std::size_t V = model_.config().vocab_size, context = model_.config().context_length;
    std::vector<std::vector<std::int32_t>> prompts(R), generated(R);
    std::size_t longest = 1;
    for (std::size_t i = 0; i < R; ++i) {
      prompts[i] = tokenizer_.encode(prompt_text(requests[i]));
      if (prompts[i].empty()) prompts[i] = start_tokens();
      if (prompts[i].size() >= context)  // keep the most recent tokens
        prompts[i].erase(prompts[i].begin(), prompts[i].end() - static_cast<std::ptrdiff_t>(context - 1));
      longest = std::max(longest, prompts[i].size() + requests[i].options.max_new_tokens);
    }
    kv_cache<Backend, float> cache(model_.config(), R, std::min(longest, context));
    std::vector<rng> gens;
    for (const auto& r : requests) gens.emplace_back(r.options.seed);

    // prefill: every prompt in one pass, the logits of each one's last token only
    std::vector<cache_segment> segments;
    for (std::size_t i = 0; i < R; ++i) segments.push_back({i, prompts[i]});
    std::vector<std::vector<float>> last(R);
    {
      const auto logits = model_.forward_cached(cache, segments, cached_logits::last);
      for (std::size_t i = 0; i < R; ++i)
        last[i].assign(logits.begin() + static_cast<std::ptrdiff_t>(i * V), logits.begin() + static_cast<std::ptrdiff_t>((i + 1) * V));
    }
    std::vector<bool> done(R, false);
    std::vector<std::int32_t> next(R);
    for (;;) {
      segments.clear();
      for (std::size_t i = 0; i < R; ++i) {
        if (done[i]) continue;
        const auto& o = requests[i].options;
        if (generated[i].size() >= o.max_new_tokens || cache.length(i) >= cache.max_len()) {
          done[i] = true;
          continue;
        }
        next[i] = sample_token(last[i], o, gens[i]);
        if (std::find(options_.end_tokens.begin(), options_.end_tokens.end(), next[i]) != options_.end_tokens.end()) {
          done[i] = true;
          continue;
        }
        generated[i].push_back(next[i]);
        if (!o.stop.empty() && cut_at_stop(tokenizer_.decode(generated[i]), o.stop).second) {
          done[i] = true;
          continue;
        }
        if (generated[i].size() >= o.max_new_tokens || cache.length(i) + 1 > cache.max_len()) {
          done[i] = true;
          continue;
        }
        segments.push_back({i, std::span<const std::int32_t>(&next[i], 1)});
      }
      if (segments.empty()) break;
      const auto logits = model_.forward_cached(cache, segments);
      for (std::size_t s = 0; s < segments.size(); ++s)
        last[segments[s].slot].assign(logits.begin() + static_cast<std::ptrdiff_t>(s * V),
                                      logits.begin() + static_cast<std::ptrdiff_t>((s + 1) * V));
    }
    for (std::size_t i = 0; i < R; ++i)
      out[i] = cut_at_stop(tokenizer_.decode(generated[i]), requests[i].options.stop).first;
    return out;
  }

  /// log P(continuation | context) per request (see the file comment).
  /// @throws config_error when context and continuation together exceed the context length.
  std::vector<double> score(std::span<const scoring_request> requests) {
    std::vector<double> out(requests.size(), 0.0);
    const std::size_t V = model_.config().vocab_size;
    // requests grouped by context, in first-appearance order
    std::map<std::string, std::vector<std::size_t>> groups;
    std::vector<std::string> order;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      auto [it, fresh] = groups.try_emplace(requests[i].context);
      if (fresh) order.push_back(requests[i].context);
      it->second.push_back(i);
    }
    for (const auto& context : order) {
      const auto& members = groups[context];
      std::vector<std::int32_t> ctx = tokenizer_.encode(context);
      if (ctx.empty()) ctx = start_tokens();
      std::vector<std::vector<std::int32_t>> conts;
      std::size_t longest = 0;
      for (std::size_t i : members) {
        conts.push_back(tokenizer_.encode(requests[i].continuation));
        longest = std::max(longest, conts.back().size());
      }
      const std::size_t need = ctx.size() + longest;
      if (need > model_.config().context_length)
        throw config_error("native_model::score: context and continuation take " + std::to_string(need) +
                           " tokens; the model's context is " + std::to_string(model_.config().context_length));
      // slot 0 holds the context; each continuation runs in slot 1 on a fork of it
      kv_cache<Backend, float> cache(model_.config(), 2, std::max<std::size_t>(need, 1));
      const std::vector<cache_segment> prefix{{0, ctx}};
      const auto ctx_logits = model_.forward_cached(cache, prefix, cached_logits::last);
      const std::vector<float> after_context(ctx_logits.begin(), ctx_logits.end());
      for (std::size_t m = 0; m < members.size(); ++m) {
        const auto& cont = conts[m];
        double total = 0;
        if (!cont.empty()) {
          total += log_softmax_at(after_context.data(), V, cont[0]);
          if (cont.size() > 1) {
            cache.copy_slot(0, 1);
            const std::vector<cache_segment> rest{{1, std::span<const std::int32_t>(cont).first(cont.size() - 1)}};
            const auto logits = model_.forward_cached(cache, rest);
            for (std::size_t t = 1; t < cont.size(); ++t) total += log_softmax_at(logits.data() + (t - 1) * V, V, cont[t]);
          }
        }
        out[members[m]] = total;
      }
    }
    return out;
  }

 private:
  static double log_softmax_at(const float* row, std::size_t V, std::int32_t id) {
    const float m = *std::max_element(row, row + V);
    double sum = 0;
    for (std::size_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(row[i] - m));
    return static_cast<double>(row[static_cast<std::size_t>(id)] - m) - std::log(sum);
  }

  /// The tokens an empty text starts from: the first end token (models use it as a document separator).
  [[nodiscard]] std::vector<std::int32_t> start_tokens() const {
    if (options_.end_tokens.empty())
      throw config_error("native_model: an empty text has no token to start from (the tokenizer has no end-of-text token)");
    return {options_.end_tokens.front()};
  }

  /// `text` cut before the first stop sequence, and whether one was found.
  static std::pair<std::string, bool> cut_at_stop(std::string text, const std::vector<std::string>& stop) {
    std::size_t cut = std::string::npos;
    for (const auto& s : stop)
      if (!s.empty()) cut = std::min(cut, text.find(s));
    if (cut == std::string::npos) return {std::move(text), false};
    text.resize(cut);
    return {std::move(text), true};
  }

  transformer<Backend, float> model_;
  bpe_tokenizer tokenizer_;
  std::optional<chatml_template> chat_;
  native_model_options options_;
};

}  // namespace cai
