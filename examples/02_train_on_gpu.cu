// The same training program on the CPU and on the GPU: the backend is one type, `Backend` below. Change
// `cai::cuda_t` to `cai::cpu_t` and nothing else, and the program trains the same model on the CPU (it
// still needs nvcc then, being a .cu file; as a .cpp without the CUDA headers it needs no GPU at all).
//
// A small GPT-2 learns a repeating token pattern with AdamW: the loss falls from about log(V) towards 0.
// Without a GPU the program says so and exits with 77 (CTest: skipped).
#include <cstdint>
#include <cstdio>
#include <type_traits>
#include <vector>

#include "cai/backend/cuda.cuh"
#include "cai/backend/cuda_train.cuh"
#include "cai/model/transformer.hpp"
#include "cai/train/adamw.hpp"

using Backend = cai::cuda_t;  // the only line that names the backend

int main() {
  if (std::is_same_v<Backend, cai::cuda_t> && cai::cuda_device_count() == 0) {
    std::printf("skipped: no GPU answers\n");
    return 77;
  }
  try {
    // 1. A small GPT-2 (vocabulary 64, context 32, d_model 64, 2 layers, 4 heads), random weights.
    const auto config = cai::transformer_config::gpt2(64, 32, 64, 2, 4);
    cai::transformer<Backend, float> model(config);
    model.init_random(1);

    // 2. The data: 4 sequences of 32 tokens following a fixed cycle; the target is the next token.
    const std::size_t B = 4, T = 32;
    std::vector<std::int32_t> ids(B * T), targets(B * T);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t) {
        ids[b * T + t] = static_cast<std::int32_t>((b * 5 + t * 3) % 64);
        targets[b * T + t] = static_cast<std::int32_t>((b * 5 + (t + 1) * 3) % 64);
      }

    // 3. AdamW over the flat parameter buffer; the state type follows the backend.
    cai::adamw opt;
    opt.learning_rate = 3e-3f;
    cai::adamw_state_for<Backend, float> state(opt, model.parameter_storage());

    // 4. Train: forward and loss, backward, one step.
    float first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
      model.zero_grad();
      last = model.forward_loss(ids, targets, B, T);
      if (step == 0) first = last;
      model.backward_loss();
      state.update(model.parameter_storage(), model.gradient_storage());
      if (step % 20 == 0) std::printf("step %2d  loss %.4f\n", step, last);
    }
    std::printf("backend %s: loss %.4f -> %.4f\n", Backend::name.data(), first, last);
    return last < first ? 0 : 1;
  } catch (const cai::error& e) {
    std::fprintf(stderr, "02_train_on_gpu: %s\n", e.what());
    return 1;
  }
}
