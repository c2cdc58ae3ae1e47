// Tests of cai/model/load.hpp: save_model then load_model gives the same model and the same logits for
// both families; the packaged SmolLM2 GGUF loads into a working Llama model when it is present.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "cai/model/model_cache.hpp"
#include "cai/model/load.hpp"

namespace {
std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-load" / name;
  std::filesystem::remove_all(dir);
  return dir;
}
std::filesystem::path smollm2_path() { return cai::smollm2_gguf_path(); }
}  // namespace

TEST_CASE("save_model then load_model round-trips both families exactly", "[model][load]") {
  for (const auto& config : {cai::transformer_config::gpt2(13, 8, 8, 2, 2),
                             cai::transformer_config::llama(13, 8, 8, 2, 4, 2, 12, 5000.0, false),
                             cai::transformer_config::llama(13, 8, 8, 1, 2, 1, 12, 10000.0, true)}) {
    INFO(cai::to_string(config.family) << " tied " << config.tied_embeddings);
    cai::transformer<cai::cpu_t, float> model(config);
    model.init_random(5);
    const auto dir = temp_dir(std::string(cai::to_string(config.family)) + (config.tied_embeddings ? "-tied" : ""));
    cai::save_model(model, dir);
    REQUIRE(std::filesystem::exists(dir / "config.json"));
    REQUIRE(std::filesystem::exists(dir / "model.safetensors"));
    auto loaded = cai::load_model(dir);
    CHECK(loaded.config() == model.config());
    REQUIRE(loaded.num_parameters() == model.num_parameters());
    for (std::size_t i = 0; i < model.num_parameters(); ++i) REQUIRE(loaded.data()[i] == model.data()[i]);
    const std::vector<std::int32_t> ids{1, 5, 7, 2};
    const auto a = model.forward(ids, 1, 4);
    const std::vector<float> expected(a.begin(), a.end());
    const auto b = loaded.forward(ids, 1, 4);
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(b[i] == expected[i]);
  }
}

TEST_CASE("GPT-2 checkpoints keep the Conv1D layout on disk", "[model][load]") {
  cai::transformer<cai::cpu_t, float> model(cai::transformer_config::gpt2(13, 8, 8, 1, 2));
  model.init_random(9);
  const auto dir = temp_dir("conv1d");
  cai::save_model(model, dir);
  const auto file = cai::safetensors_file::open(dir / "model.safetensors");
  CHECK(file.info("h.0.attn.c_attn.weight").shape == std::vector<std::int64_t>{8, 24});
  CHECK(file.info("h.0.mlp.c_proj.weight").shape == std::vector<std::int64_t>{32, 8});
  // element (out = 3, in = 5) of the model is element (in = 5, out = 3) on disk
  const auto stored = file.read_f32("h.0.attn.c_attn.weight");
  const auto& p = model.parameter("h.0.attn.c_attn.weight");
  CHECK(stored[5 * 24 + 3] == model.data()[p.offset + 3 * 8 + 5]);
}

TEST_CASE("load_model refuses what is not a model with a message naming the path", "[model][load]") {
  const auto dir = temp_dir("not-a-model");
  std::filesystem::create_directories(dir);
  const auto file = dir / "notes.txt";
  std::ofstream(file) << "hello";
  CHECK_THROWS_WITH(cai::load_model(file), Catch::Matchers::ContainsSubstring("notes.txt: not a model"));
  CHECK_THROWS_AS(cai::load_model(dir / "missing.gguf"), cai::io_error);
  CHECK_THROWS_AS(cai::load_model(dir), cai::error);  // a directory without config.json
}

TEST_CASE("the packaged SmolLM2 GGUF loads into a Llama transformer that predicts sensibly", "[model][load][smollm2]") {
  const auto path = smollm2_path();
  if (!std::filesystem::exists(path)) SKIP("SmolLM2 GGUF not found at " << path.string() << " (scripts/fetch-smollm2)");
  auto model = cai::load_model(path);
  const auto& c = model.config();
  CHECK(c.family == cai::model_family::llama);
  CHECK(c.n_layers == 30);
  CHECK(c.d_model == 576);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.tied_embeddings);
  // "The capital of France is" in SmolLM2's vocabulary (ids from its tokenizer): the next token is " Paris".
  const std::vector<std::int32_t> ids{504, 3575, 282, 4649, 314};
  const auto logits = model.forward(ids, 1, ids.size());
  const float* last = logits.data() + (ids.size() - 1) * c.vocab_size;
  const auto best = std::max_element(last, last + c.vocab_size) - last;
  CHECK(best == 7042);
}
