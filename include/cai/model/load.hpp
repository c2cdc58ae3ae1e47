/// @file model/load.hpp
/// From files to a `transformer` and back: `load_model(path)` builds the right family from a Hugging Face
/// directory (config.json + safetensors, GPT-2 or Llama) or a GGUF file (Llama family, any of the types
/// the GGUF reader dequantises), and `save_model` writes a Hugging Face directory (config.json +
/// model.safetensors, F32) that `load_model` and Hugging Face `transformers` read back.
///
/// Layouts: the transformer stores every weight as `nn.Linear` does, (out, in). GPT-2 checkpoints store
/// their Conv1D weights as (in, out): they are transposed on the way in and out. llama.cpp's converter
/// permutes the rows of `attn_q` and `attn_k` so that its interleaved rotary embedding matches Hugging
/// Face's half-split one; loading a GGUF file undoes that permutation, so a loaded model always uses
/// `rope_style::half`, the Hugging Face convention.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"
#include "cai/model/gguf.hpp"
#include "cai/model/hf_config.hpp"
#include "cai/model/hf_directory.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/model/transformer.hpp"

namespace cai {

namespace detail {

/// dst (rows, cols) = transpose of src (cols, rows).
inline void transpose_into(float* dst, const float* src, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) dst[r * cols + c] = src[c * rows + r];
}

/// True for GPT-2 tensors stored by Conv1D as (in, out).
inline bool is_conv1d_weight(const std::string& name) {
  return name.ends_with(".weight") && (name.find(".c_attn.") != std::string::npos ||
                                       name.find(".c_proj.") != std::string::npos ||
                                       name.find(".c_fc.") != std::string::npos);
}

/// Undoes llama.cpp's permutation of q/k rows for `heads` heads of size D, row length C:
/// Hugging Face row (h, i, j) = GGUF row (h, j, i), with i the half (0, 1) and j in [0, D/2).
inline void unpermute_rope_rows(float* w, std::size_t heads, std::size_t D, std::size_t C) {
  std::vector<float> head(D * C);
  for (std::size_t h = 0; h < heads; ++h) {
    float* base = w + h * D * C;
    std::copy_n(base, D * C, head.data());
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < D / 2; ++j)
        std::copy_n(head.data() + (2 * j + i) * C, C, base + (i * (D / 2) + j) * C);
  }
}

/// The GGUF name of a Llama parameter of the transformer (llama.cpp's naming).
inline std::string gguf_name(const std::string& name) {
  if (name == "model.embed_tokens.weight") return "token_embd.weight";
  if (name == "model.norm.weight") return "output_norm.weight";
  if (name == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (!name.starts_with(prefix)) return name;
  const auto dot = name.find('.', prefix.size());
  const std::string layer = name.substr(prefix.size(), dot - prefix.size());
  const std::string rest = name.substr(dot + 1);
  static const std::pair<const char*, const char*> map[] = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},       {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  for (const auto& [hf, gg] : map)
    if (rest == hf) return "blk." + layer + "." + gg;
  return name;
}

inline bool has_gguf_magic(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
}

/// Where a loader writes the tensors of `model`: straight into its parameters on the CPU; on another
/// backend (device memory) into a host buffer that `finish()` copies over in one go.
template <class Backend>
class load_target {
 public:
  explicit load_target(transformer<Backend, float>& model) : model_(model) {
    if constexpr (!std::is_same_v<Backend, cpu_t>) staging_.resize(model.num_parameters());
  }
  [[nodiscard]] float* operator()(const parameter_info& p) {
    if constexpr (std::is_same_v<Backend, cpu_t>)
      return model_.data(p);
    else
      return staging_.data() + p.offset;
  }
  void finish() {
    if constexpr (!std::is_same_v<Backend, cpu_t>) model_.load_parameters(staging_);
  }

 private:
  transformer<Backend, float>& model_;
  std::vector<float> staging_;
};

}  // namespace detail

/// Loads a Hugging Face model directory (GPT-2 or Llama family).
/// @throws the errors of `hf_directory::open` (missing files, malformed config, missing or misshapen
///         tensors, each named).
template <class Backend = CAI_DEFAULT_BACKEND>
[[nodiscard]] transformer<Backend, float> load_hf_model(const std::filesystem::path& dir) {
  const hf_directory d = hf_directory::open(dir);
  transformer<Backend, float> model(to_transformer_config(d.config()));
  detail::load_target<Backend> target(model);
  const auto names = d.names();
  auto find = [&](const std::string& name) -> std::string {
    for (const std::string& candidate : {name, "transformer." + name})
      if (std::find(names.begin(), names.end(), candidate) != names.end()) return candidate;
    throw validation_error(dir.string() + ": tensor '" + name + "' is missing from the checkpoint");
  };
  for (const auto& p : model.parameters()) {
    const std::string stored = find(p.name);
    const std::vector<float> values = d.read_f32(stored);
    if (values.size() != p.size)
      throw validation_error(dir.string() + ": tensor '" + stored + "' has " + std::to_string(values.size()) +
                             " elements; the config implies " + std::to_string(p.size));
    float* dst = target(p);
    if (model.config().family == model_family::gpt2 && detail::is_conv1d_weight(p.name))
      detail::transpose_into(dst, values.data(), p.shape[0], p.shape[1]);
    else
      std::copy(values.begin(), values.end(), dst);
  }
  target.finish();
  return model;
}

/// Loads a Llama-family GGUF file, dequantising every tensor to fp32.
/// @throws the errors of `gguf_file` and `read_llama_config`; validation_error naming a missing tensor.
template <class Backend = CAI_DEFAULT_BACKEND>
[[nodiscard]] transformer<Backend, float> load_gguf_model(const std::filesystem::path& path) {
  const gguf_file file(path);
  const gguf_llama_config g = read_llama_config(file);
  const bool has_output = [&] {
    for (const auto& t : file.tensors())
      if (t.name == "output.weight") return true;
    return false;
  }();
  transformer_config c = transformer_config::llama(g.vocab_size, g.context_length, g.embedding_length, g.block_count,
                                                   g.head_count, g.head_count_kv, g.feed_forward_length,
                                                   static_cast<double>(g.rope_freq_base), !has_output);
  c.norm_eps = static_cast<double>(g.rms_norm_eps);
  transformer<Backend, float> model(c);
  detail::load_target<Backend> target(model);
  const std::size_t D = c.head_dim();
  for (const auto& p : model.parameters()) {
    const std::string name = detail::gguf_name(p.name);
    const std::vector<float> values = file.dequantize(name);  // throws naming a missing tensor
    if (values.size() != p.size)
      throw validation_error(path.string() + ": tensor '" + name + "' has " + std::to_string(values.size()) +
                             " elements; the configuration implies " + std::to_string(p.size));
    float* dst = target(p);
    std::copy(values.begin(), values.end(), dst);
    if (p.name.ends_with("q_proj.weight")) detail::unpermute_rope_rows(dst, c.n_heads, D, c.d_model);
    if (p.name.ends_with("k_proj.weight")) detail::unpermute_rope_rows(dst, c.n_kv_heads, D, c.d_model);
  }
  target.finish();
  return model;
}

/// Loads a model from a Hugging Face directory or a GGUF file, whichever `path` is.
template <class Backend = CAI_DEFAULT_BACKEND>
[[nodiscard]] transformer<Backend, float> load_model(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) return load_hf_model<Backend>(path);
  if (!std::filesystem::exists(path)) throw io_error(path.string(), "no such file or directory");
  if (detail::has_gguf_magic(path)) return load_gguf_model<Backend>(path);
  throw validation_error(path.string() +
                         ": not a model: expected a Hugging Face directory (config.json + model.safetensors) or a "
                         "GGUF file");
}

/// The Hugging Face `config.json` of a transformer.
[[nodiscard]] inline nlohmann::json hf_config_json(const transformer_config& c) {
  if (c.family == model_family::gpt2)
    return {{"model_type", "gpt2"},         {"architectures", {"GPT2LMHeadModel"}},
            {"vocab_size", c.vocab_size},   {"n_positions", c.context_length},
            {"n_ctx", c.context_length},    {"n_embd", c.d_model},
            {"n_layer", c.n_layers},        {"n_head", c.n_heads},
            {"n_inner", c.d_ff},            {"layer_norm_epsilon", c.norm_eps},
            {"activation_function", "gelu_new"}, {"tie_word_embeddings", true},
            {"torch_dtype", "float32"}};
  return {{"model_type", "llama"},
          {"architectures", {"LlamaForCausalLM"}},
          {"vocab_size", c.vocab_size},
          {"max_position_embeddings", c.context_length},
          {"hidden_size", c.d_model},
          {"num_hidden_layers", c.n_layers},
          {"num_attention_heads", c.n_heads},
          {"num_key_value_heads", c.n_kv_heads},
          {"intermediate_size", c.d_ff},
          {"rms_norm_eps", c.norm_eps},
          {"rope_theta", c.rope_theta},
          {"tie_word_embeddings", c.tied_embeddings},
          {"hidden_act", "silu"},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"torch_dtype", "float32"}};
}

/// Writes `model` as a Hugging Face directory: config.json and model.safetensors (F32, Hugging Face
/// layouts and names).
/// @throws config_error for a model whose rotary convention Hugging Face cannot express
///         (`rope_style::interleaved`); io_error when the directory cannot be written.
template <class Backend>
void save_model(const transformer<Backend, float>& model, const std::filesystem::path& dir) {
  const transformer_config& c = model.config();
  if (c.family == model_family::llama && c.rope != rope_style::half)
    throw config_error("save_model: Hugging Face Llama models use rope_style::half; this model uses interleaved rotary "
                       "embeddings");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw io_error(dir.string(), "cannot create the directory: " + ec.message());
  std::vector<float> host;  // another backend's weights, copied to the host once
  const float* weights = nullptr;
  if constexpr (std::is_same_v<Backend, cpu_t>) {
    weights = model.data();
  } else {
    host = model.host_parameters();
    weights = host.data();
  }
  std::vector<std::vector<float>> buffers;
  std::vector<named_tensor> tensors;
  buffers.reserve(model.parameters().size());
  for (const auto& p : model.parameters()) {
    const float* src = weights + p.offset;
    std::vector<std::int64_t> shape(p.shape.begin(), p.shape.end());
    if (c.family == model_family::gpt2 && detail::is_conv1d_weight(p.name)) {
      buffers.emplace_back(p.size);
      detail::transpose_into(buffers.back().data(), src, p.shape[1], p.shape[0]);
      std::swap(shape[0], shape[1]);
      tensors.push_back({p.name, shape, std::span<const float>(buffers.back())});
    } else {
      tensors.push_back({p.name, shape, std::span<const float>(src, p.size)});
    }
  }
  save_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  std::ofstream out(dir / "config.json", std::ios::binary | std::ios::trunc);
  if (!out) throw io_error((dir / "config.json").string(), "cannot open for writing");
  out << hf_config_json(c).dump(2) << '\n';
  if (!out) throw io_error((dir / "config.json").string(), "write failed");
}

}  // namespace cai
