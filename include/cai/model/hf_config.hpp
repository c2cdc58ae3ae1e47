/// @file model/hf_config.hpp
/// Hugging Face `config.json` for the two transformer families cai runs: GPT-2 (Radford et al. 2019;
/// `GPT2LMHeadModel`) and Llama (Touvron et al. 2023; `LlamaForCausalLM`, which SmolLM2 also uses).
/// This header detects the family from `"model_type"` / `"architectures"`, reads each family's fields
/// with errors that name the file and the key, gives the tensor names and shapes that a checkpoint of
/// that configuration must hold (as `transformers` names them), and checks a checkpoint's tensors
/// against them: a missing tensor, an unexpected tensor and a shape that disagrees with the config are
/// each reported by name. `to_transformer_config` turns a parsed config into the `transformer_config`
/// (model/transformer_config.hpp, which also defines `model_family`) that the transformer runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/detail/json_text.hpp"
#include "cai/error.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/model/transformer_config.hpp"

namespace cai {

/// A GPT-2 `config.json` (transformers' GPT2Config). Linear layers are Conv1D: weights are [in, out].
struct gpt2_config {
  std::int64_t n_embd = 0;             ///< model width; required
  std::int64_t n_layer = 0;            ///< transformer blocks; required
  std::int64_t n_head = 0;             ///< attention heads; required, divides n_embd
  std::int64_t n_positions = 1024;     ///< context length (rows of wpe); default 1024
  std::int64_t vocab_size = 0;         ///< rows of wte; required
  std::int64_t n_inner = 0;            ///< MLP width; absent or null means 4 * n_embd
  double layer_norm_epsilon = 1e-5;    ///< default 1e-5
};

/// A Llama `config.json` (transformers' LlamaConfig). Linear weights are [out, in].
struct llama_config {
  std::int64_t hidden_size = 0;               ///< model width; required
  std::int64_t num_hidden_layers = 0;         ///< transformer blocks; required
  std::int64_t num_attention_heads = 0;       ///< query heads; required
  std::int64_t num_key_value_heads = 0;       ///< key/value heads (grouped-query attention); default: num_attention_heads
  std::int64_t head_dim = 0;                  ///< default: hidden_size / num_attention_heads
  std::int64_t intermediate_size = 0;         ///< MLP width; required
  std::int64_t vocab_size = 0;                ///< required
  std::int64_t max_position_embeddings = 2048;  ///< default 2048
  double rope_theta = 10000.0;                ///< RoPE base; default 10000
  double rms_norm_eps = 1e-6;                 ///< default 1e-6
  bool tie_word_embeddings = false;           ///< lm_head shares embed_tokens; default false
};

/// A configuration of either family.
using hf_config = std::variant<gpt2_config, llama_config>;

/// The family of a parsed configuration.
[[nodiscard]] inline model_family family_of(const hf_config& c) noexcept {
  return std::holds_alternative<gpt2_config>(c) ? model_family::gpt2 : model_family::llama;
}

/// Tensor name -> shape.
using tensor_shapes = std::map<std::string, std::vector<std::int64_t>>;

namespace detail {

/// Reads config fields of one JSON object with messages "<source>: field '<key>' ...".
class config_reader {
 public:
  config_reader(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {
    if (!j_.is_object())
      throw validation_error(source_ + ": a config must be a JSON object, but it is " + std::string(j_.type_name()));
  }

  /// A required integer >= 1.
  [[nodiscard]] std::int64_t positive(const char* key) const {
    const auto* v = find(key);
    if (v == nullptr) throw validation_error(source_ + ": missing field '" + key + "' (a positive integer)");
    return positive_value(key, *v);
  }
  /// An optional integer >= 1; absent or null gives `fallback`.
  [[nodiscard]] std::int64_t positive_or(const char* key, std::int64_t fallback) const {
    const auto* v = find(key);
    return v == nullptr ? fallback : positive_value(key, *v);
  }
  /// An optional number > 0; absent or null gives `fallback`.
  [[nodiscard]] double positive_real_or(const char* key, double fallback) const {
    const auto* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number()) wrong(key, "a number", *v);
    const double d = v->get<double>();
    if (!(d > 0.0)) wrong(key, "a positive number", *v);
    return d;
  }
  /// An optional boolean; absent or null gives `fallback`.
  [[nodiscard]] bool boolean_or(const char* key, bool fallback) const {
    const auto* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) wrong(key, "a boolean", *v);
    return v->get<bool>();
  }
  [[noreturn]] void fail(const std::string& what) const { throw validation_error(source_ + ": " + what); }

 private:
  [[nodiscard]] const nlohmann::json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  [[nodiscard]] std::int64_t positive_value(const char* key, const nlohmann::json& v) const {
    if (!v.is_number_integer()) wrong(key, "a positive integer", v);
    if (v.is_number_unsigned() ? v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                               : v.get<std::int64_t>() < 1)
      wrong(key, "a positive integer", v);
    const auto i = v.get<std::int64_t>();
    if (i < 1) wrong(key, "a positive integer", v);
    return i;
  }
  [[noreturn]] void wrong(const char* key, const char* expected, const nlohmann::json& v) const {
    throw validation_error(source_ + ": field '" + key + "' must be " + expected + ", but it is " +
                           std::string(v.type_name()) + " " + v.dump());
  }

  const nlohmann::json& j_;
  std::string source_;
};

}  // namespace detail

/// The family a `config.json` describes: from `"model_type"`, else from the first of `"architectures"`.
/// @param source the file name for messages.
/// @throws validation_error naming `source` when neither field names a supported family, or they disagree.
[[nodiscard]] inline model_family detect_family(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw validation_error(source + ": a config must be a JSON object");
  std::optional<model_family> by_type, by_arch;
  std::string type_text, arch_text;
  if (auto it = config.find("model_type"); it != config.end()) {
    if (!it->is_string())
      throw validation_error(source + ": field 'model_type' must be a string, but it is " + std::string(it->type_name()));
    type_text = it->get<std::string>();
    if (type_text == "gpt2") by_type = model_family::gpt2;
    else if (type_text == "llama") by_type = model_family::llama;
  }
  if (auto it = config.find("architectures"); it != config.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || !(*it)[0].is_string())
      throw validation_error(source + ": field 'architectures' must be a non-empty array of strings, but it is " +
                             it->dump());
    arch_text = (*it)[0].get<std::string>();
    if (arch_text.rfind("GPT2", 0) == 0) by_arch = model_family::gpt2;
    else if (arch_text.rfind("Llama", 0) == 0) by_arch = model_family::llama;
  }
  if (by_type && by_arch && *by_type != *by_arch)
    throw validation_error(source + ": field 'model_type' (\"" + type_text + "\") and field 'architectures' (\"" +
                           arch_text + "\") name different model families");
  if (by_type) return *by_type;
  if (by_arch && type_text.empty()) return *by_arch;
  if (type_text.empty() && arch_text.empty())
    throw validation_error(source + ": missing field 'model_type' (and no 'architectures'); cannot tell the model "
                           "family (supported: \"gpt2\", \"llama\")");
  throw validation_error(source + ": unsupported model family (model_type \"" + type_text + "\", architectures \"" +
                         arch_text + "\"); supported: \"gpt2\" (GPT2LMHeadModel), \"llama\" (LlamaForCausalLM)");
}

/// Reads a GPT-2 configuration.
/// @throws validation_error naming `source` and the key for a missing field, a field of the wrong type,
/// or n_embd not divisible by n_head.
[[nodiscard]] inline gpt2_config parse_gpt2_config(const nlohmann::json& j, const std::string& source) {
  const detail::config_reader r(j, source);
  gpt2_config c;
  c.n_embd = r.positive("n_embd");
  c.n_layer = r.positive("n_layer");
  c.n_head = r.positive("n_head");
  c.vocab_size = r.positive("vocab_size");
  c.n_positions = r.positive_or("n_positions", 1024);
  c.n_inner = r.positive_or("n_inner", 4 * c.n_embd);
  c.layer_norm_epsilon = r.positive_real_or("layer_norm_epsilon", 1e-5);
  if (c.n_embd % c.n_head != 0)
    r.fail("field 'n_embd' (" + std::to_string(c.n_embd) + ") must be divisible by field 'n_head' (" +
           std::to_string(c.n_head) + ")");
  return c;
}

/// Reads a Llama configuration.
/// @throws validation_error naming `source` and the key for a missing field, a field of the wrong type,
/// hidden_size not divisible by num_attention_heads (without head_dim), or num_attention_heads not
/// divisible by num_key_value_heads.
[[nodiscard]] inline llama_config parse_llama_config(const nlohmann::json& j, const std::string& source) {
  const detail::config_reader r(j, source);
  llama_config c;
  c.hidden_size = r.positive("hidden_size");
  c.num_hidden_layers = r.positive("num_hidden_layers");
  c.num_attention_heads = r.positive("num_attention_heads");
  c.intermediate_size = r.positive("intermediate_size");
  c.vocab_size = r.positive("vocab_size");
  c.num_key_value_heads = r.positive_or("num_key_value_heads", c.num_attention_heads);
  c.max_position_embeddings = r.positive_or("max_position_embeddings", 2048);
  c.rope_theta = r.positive_real_or("rope_theta", 10000.0);
  // transformers 5 writes the base inside "rope_parameters" instead of at the top level
  if (auto rp = j.find("rope_parameters"); rp != j.end() && rp->is_object() && rp->contains("rope_theta")) {
    const detail::config_reader rope(*rp, source + ": rope_parameters");
    c.rope_theta = rope.positive_real_or("rope_theta", c.rope_theta);
    if (auto type = rp->find("rope_type"); type != rp->end() && type->is_string() && *type != "default")
      rope.fail("rope_type '" + type->get<std::string>() + "' is not supported (only the default rotary embedding)");
  }
  c.rms_norm_eps = r.positive_real_or("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = r.positive("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      r.fail("field 'hidden_size' (" + std::to_string(c.hidden_size) +
             ") must be divisible by field 'num_attention_heads' (" + std::to_string(c.num_attention_heads) + ")");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("field 'num_attention_heads' (" + std::to_string(c.num_attention_heads) +
           ") must be divisible by field 'num_key_value_heads' (" + std::to_string(c.num_key_value_heads) + ")");
  return c;
}

/// Reads a configuration of either family, detected by `detect_family`.
[[nodiscard]] inline hf_config parse_hf_config(const nlohmann::json& j, const std::string& source) {
  if (detect_family(j, source) == model_family::gpt2) return parse_gpt2_config(j, source);
  return parse_llama_config(j, source);
}

/// Reads and parses a `config.json` file.
/// @throws io_error when the file cannot be read, parse_error when it is not JSON, validation_error as
/// `parse_hf_config`.
[[nodiscard]] inline hf_config load_hf_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path.string(), "cannot open the model configuration");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json j = detail::parse_json_text(text, path.string());
  return parse_hf_config(j, path.string());
}

/// The transformer shape of a GPT-2 config: learned positions (n_positions), MLP width n_inner, tied
/// output head, LayerNorm epsilon.
[[nodiscard]] inline transformer_config to_transformer_config(const gpt2_config& g) {
  transformer_config c;
  c.family = model_family::gpt2;
  c.vocab_size = static_cast<std::size_t>(g.vocab_size);
  c.context_length = static_cast<std::size_t>(g.n_positions);
  c.d_model = static_cast<std::size_t>(g.n_embd);
  c.n_layers = static_cast<std::size_t>(g.n_layer);
  c.n_heads = static_cast<std::size_t>(g.n_head);
  c.n_kv_heads = static_cast<std::size_t>(g.n_head);
  c.d_ff = static_cast<std::size_t>(g.n_inner);
  c.norm_eps = g.layer_norm_epsilon;
  c.tied_embeddings = true;
  return c;
}

/// The transformer shape of a Llama config, with Hugging Face's rotary convention (`rope_style::half`).
/// @throws validation_error when head_dim is not hidden_size / num_attention_heads, which
/// `transformer_config` cannot express.
[[nodiscard]] inline transformer_config to_transformer_config(const llama_config& l) {
  if (l.head_dim * l.num_attention_heads != l.hidden_size)
    throw validation_error("llama config: head_dim " + std::to_string(l.head_dim) + " x num_attention_heads " +
                           std::to_string(l.num_attention_heads) + " differs from hidden_size " +
                           std::to_string(l.hidden_size) + "; transformer_config supports head_dim = hidden_size / heads only");
  transformer_config c;
  c.family = model_family::llama;
  c.vocab_size = static_cast<std::size_t>(l.vocab_size);
  c.context_length = static_cast<std::size_t>(l.max_position_embeddings);
  c.d_model = static_cast<std::size_t>(l.hidden_size);
  c.n_layers = static_cast<std::size_t>(l.num_hidden_layers);
  c.n_heads = static_cast<std::size_t>(l.num_attention_heads);
  c.n_kv_heads = static_cast<std::size_t>(l.num_key_value_heads);
  c.d_ff = static_cast<std::size_t>(l.intermediate_size);
  c.norm_eps = l.rms_norm_eps;
  c.rope_theta = l.rope_theta;
  c.tied_embeddings = l.tie_word_embeddings;
  c.rope = rope_style::half;
  return c;
}

/// The transformer shape of a config of either family.
[[nodiscard]] inline transformer_config to_transformer_config(const hf_config& c) {
  return std::visit([](const auto& x) { return to_transformer_config(x); }, c);
}

/// The tensors a GPT-2 checkpoint of configuration `c` holds, name -> shape, each name prefixed by
/// `prefix` ("" as the `gpt2` repository stores them, "transformer." as GPT2LMHeadModel's state dict
/// does). Conv1D weights are [in, out]: `h.N.attn.c_attn.weight` is [n_embd, 3 n_embd].
[[nodiscard]] inline tensor_shapes expected_tensors(const gpt2_config& c, std::string_view prefix = "") {
  const std::string p(prefix);
  const auto e = c.n_embd, inner = c.n_inner;
  tensor_shapes t;
  t[p + "wte.weight"] = {c.vocab_size, e};
  t[p + "wpe.weight"] = {c.n_positions, e};
  for (std::int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = p + "h." + std::to_string(i) + ".";
    t[h + "ln_1.weight"] = {e};
    t[h + "ln_1.bias"] = {e};
    t[h + "attn.c_attn.weight"] = {e, 3 * e};
    t[h + "attn.c_attn.bias"] = {3 * e};
    t[h + "attn.c_proj.weight"] = {e, e};
    t[h + "attn.c_proj.bias"] = {e};
    t[h + "ln_2.weight"] = {e};
    t[h + "ln_2.bias"] = {e};
    t[h + "mlp.c_fc.weight"] = {e, inner};
    t[h + "mlp.c_fc.bias"] = {inner};
    t[h + "mlp.c_proj.weight"] = {inner, e};
    t[h + "mlp.c_proj.bias"] = {e};
  }
  t[p + "ln_f.weight"] = {e};
  t[p + "ln_f.bias"] = {e};
  return t;
}

/// The tensors a Llama checkpoint of configuration `c` holds, name -> shape (nn.Linear weights are
/// [out, in]). `lm_head.weight` is listed unless `c.tie_word_embeddings`.
[[nodiscard]] inline tensor_shapes expected_tensors(const llama_config& c) {
  const auto d = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  const auto ff = c.intermediate_size;
  tensor_shapes t;
  t["model.embed_tokens.weight"] = {c.vocab_size, d};
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    t[l + "self_attn.q_proj.weight"] = {q, d};
    t[l + "self_attn.k_proj.weight"] = {kv, d};
    t[l + "self_attn.v_proj.weight"] = {kv, d};
    t[l + "self_attn.o_proj.weight"] = {d, q};
    t[l + "mlp.gate_proj.weight"] = {ff, d};
    t[l + "mlp.up_proj.weight"] = {ff, d};
    t[l + "mlp.down_proj.weight"] = {d, ff};
    t[l + "input_layernorm.weight"] = {d};
    t[l + "post_attention_layernorm.weight"] = {d};
  }
  t["model.norm.weight"] = {d};
  if (!c.tie_word_embeddings) t["lm_head.weight"] = {c.vocab_size, d};
  return t;
}

/// The tensors of either family (GPT-2 without prefix).
[[nodiscard]] inline tensor_shapes expected_tensors(const hf_config& c) {
  return std::visit([](const auto& x) { return expected_tensors(x); }, c);
}

/// What is wrong with one tensor of a checkpoint.
struct tensor_problem {
  enum class kind : std::uint8_t { missing, unexpected, wrong_shape };
  kind what;
  std::string name;
  std::vector<std::int64_t> expected;  ///< empty for `unexpected`
  std::vector<std::int64_t> actual;    ///< empty for `missing`

  /// "missing tensor 'x' (expected shape [4])", and so on.
  [[nodiscard]] std::string message() const {
    switch (what) {
      case kind::missing:
        return "missing tensor '" + name + "' (expected shape " + shape_to_string(expected) + ")";
      case kind::unexpected:
        return "unexpected tensor '" + name + "' (shape " + shape_to_string(actual) + "), which the config does not call for";
      case kind::wrong_shape:
        return "tensor '" + name + "' has shape " + shape_to_string(actual) + " but the config implies " +
               shape_to_string(expected);
    }
    return {};
  }
};

namespace detail {
/// Whether `name` is "<prefix><digits><suffix>".
inline bool matches_layer_pattern(std::string_view name, std::string_view prefix, std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix)) return false;
  const auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  for (char ch : digits)
    if (ch < '0' || ch > '9') return false;
  return true;
}
}  // namespace detail

/// Compares a checkpoint's tensors (`actual`: name -> shape) with what configuration `c` calls for.
/// Accepted besides the expected tensors: for GPT-2, the `transformer.` prefix (when the checkpoint
/// uses it), an `lm_head.weight` of shape [vocab_size, n_embd] (tied to wte), and the causal-mask
/// buffers `h.N.attn.bias` / `h.N.attn.masked_bias`, which transformers ignores; for Llama, an
/// `lm_head.weight` of the right shape even when tied, and `model.layers.N.self_attn.rotary_emb.inv_freq`.
/// @returns the problems, missing tensors first, in name order; empty when the checkpoint matches.
[[nodiscard]] inline std::vector<tensor_problem> find_tensor_problems(const hf_config& c, const tensor_shapes& actual) {
  tensor_shapes expected;
  tensor_shapes optional;
  std::vector<std::pair<std::string, std::string>> ignored;  // (prefix, suffix) around a layer number
  if (const auto* g = std::get_if<gpt2_config>(&c)) {
    bool prefixed = false;
    for (const auto& [name, shape] : actual)
      if (name.starts_with("transformer.")) prefixed = true;
    const std::string p = prefixed ? "transformer." : "";
    expected = expected_tensors(*g, p);
    optional["lm_head.weight"] = {g->vocab_size, g->n_embd};
    ignored = {{p + "h.", ".attn.bias"}, {p + "h.", ".attn.masked_bias"}};
  } else {
    const auto& l = std::get<llama_config>(c);
    expected = expected_tensors(l);
    if (l.tie_word_embeddings) optional["lm_head.weight"] = {l.vocab_size, l.hidden_size};
    ignored = {{"model.layers.", ".self_attn.rotary_emb.inv_freq"}};
  }

  std::vector<tensor_problem> missing, others;
  for (const auto& [name, shape] : expected) {
    auto it = actual.find(name);
    if (it == actual.end())
      missing.push_back({tensor_problem::kind::missing, name, shape, {}});
    else if (it->second != shape)
      others.push_back({tensor_problem::kind::wrong_shape, name, shape, it->second});
  }
  for (const auto& [name, shape] : actual) {
    if (expected.contains(name)) continue;
    if (auto it = optional.find(name); it != optional.end()) {
      if (it->second != shape) others.push_back({tensor_problem::kind::wrong_shape, name, it->second, shape});
      continue;
    }
    bool skip = false;
    for (const auto& [pre, suf] : ignored) skip = skip || detail::matches_layer_pattern(name, pre, suf);
    if (!skip) others.push_back({tensor_problem::kind::unexpected, name, {}, shape});
  }
  missing.insert(missing.end(), others.begin(), others.end());
  return missing;
}

/// Throws when `find_tensor_problems` finds any problem.
/// @param source the checkpoint's name for the message (a file or directory).
/// @throws validation_error that names `source`, counts the problems and lists the first ten by tensor name.
inline void check_tensors(const hf_config& c, const tensor_shapes& actual, const std::string& source) {
  const auto problems = find_tensor_problems(c, actual);
  if (problems.empty()) return;
  std::string m = source + ": the checkpoint does not match its " + std::string(to_string(family_of(c))) +
                  " config (" + std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") + "): ";
  for (std::size_t i = 0; i < problems.size() && i < 10; ++i) m += (i == 0 ? "" : "; ") + problems[i].message();
  if (problems.size() > 10) m += "; and " + std::to_string(problems.size() - 10) + " more";
  throw validation_error(m);
}

}  // namespace cai
