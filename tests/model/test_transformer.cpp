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
    cai::transformer<cai::cpu_t, float> model(config);
    model.init_random(3);
    const std::vector<std::int32_t> seq{1, 2, 3, 4, 1, 2, 3, 4, 1};
    const std::vector<std::int32_t> ids(seq.begin(), seq.end() - 1), targets(seq.begin() + 1, seq.end());
    cai::sgd opt{.learning_rate = 0.1f, .momentum = 0.9f};
    auto& params = model.parameter_storage();
    cai::sgd::state<std::vector<float>> state(opt, params);
    const float first = model.forward_loss(ids, targets, 1, 8);
    float last = first;
    for (int step = 0; step < 100; ++step) {
      model.zero_grad();
      last = model.forward_loss(ids, targets, 1, 8);
      model.backward_loss();
      state.update(params, model.gradient_storage());
    }
    CHECK(first > 2.0f);
    CHECK(last < 0.2f);
  }
}
