// Tests of cai/model/hf_config.hpp: family detection, the GPT-2 and Llama config fields (on the
// published configs of gpt2 and SmolLM2-135M), the expected tensor names and shapes (checked against
// hand-written lists and the published parameter counts), and the checkpoint checker.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/model/hf_config.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {
// The config.json of the Hugging Face repository "gpt2" (GPT-2 small), task fields left out.
const auto gpt2_small = nlohmann::json::parse(R"({
  "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
  "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
  "n_inner": null, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "vocab_size": 50257})");

// The config.json of "HuggingFaceTB/SmolLM2-135M-Instruct", fields that do not bear on shapes left out.
const auto smollm2 = nlohmann::json::parse(R"({
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 576, "initializer_range": 0.041666666666666664, "intermediate_size": 1536,
  "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9,
  "num_hidden_layers": 30, "num_key_value_heads": 3, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 49152})");

std::int64_t parameter_count(const cai::tensor_shapes& t) {
  std::int64_t n = 0;
  for (const auto& [name, shape] : t) {
    std::int64_t k = 1;
    for (auto d : shape) k *= d;
    n += k;
  }
  return n;
}

std::string error_of(const nlohmann::json& j) {
  try {
    (void)cai::parse_hf_config(j, "config.json");
  } catch (const cai::validation_error& e) {
    return e.what();
  }
  FAIL("no validation_error for " << j.dump());
  return {};
}
}  // namespace

TEST_CASE("the family is detected from model_type or else from architectures", "[model_io][hf_config]") {
  CHECK(cai::detect_family(gpt2_small, "c") == cai::model_family::gpt2);
  CHECK(cai::detect_family(smollm2, "c") == cai::model_family::llama);
  CHECK(cai::detect_family({{"architectures", {"LlamaForCausalLM"}}}, "c") == cai::model_family::llama);
  CHECK(cai::detect_family({{"architectures", {"GPT2Model"}}}, "c") == cai::model_family::gpt2);
  CHECK_THROWS_WITH(cai::detect_family({{"model_type", "bert"}}, "cfg.json"),
                    ContainsSubstring("cfg.json") && ContainsSubstring("unsupported") && ContainsSubstring("bert"));
  CHECK_THROWS_WITH(cai::detect_family({{"model_type", "gpt2"}, {"architectures", {"LlamaForCausalLM"}}}, "cfg.json"),
                    ContainsSubstring("different model families"));
  CHECK_THROWS_WITH(cai::detect_family(nlohmann::json::object(), "cfg.json"), ContainsSubstring("missing field 'model_type'"));
}

TEST_CASE("the gpt2 config reads with its defaults and gives GPT-2 small's 124439808 parameters",
          "[model_io][hf_config]") {
  const auto c = std::get<cai::gpt2_config>(cai::parse_hf_config(gpt2_small, "config.json"));
  CHECK(c.n_embd == 768);
  CHECK(c.n_layer == 12);
  CHECK(c.n_head == 12);
  CHECK(c.n_positions == 1024);
  CHECK(c.vocab_size == 50257);
  CHECK(c.n_inner == 3072);  // null means 4 * n_embd
  CHECK(c.layer_norm_epsilon == 1e-5);
  const auto t = cai::expected_tensors(c);
  CHECK(t.size() == 2 + 12 * 12 + 2);
  CHECK(parameter_count(t) == 124'439'808);
}

TEST_CASE("the expected GPT-2 tensors follow the Conv1D layout with or without the transformer prefix",
          "[model_io][hf_config]") {
  cai::gpt2_config c;
  c.n_embd = 4, c.n_layer = 1, c.n_head = 2, c.n_positions = 6, c.vocab_size = 10, c.n_inner = 16;
  const cai::tensor_shapes written_out = {
      {"wte.weight", {10, 4}},        {"wpe.weight", {6, 4}},
      {"h.0.ln_1.weight", {4}},       {"h.0.ln_1.bias", {4}},
      {"h.0.attn.c_attn.weight", {4, 12}}, {"h.0.attn.c_attn.bias", {12}},
      {"h.0.attn.c_proj.weight", {4, 4}},  {"h.0.attn.c_proj.bias", {4}},
      {"h.0.ln_2.weight", {4}},       {"h.0.ln_2.bias", {4}},
      {"h.0.mlp.c_fc.weight", {4, 16}},    {"h.0.mlp.c_fc.bias", {16}},
      {"h.0.mlp.c_proj.weight", {16, 4}},  {"h.0.mlp.c_proj.bias", {4}},
      {"ln_f.weight", {4}},           {"ln_f.bias", {4}}};
  CHECK(cai::expected_tensors(c) == written_out);
  const auto prefixed = cai::expected_tensors(c, "transformer.");
  CHECK(prefixed.size() == written_out.size());
  CHECK(prefixed.at("transformer.h.0.attn.c_attn.weight") == std::vector<std::int64_t>{4, 12});
  // The checker accepts either spelling, the tied lm_head and the causal-mask buffers.
  auto checkpoint = prefixed;
  checkpoint["lm_head.weight"] = {10, 4};
  checkpoint["transformer.h.0.attn.bias"] = {1, 1, 6, 6};
  checkpoint["transformer.h.0.attn.masked_bias"] = {};
  CHECK(cai::find_tensor_problems(c, written_out).empty());
  CHECK(cai::find_tensor_problems(c, checkpoint).empty());
}

TEST_CASE("the llama config reads grouped-query attention and tied embeddings of SmolLM2-135M",
          "[model_io][hf_config]") {
  const auto c = std::get<cai::llama_config>(cai::parse_hf_config(smollm2, "config.json"));
  CHECK(c.hidden_size == 576);
  CHECK(c.num_hidden_layers == 30);
  CHECK(c.num_attention_heads == 9);
  CHECK(c.num_key_value_heads == 3);
  CHECK(c.head_dim == 64);
  CHECK(c.intermediate_size == 1536);
  CHECK(c.vocab_size == 49152);
  CHECK(c.max_position_embeddings == 8192);
  CHECK(c.rope_theta == 100000.0);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.tie_word_embeddings);
  const auto t = cai::expected_tensors(c);
  CHECK_FALSE(t.contains("lm_head.weight"));
  CHECK(t.at("model.layers.29.self_attn.k_proj.weight") == std::vector<std::int64_t>{192, 576});
  CHECK(t.at("model.layers.0.mlp.down_proj.weight") == std::vector<std::int64_t>{576, 1536});
  CHECK(parameter_count(t) == 134'515'008);

  // Defaults: key/value heads = heads, untied, so lm_head is expected.
  auto j = smollm2;
  j.erase("num_key_value_heads");
  j.erase("tie_word_embeddings");
  j.erase("rope_theta");
  const auto d = std::get<cai::llama_config>(cai::parse_hf_config(j, "config.json"));
  CHECK(d.num_key_value_heads == 9);
  CHECK(d.rope_theta == 10000.0);
  CHECK_FALSE(d.tie_word_embeddings);
  CHECK(cai::expected_tensors(d).at("lm_head.weight") == std::vector<std::int64_t>{49152, 576});
  CHECK(cai::expected_tensors(d).at("model.layers.0.self_attn.v_proj.weight") == std::vector<std::int64_t>{576, 576});
}

TEST_CASE("a config field that is missing or of the wrong type is reported by key", "[model_io][hf_config]") {
  auto j = smollm2;
  j.erase("hidden_size");
  CHECK_THAT(error_of(j), ContainsSubstring("config.json") && ContainsSubstring("missing field 'hidden_size'"));
  j = smollm2;
  j["num_hidden_layers"] = "30";
  CHECK_THAT(error_of(j), ContainsSubstring("field 'num_hidden_layers' must be a positive integer") &&
                              ContainsSubstring("string"));
  j = smollm2;
  j["tie_word_embeddings"] = 1;
  CHECK_THAT(error_of(j), ContainsSubstring("field 'tie_word_embeddings' must be a boolean"));
  j = smollm2;
  j["num_key_value_heads"] = 2;
  CHECK_THAT(error_of(j), ContainsSubstring("'num_key_value_heads' (2)"));
  auto g = gpt2_small;
  g["n_embd"] = 768.5;
  CHECK_THAT(error_of(g), ContainsSubstring("field 'n_embd' must be a positive integer"));
  g = gpt2_small;
  g["n_head"] = -12;
  CHECK_THAT(error_of(g), ContainsSubstring("field 'n_head' must be a positive integer"));
  g = gpt2_small;
  g["layer_norm_epsilon"] = "1e-5";
  CHECK_THAT(error_of(g), ContainsSubstring("field 'layer_norm_epsilon' must be a number"));
}

TEST_CASE("missing and unexpected tensors are each reported by name", "[model_io][hf_config]") {
  const auto c = cai::parse_hf_config(smollm2, "config.json");
  auto t = cai::expected_tensors(c);
  t.erase("model.layers.7.mlp.up_proj.weight");
  t["model.layers.7.mlp.extra.weight"] = {3};
  t["model.layers.7.self_attn.rotary_emb.inv_freq"] = {32};  // a buffer transformers ignores
  const auto problems = cai::find_tensor_problems(c, t);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].what == cai::tensor_problem::kind::missing);
  CHECK(problems[0].name == "model.layers.7.mlp.up_proj.weight");
  CHECK(problems[1].what == cai::tensor_problem::kind::unexpected);
  CHECK(problems[1].name == "model.layers.7.mlp.extra.weight");
  CHECK_THROWS_WITH(cai::check_tensors(c, t, "ckpt"),
                    ContainsSubstring("ckpt") && ContainsSubstring("2 problems") &&
                        ContainsSubstring("missing tensor 'model.layers.7.mlp.up_proj.weight' (expected shape [1536, 576])") &&
                        ContainsSubstring("unexpected tensor 'model.layers.7.mlp.extra.weight'"));
}

TEST_CASE("a tensor shape that disagrees with the config is reported with both shapes", "[model_io][hf_config]") {
  const auto c = cai::parse_hf_config(gpt2_small, "config.json");
  auto t = cai::expected_tensors(c);
  t["h.3.attn.c_attn.weight"] = {2304, 768};  // nn.Linear layout instead of Conv1D
  t["lm_head.weight"] = {50000, 768};
  const auto problems = cai::find_tensor_problems(c, t);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].message() == "tensor 'h.3.attn.c_attn.weight' has shape [2304, 768] but the config implies [768, 2304]");
  CHECK(problems[1].name == "lm_head.weight");
  CHECK_THROWS_AS(cai::check_tensors(c, t, "ckpt"), cai::validation_error);
  CHECK_NOTHROW(cai::check_tensors(c, cai::expected_tensors(c), "ckpt"));
}

TEST_CASE("to_transformer_config carries the shape of both families to the transformer", "[model_io][hf_config]") {
  const auto g = cai::to_transformer_config(cai::parse_hf_config(gpt2_small, "config.json"));
  CHECK(g.family == cai::model_family::gpt2);
  CHECK(g.vocab_size == 50257);
  CHECK(g.context_length == 1024);
  CHECK(g.d_model == 768);
  CHECK(g.n_layers == 12);
  CHECK(g.n_heads == 12);
  CHECK(g.n_kv_heads == 12);
  CHECK(g.d_ff == 3072);
  CHECK(g.tied_embeddings);
  CHECK_NOTHROW(g.validate());

  const auto l = cai::to_transformer_config(cai::parse_hf_config(smollm2, "config.json"));
  CHECK(l.family == cai::model_family::llama);
  CHECK(l.context_length == 8192);
  CHECK(l.d_model == 576);
  CHECK(l.n_heads == 9);
  CHECK(l.n_kv_heads == 3);
  CHECK(l.head_dim() == 64);
  CHECK(l.d_ff == 1536);
  CHECK(l.rope_theta == 100000.0);
  CHECK(l.norm_eps == 1e-5);
  CHECK(l.tied_embeddings);
  CHECK(l.rope == cai::rope_style::half);
  CHECK_NOTHROW(l.validate());

  auto j = smollm2;
  j["head_dim"] = 32;  // 9 heads x 32 != 576: a shape transformer_config cannot express
  const auto odd = cai::parse_hf_config(j, "config.json");
  CHECK(cai::expected_tensors(odd).at("model.layers.0.self_attn.q_proj.weight") == std::vector<std::int64_t>{288, 576});
  CHECK_THROWS_WITH(cai::to_transformer_config(odd), ContainsSubstring("head_dim 32"));
}

TEST_CASE("the rotary base is read from rope_parameters as transformers 5 writes it", "[model_io][hf_config]") {
  const auto j = nlohmann::json::parse(R"({"model_type": "llama", "hidden_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 24, "vocab_size": 64,
    "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}})");
  const auto c = cai::parse_llama_config(j, "config.json");
  CHECK(c.rope_theta == 500000.0);
  auto scaled = j;
  scaled["rope_parameters"]["rope_type"] = "llama3";
  CHECK_THROWS_WITH(cai::parse_llama_config(scaled, "config.json"),
                    Catch::Matchers::ContainsSubstring("rope_type 'llama3' is not supported"));
}
