// Tests of cai/model/hf_directory.hpp: a single-file GPT-2 directory and a sharded Llama directory,
// built in a temporary folder with save_safetensors, tensor lookup across shards, tokenizer files, and
// the errors for a missing shard, an inconsistent index and a checkpoint that does not match its config.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/model/hf_directory.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {
std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-hf-directory" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

/// Deterministic values for tensor number `k`: element i is k + i / 1024 (exact in float).
std::map<std::string, std::vector<float>> make_values(const cai::tensor_shapes& shapes) {
  std::map<std::string, std::vector<float>> values;
  int k = 0;
  for (const auto& [name, shape] : shapes) {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    auto& v = values[name];
    for (std::size_t i = 0; i < n; ++i) v.push_back(static_cast<float>(k) + static_cast<float>(i) / 1024.0f);
    ++k;
  }
  return values;
}

/// Saves the tensors of `values` whose names satisfy `keep` into `path`.
template <class Keep>
void save_subset(const std::filesystem::path& path, const cai::tensor_shapes& shapes,
                 const std::map<std::string, std::vector<float>>& values, Keep keep) {
  std::vector<cai::named_tensor> tensors;
  for (const auto& [name, shape] : shapes)
    if (keep(name)) tensors.push_back({name, shape, values.at(name)});
  cai::save_safetensors(path, tensors, {{"format", "pt"}});
}

const nlohmann::json tiny_gpt2 = {{"model_type", "gpt2"}, {"n_embd", 4},  {"n_layer", 2},
                                  {"n_head", 2},          {"n_positions", 8}, {"vocab_size", 11}};
const nlohmann::json tiny_llama = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                                   {"hidden_size", 4}, {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                                   {"num_key_value_heads", 1}, {"intermediate_size", 6}, {"vocab_size", 9},
                                   {"tie_word_embeddings", false}};

/// A Llama directory split into two shards: layer 1 and lm_head in the second, the rest in the first.
struct sharded_llama {
  std::filesystem::path dir;
  cai::tensor_shapes shapes;
  std::map<std::string, std::vector<float>> values;
  nlohmann::json index;

  explicit sharded_llama(const std::string& name) : dir(fresh_dir(name)) {
    write_text(dir / "config.json", tiny_llama.dump(2));
    shapes = cai::expected_tensors(cai::parse_llama_config(tiny_llama, "config.json"));
    values = make_values(shapes);
    const auto in_second = [](const std::string& n) {
      return n.starts_with("model.layers.1.") || n == "lm_head.weight";
    };
    save_subset(dir / "model-00001-of-00002.safetensors", shapes, values, [&](const std::string& n) { return !in_second(n); });
    save_subset(dir / "model-00002-of-00002.safetensors", shapes, values, in_second);
    index = {{"metadata", {{"total_size", 1234}}}, {"weight_map", nlohmann::json::object()}};
    for (const auto& [n, s] : shapes)
      index["weight_map"][n] = in_second(n) ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    write_index();
  }
  void write_index() const { write_text(dir / "model.safetensors.index.json", index.dump(2)); }
};

template <class E>
std::string open_error(const std::filesystem::path& dir, cai::hf_open_options options = {}) {
  try {
    (void)cai::hf_directory::open(dir, options);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: " << e.what());
  }
  FAIL("no error for " << dir);
  return {};
}
}  // namespace

TEST_CASE("a single-file GPT-2 directory opens with its config tensors and tokenizer files", "[model_io][hf_directory]") {
  const auto dir = fresh_dir("gpt2");
  write_text(dir / "config.json", tiny_gpt2.dump(2));
  write_text(dir / "vocab.json", "{}");
  write_text(dir / "merges.txt", "#version: 0.2\n");
  // GPT2LMHeadModel's spelling: the transformer. prefix, plus the causal-mask buffer transformers ignores.
  auto shapes = cai::expected_tensors(cai::parse_gpt2_config(tiny_gpt2, "config.json"), "transformer.");
  shapes["transformer.h.0.attn.bias"] = {1, 1, 8, 8};
  const auto values = make_values(shapes);
  save_subset(dir / "model.safetensors", shapes, values, [](const std::string&) { return true; });

  const auto d = cai::hf_directory::open(dir);
  CHECK(d.family() == cai::model_family::gpt2);
  CHECK(std::get<cai::gpt2_config>(d.config()).vocab_size == 11);
  CHECK(d.shards().size() == 1);
  CHECK(d.names().size() == shapes.size());
  CHECK(d.shapes() == shapes);
  CHECK(d.info("transformer.wte.weight").shape == std::vector<std::int64_t>{11, 4});
  CHECK(d.read_f32("transformer.h.1.mlp.c_fc.weight") == values.at("transformer.h.1.mlp.c_fc.weight"));
  CHECK(d.raw("transformer.ln_f.bias").size() == 4 * sizeof(float));
  CHECK(d.index_metadata().empty());
  const auto& tok = d.tokenizer_files();
  CHECK(tok.any());
  CHECK(tok.vocab_json == dir / "vocab.json");
  CHECK(tok.merges_txt == dir / "merges.txt");
  CHECK_FALSE(tok.tokenizer_json.has_value());
  CHECK_THROWS_WITH(d.read_f32("wte.weight"), ContainsSubstring("no tensor named 'wte.weight'"));
}

TEST_CASE("a sharded Llama directory finds each tensor in the shard the index names", "[model_io][hf_directory]") {
  const sharded_llama m("llama");
  write_text(m.dir / "tokenizer.json", "{}");
  const auto d = cai::hf_directory::open(m.dir);
  CHECK(d.family() == cai::model_family::llama);
  CHECK(d.transformer().n_kv_heads == 1);
  REQUIRE(d.shards().size() == 2);
  CHECK(d.shards()[0].path().filename() == "model-00001-of-00002.safetensors");
  CHECK(d.shard_of("model.layers.1.mlp.down_proj.weight").path().filename() == "model-00002-of-00002.safetensors");
  CHECK(d.shard_of("model.layers.0.mlp.down_proj.weight").path().filename() == "model-00001-of-00002.safetensors");
  CHECK(d.names().size() == m.shapes.size());
  for (const auto& [name, v] : m.values) CHECK(d.read_f32(name) == v);
  std::vector<float> out(4 * 6);
  d.read_f32("model.layers.1.mlp.gate_proj.weight", out);
  CHECK(out == m.values.at("model.layers.1.mlp.gate_proj.weight"));
  CHECK(d.index_metadata().at("total_size") == 1234);
  CHECK(d.tokenizer_files().tokenizer_json == m.dir / "tokenizer.json");
  CHECK_FALSE(d.tokenizer_files().vocab_json.has_value());
}

TEST_CASE("a shard file named in the index that is missing is reported by name", "[model_io][hf_directory]") {
  const sharded_llama m("missing-shard");
  std::filesystem::remove(m.dir / "model-00002-of-00002.safetensors");
  CHECK_THAT(open_error<cai::io_error>(m.dir),
             ContainsSubstring("model-00002-of-00002.safetensors") && ContainsSubstring("missing") &&
                 ContainsSubstring("model.safetensors.index.json"));
}

TEST_CASE("an index that disagrees with its shards is refused", "[model_io][hf_directory]") {
  sharded_llama m("bad-index");
  // A tensor placed in a shard that lacks it.
  m.index["weight_map"]["model.norm.weight"] = "model-00002-of-00002.safetensors";
  m.write_index();
  CHECK_THAT(open_error<cai::validation_error>(m.dir),
             ContainsSubstring("'model.norm.weight'") && ContainsSubstring("does not hold it"));
  // A tensor that a shard holds but the index does not list.
  m.index["weight_map"].erase("model.norm.weight");
  m.write_index();
  CHECK_THAT(open_error<cai::validation_error>(m.dir),
             ContainsSubstring("model-00001-of-00002.safetensors") && ContainsSubstring("'model.norm.weight'") &&
                 ContainsSubstring("does not list"));
  // A shard name that leaves the directory, and no weight_map at all.
  m.index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  m.write_index();
  CHECK_THAT(open_error<cai::validation_error>(m.dir), ContainsSubstring("not a file name inside the model directory"));
  write_text(m.dir / "model.safetensors.index.json", R"({"metadata": {}})");
  CHECK_THAT(open_error<cai::validation_error>(m.dir), ContainsSubstring("missing field 'weight_map'"));
}

TEST_CASE("a checkpoint whose tensors do not match its config is refused when opened", "[model_io][hf_directory]") {
  const auto dir = fresh_dir("mismatch");
  write_text(dir / "config.json", tiny_gpt2.dump(2));
  auto shapes = cai::expected_tensors(cai::parse_gpt2_config(tiny_gpt2, "config.json"));
  shapes.erase("h.1.ln_2.bias");
  shapes["wpe.weight"] = {16, 4};
  save_subset(dir / "model.safetensors", shapes, make_values(shapes), [](const std::string&) { return true; });
  CHECK_THAT(open_error<cai::validation_error>(dir),
             ContainsSubstring("mismatch") && ContainsSubstring("missing tensor 'h.1.ln_2.bias'") &&
                 ContainsSubstring("tensor 'wpe.weight' has shape [16, 4] but the config implies [8, 4]"));
  // The check can be turned off, e.g. to inspect a damaged checkpoint.
  const auto d = cai::hf_directory::open(dir, {.check_tensors = false});
  CHECK(d.info("wpe.weight").shape == std::vector<std::int64_t>{16, 4});
}

TEST_CASE("a directory without config or weights is reported with the missing file", "[model_io][hf_directory]") {
  const auto dir = fresh_dir("empty");
  CHECK_THAT(open_error<cai::io_error>(dir), ContainsSubstring("config.json"));
  write_text(dir / "config.json", tiny_gpt2.dump());
  CHECK_THAT(open_error<cai::io_error>(dir), ContainsSubstring("no model.safetensors"));
  write_text(dir / "config.json", "{\"model_type\": \"gpt2\", \"n_embd\": }");
  CHECK_THAT(open_error<cai::parse_error>(dir), ContainsSubstring("config.json") && ContainsSubstring("invalid JSON"));
  CHECK_THAT(open_error<cai::io_error>(dir / "absent"), ContainsSubstring("not a directory"));
}
