// Tests of cai/model/transformer.hpp. The cases that hold on every backend (parameter tables, gradients
// against finite differences in double, KV-cached decoding against the full forward, learning with AdamW,
// bit-for-bit determinism) are in transformer_cases.hpp, a test list over backends: here it runs on the
// CPU, and tests/cuda/test_cuda_model_cases.cu runs the same list on cai::cuda. What is CPU-only stays here.
#include <catch2/catch_test_macros.hpp>

#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/train/sgd.hpp"

#define CAI_MODEL_BACKENDS cai::cpu_t
#include "model/transformer_cases.hpp"

// sgd keeps its state in std::vector, so it trains CPU models only (train/backend_ops.hpp)
TEST_CASE("a tiny model learns a repeating sequence with sgd", "[model][transformer][training]") {
  for (const auto& config : {model_cases::tiny_gpt2(), model_cases::tiny_llama()}) {
    INFO("family " << cai::to_string(config.family));
    model_cases::check_learns_sequence<cai::cpu_t>(config, cai::sgd{.learning_rate = 0.1f, .momentum = 0.9f});
  }
}

// 8-bit decoding weights (transformer::quantize_for_decoding, backend/cpu_q8.hpp) are a CPU feature
TEST_CASE("decode steps with 8-bit weights stay close to the float ones and leave the rest untouched",
          "[model][transformer][cache][q8]") {
  for (const auto& config : {cai::transformer_config::gpt2(50, 24, 64, 2, 2),
                             cai::transformer_config::llama(50, 24, 64, 2, 4, 2, 96)}) {
    INFO("family " << cai::to_string(config.family));
    cai::transformer<cai::cpu_t, float> model(config);
    model.init_random(5);
    const std::vector<std::int32_t> prompt{3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2, 38, 4, 6, 26, 43};
    const std::size_t V = config.vocab_size;
    auto decode = [&](bool q8) {
      if (q8)
        model.quantize_for_decoding();
      else
        model.drop_decoding_weights();
      cai::kv_cache<cai::cpu_t, float> cache(config, 2, 24);
      // a prefill of 18 rows (above q8_0_max_rows: float), then steps of 2 rows (8-bit)
      const std::vector<cai::cache_segment> first{{0, std::span(prompt).subspan(0, 9)},
                                                  {1, std::span(prompt).subspan(9, 9)}};
      const auto pre = model.forward_cached(cache, first);
      std::vector<float> out(pre.begin(), pre.end());
      for (std::int32_t t = 0; t < 4; ++t) {
        const std::vector<std::int32_t> a{t + 1}, b{t + 20};
        const std::vector<cai::cache_segment> step{{0, a}, {1, b}};
        const auto logits = model.forward_cached(cache, step);
        out.insert(out.end(), logits.begin(), logits.end());
      }
      return out;
    };
    const auto exact = decode(false);
    const auto q8 = decode(true);
    REQUIRE(model.has_decoding_weights());
    REQUIRE(exact.size() == q8.size());
    const std::size_t prefill = 18 * V;
    // the prefill is untouched: the same bits
    CHECK(std::memcmp(exact.data(), q8.data(), sizeof(float) * prefill) == 0);
    // the decode steps differ by the roundings only
    double scale = 0.0, worst = 0.0;
    for (std::size_t i = prefill; i < exact.size(); ++i) {
      scale = std::max(scale, std::abs(static_cast<double>(exact[i])));
      worst = std::max(worst, std::abs(static_cast<double>(exact[i]) - q8[i]));
    }
    INFO("largest difference " << worst << " against logits up to " << scale);
    CHECK(worst > 0.0);
    CHECK(worst <= 0.02 * scale);
    // training's forward ignores the decoding weights
    const std::vector<std::int32_t> ids(prompt.begin(), prompt.begin() + 12);
    const auto with_q8 = model.forward(ids, 2, 6);
    const std::vector<float> a(with_q8.begin(), with_q8.end());
    model.drop_decoding_weights();
    CHECK_FALSE(model.has_decoding_weights());
    const auto without = model.forward(ids, 2, 6);
    CHECK(std::memcmp(a.data(), without.data(), sizeof(float) * a.size()) == 0);
  }
  // a model without a matrix 32 columns wide has nothing to quantise
  cai::transformer<cai::cpu_t, float> narrow(model_cases::tiny_llama());
  narrow.quantize_for_decoding();
  CHECK_FALSE(narrow.has_decoding_weights());
}
