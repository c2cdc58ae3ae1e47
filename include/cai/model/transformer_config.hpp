/// @file model/transformer_config.hpp
/// The shape of a decoder-only transformer of the two families cai runs: GPT-2 (learned positions,
/// LayerNorm with bias, GELU-tanh MLP, tied embeddings, biases; Radford et al. 2019) and Llama (RMSNorm,
/// rotary positions with a configurable base, SwiGLU MLP, grouped-query attention, tied or untied output
/// head, no biases; Touvron et al. 2023). The loaders of Hugging Face directories and GGUF files fill one
/// in; `validate()` says which field is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cai/backend/options.hpp"
#include "cai/error.hpp"

namespace cai {

/// Which architecture a transformer follows.
enum class model_family : std::uint8_t { gpt2, llama };

[[nodiscard]] constexpr std::string_view to_string(model_family f) noexcept {
  return f == model_family::gpt2 ? "gpt2" : "llama";
}

/// The hyper-parameters of a transformer.
struct transformer_config {
  model_family family = model_family::gpt2;
  std::size_t vocab_size = 0;
  std::size_t context_length = 0;  ///< the longest sequence (GPT-2: number of learned positions)
  std::size_t d_model = 0;
  std::size_t n_layers = 0;
  std::size_t n_heads = 0;
  std::size_t n_kv_heads = 0;      ///< key/value heads (grouped-query attention); = n_heads for GPT-2
  std::size_t d_ff = 0;            ///< hidden size of the MLP
  double norm_eps = 1e-5;          ///< LayerNorm / RMSNorm epsilon
  double rope_theta = 10000.0;     ///< RoPE base (Llama)
  bool tied_embeddings = true;     ///< the output head reuses the token embedding
  rope_style rope = rope_style::half;

  [[nodiscard]] std::size_t head_dim() const noexcept { return n_heads == 0 ? 0 : d_model / n_heads; }

  /// A GPT-2 shape (d_ff = 4 d_model, tied embeddings).
  [[nodiscard]] static transformer_config gpt2(std::size_t vocab, std::size_t context, std::size_t d_model,
                                               std::size_t layers, std::size_t heads) {
    transformer_config c;
    c.family = model_family::gpt2;
    c.vocab_size = vocab;
    c.context_length = context;
    c.d_model = d_model;
    c.n_layers = layers;
    c.n_heads = heads;
    c.n_kv_heads = heads;
    c.d_ff = 4 * d_model;
    c.norm_eps = 1e-5;
    c.tied_embeddings = true;
    return c;
  }

  /// A Llama shape.
  [[nodiscard]] static transformer_config llama(std::size_t vocab, std::size_t context, std::size_t d_model,
                                                std::size_t layers, std::size_t heads, std::size_t kv_heads,
                                                std::size_t d_ff, double rope_theta = 10000.0,
                                                bool tied_embeddings = false) {
    transformer_config c;
    c.family = model_family::llama;
    c.vocab_size = vocab;
    c.context_length = context;
    c.d_model = d_model;
    c.n_layers = layers;
    c.n_heads = heads;
    c.n_kv_heads = kv_heads;
    c.d_ff = d_ff;
    c.norm_eps = 1e-5;
    c.rope_theta = rope_theta;
    c.tied_embeddings = tied_embeddings;
    return c;
  }

  /// @throws config_error naming the first field that cannot work.
  void validate() const {
    auto fail = [](const std::string& what) { throw config_error("transformer_config: " + what); };
    if (vocab_size == 0) fail("vocab_size must be positive");
    if (context_length == 0) fail("context_length must be positive");
    if (d_model == 0) fail("d_model must be positive");
    if (n_layers == 0) fail("n_layers must be positive");
    if (n_heads == 0) fail("n_heads must be positive");
    if (d_model % n_heads != 0)
      fail("d_model (" + std::to_string(d_model) + ") must be a multiple of n_heads (" + std::to_string(n_heads) + ")");
    if (n_kv_heads == 0 || n_heads % n_kv_heads != 0)
      fail("n_kv_heads (" + std::to_string(n_kv_heads) + ") must divide n_heads (" + std::to_string(n_heads) + ")");
    if (family == model_family::gpt2 && n_kv_heads != n_heads) fail("GPT-2 has n_kv_heads == n_heads");
    if (family == model_family::gpt2 && !tied_embeddings) fail("GPT-2 ties its output head to the embedding");
    if (family == model_family::llama && head_dim() % 2 != 0) fail("rotary embeddings need an even head size");
    if (d_ff == 0) fail("d_ff must be positive");
    if (!(norm_eps > 0)) fail("norm_eps must be positive");
    if (!(rope_theta > 0)) fail("rope_theta must be positive");
  }

  friend bool operator==(const transformer_config&, const transformer_config&) = default;
};

}  // namespace cai
