// transformer<cuda_t> against transformer<cpu_t> (model/transformer.hpp, one template for both backends):
// small random GPT-2 and Llama models with the same weights (the CUDA model loads the CPU model's
// parameters), fixed seeds. Compared: the forward logits and the mean loss, every parameter gradient, the
// parameters after one AdamW step, and KV-cached decoding (prefill then one decode step per sequence).
//
// Tolerances (fp32 math for the products, the default), each relative to the largest magnitude of the CPU
// tensor compared (|gpu - cpu| <= tol * max(floor, max|cpu|)):
//   logits, loss:            1e-4, floor 1 (two layers of fp32 kernels that sum in other orders)
//   each parameter gradient: 1e-3, floor 1e-6 (the gradient flows back through every layer; the tensor's
//                            own scale, so a small gradient tensor is judged on its own size)
//   parameters after AdamW:  1e-6 per unit of max(1, |theta|) plus 1% of the learning rate. The first step
//                            moves an element by lr * g / (|g| + eps) (bias-corrected), whose sensitivity
//                            to an error dg in g is at most lr * dg / eps; the test uses eps = 1e-6 (not
//                            the default 1e-8) so that gradients at the rounding level of their tensor
//                            (dg ~ 1e-9) cannot flip a step: lr * 1e-3 at most.
//   cached-decoding logits:  1e-4, floor 1.
// Without a GPU the program prints why and exits with 77, which CTest reports as skipped.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_main.hpp"
#include "cai/backend/cuda.cuh"
#include "cai/backend/cuda_train.cuh"
#include "cai/model/transformer.hpp"
#include "cai/train/adamw.hpp"

namespace {

using cpu_model = cai::transformer<cai::cpu_t, float>;
using gpu_model = cai::transformer<cai::cuda_t, float>;

cai::transformer_config small_gpt2() { return cai::transformer_config::gpt2(37, 16, 32, 2, 4); }
cai::transformer_config small_llama() {
  auto c = cai::transformer_config::llama(37, 16, 32, 2, 4, 2, 48, 10000.0, false);
  c.norm_eps = 1e-6;
  return c;
}

std::vector<std::int32_t> tokens(std::size_t n, std::int32_t vocab, std::int32_t seed) {
  std::vector<std::int32_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::int32_t>((i * 7 + static_cast<std::size_t>(seed) * 3 + i * i) % static_cast<std::size_t>(vocab));
  return v;
}

std::vector<float> to_host(std::span<const float> device) {
  std::vector<float> host(device.size());
  cai::copy_to_host(cai::cuda, host.data(), device.data(), device.size());
  return host;
}

/// |gpu - cpu| <= tol * max(floor, max|cpu|) over [first, first + n).
void require_close(const std::vector<float>& cpu, const std::vector<float>& gpu, std::size_t first, std::size_t n,
                   double tol, double floor, const std::string& what) {
  INFO(what);
  REQUIRE(cpu.size() == gpu.size());
  double scale = floor;
  for (std::size_t i = first; i < first + n; ++i) scale = std::max(scale, std::abs(static_cast<double>(cpu[i])));
  double worst = 0.0;
  std::size_t at = first;
  for (std::size_t i = first; i < first + n; ++i) {
    const double e = std::abs(static_cast<double>(cpu[i]) - static_cast<double>(gpu[i]));
    if (!(e <= worst)) {  // also catches NaN
      worst = e;
      at = i;
    }
  }
  INFO("largest difference " << worst << " at " << at - first << " (cpu " << cpu[at] << ", gpu " << gpu[at]
                             << "), allowed " << tol * scale);
  CHECK(worst <= tol * scale);
}

/// A CPU model with random weights and a CUDA model holding the same weights.
struct model_pair {
  cpu_model cpu;
  gpu_model gpu;
  explicit model_pair(const cai::transformer_config& config) : cpu(config), gpu(config) {
    cpu.init_random(7);
    gpu.load_parameters(cpu.parameter_storage());
  }
};

void compare_training_step(const cai::transformer_config& config) {
  model_pair m(config);
  REQUIRE(m.gpu.host_parameters() == m.cpu.parameter_storage());
  const std::size_t B = 3, T = 9, V = config.vocab_size;
  const auto ids = tokens(B * T, static_cast<std::int32_t>(V), 1);
  auto targets = tokens(B * T, static_cast<std::int32_t>(V), 2);
  targets[4] = -1;  // a masked position

  // 1. forward: logits
  const auto cpu_logits = m.cpu.forward(ids, B, T);
  const std::vector<float> cpu_l(cpu_logits.begin(), cpu_logits.end());
  const auto gpu_l = to_host(m.gpu.forward(ids, B, T));
  require_close(cpu_l, gpu_l, 0, cpu_l.size(), 1e-4, 1.0, "logits");

  // 2. loss and every parameter gradient
  m.cpu.zero_grad();
  m.gpu.zero_grad();
  const float cpu_loss = m.cpu.forward_loss(ids, targets, B, T);
  const float gpu_loss = m.gpu.forward_loss(ids, targets, B, T);
  CHECK(std::abs(cpu_loss - gpu_loss) <= 1e-4 * std::max(1.0f, std::abs(cpu_loss)));
  m.cpu.backward_loss();
  m.gpu.backward_loss();
  const auto& cpu_g = m.cpu.gradient_storage();
  const auto gpu_g = m.gpu.host_gradients();
  for (const auto& p : m.cpu.parameters())
    require_close(cpu_g, gpu_g, p.offset, p.size, 1e-3, 1e-6, "gradient of " + p.name);

  // 3. one AdamW step on each backend, through the alias that names the state per backend
  cai::adamw opt;
  opt.learning_rate = 1e-3f;
  opt.eps = 1e-6f;  // see the tolerances at the top
  cai::adamw_state_for<cai::cpu_t, float> cpu_state(opt, m.cpu.parameter_storage());
  cai::adamw_state_for<cai::cuda_t, float> gpu_state(opt, m.gpu.parameter_storage());
  cpu_state.update(m.cpu.parameter_storage(), m.cpu.gradient_storage());
  gpu_state.update(m.gpu.parameter_storage(), m.gpu.gradient_storage());
  const auto& cpu_p = m.cpu.parameter_storage();
  const auto gpu_p = m.gpu.host_parameters();
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < cpu_p.size(); ++i) {
    const double allowed = 1e-6 * std::max(1.0, std::abs(static_cast<double>(cpu_p[i]))) + 0.01 * opt.learning_rate;
    const double e = std::abs(static_cast<double>(cpu_p[i]) - static_cast<double>(gpu_p[i])) / allowed;
    if (!(e <= worst)) worst = e, at = i;
  }
  INFO("worst parameter after the step: element " << at << " cpu " << cpu_p[at] << " gpu " << gpu_p[at]);
  CHECK(worst <= 1.0);
}

void compare_cached_decoding(const cai::transformer_config& config) {
  model_pair m(config);
  const std::size_t V = config.vocab_size;
  cai::kv_cache<cai::cpu_t, float> cpu_cache(config, 2, 12);
  cai::kv_cache<cai::cuda_t, float> gpu_cache(config, 2, 12);
  const auto a = tokens(5, static_cast<std::int32_t>(V), 3), b = tokens(3, static_cast<std::int32_t>(V), 4);
  // 1. prefill both sequences in one call
  const std::vector<cai::cache_segment> prefill{{0, a}, {1, b}};
  const auto cpu_prefill = m.cpu.forward_cached(cpu_cache, prefill);
  const std::vector<float> cpu_pre(cpu_prefill.begin(), cpu_prefill.end());
  const auto gpu_pre = to_host(m.gpu.forward_cached(gpu_cache, prefill));
  require_close(cpu_pre, gpu_pre, 0, cpu_pre.size(), 1e-4, 1.0, "prefill logits");
  // 2. fork sequence 0 into slot 1, then one decode step on each slot
  cpu_cache.copy_slot(0, 1);
  gpu_cache.copy_slot(0, 1);
  const std::vector<std::int32_t> next0{1}, next1{2};
  const std::vector<cai::cache_segment> decode{{0, next0}, {1, next1}};
  const auto cpu_decode = m.cpu.forward_cached(cpu_cache, decode);
  const std::vector<float> cpu_dec(cpu_decode.begin(), cpu_decode.end());
  const auto gpu_dec = to_host(m.gpu.forward_cached(gpu_cache, decode));
  require_close(cpu_dec, gpu_dec, 0, cpu_dec.size(), 1e-4, 1.0, "decode logits");
  CHECK(gpu_cache.length(0) == 6);
  CHECK(gpu_cache.length(1) == 6);
}

/// In a tensor-core math mode against the fp32 CPU model: logits and every gradient, each relative to its
/// tensor's largest magnitude. BF16: products with 8-bit significands, and attention in tiles (the head
/// size of 16 and T > 16 are chosen for it); TF32: products with 11-bit significands. The tolerances are
/// about three times the largest differences the CUDA emulator shows, which rounds the products' inputs as
/// the hardware does (BF16: logits 2.0e-3, gradients 6.5e-3 of their tensor's scale; TF32: gradients
/// 5e-4).
void compare_tensor_core_step(const cai::transformer_config& config, cai::cuda_math mode, double logits_tol,
                              double gradient_tol) {
  const cai::scoped_cuda_math math(mode);
  model_pair m(config);
  const std::size_t B = 2, T = 40, V = config.vocab_size;
  REQUIRE(config.head_dim() == 16);
  const auto ids = tokens(B * T, static_cast<std::int32_t>(V), 5);
  const auto targets = tokens(B * T, static_cast<std::int32_t>(V), 6);
  const auto cpu_logits = m.cpu.forward(ids, B, T);
  const std::vector<float> cpu_l(cpu_logits.begin(), cpu_logits.end());
  const auto gpu_l = to_host(m.gpu.forward(ids, B, T));
  require_close(cpu_l, gpu_l, 0, cpu_l.size(), logits_tol, 1.0, "logits");
  m.cpu.zero_grad();
  m.gpu.zero_grad();
  (void)m.cpu.forward_loss(ids, targets, B, T);
  (void)m.gpu.forward_loss(ids, targets, B, T);
  m.cpu.backward_loss();
  m.gpu.backward_loss();
  const auto& cpu_g = m.cpu.gradient_storage();
  const auto gpu_g = m.gpu.host_gradients();
  for (const auto& p : m.cpu.parameters())
    require_close(cpu_g, gpu_g, p.offset, p.size, gradient_tol, 1e-6, "gradient of " + p.name);
}

}  // namespace

TEST_CASE("In BF16 and TF32 math GPT-2 and Llama on cuda agree with the CPU within their tolerances",
          "[cuda][transformer][tensor-cores]") {
  auto llama = cai::transformer_config::llama(37, 48, 64, 2, 4, 2, 96, 10000.0, false);
  llama.norm_eps = 1e-6;
  for (const auto& config : {cai::transformer_config::gpt2(37, 48, 64, 2, 4), llama}) {
    INFO("family " << cai::to_string(config.family));
    {
      INFO("BF16");
      compare_tensor_core_step(config, cai::cuda_math::bf16, 6e-3, 2e-2);
    }
    {
      INFO("TF32");
      compare_tensor_core_step(config, cai::cuda_math::tf32, 1e-3, 3e-3);
    }
  }
}

TEST_CASE("A GPT-2 transformer on cuda agrees with the CPU on logits gradients and an AdamW step",
          "[cuda][transformer]") {
  compare_training_step(small_gpt2());
}

TEST_CASE("A Llama transformer on cuda agrees with the CPU on logits gradients and an AdamW step",
          "[cuda][transformer]") {
  compare_training_step(small_llama());
}

TEST_CASE("KV-cached decoding on cuda agrees with the CPU for both families", "[cuda][transformer][cache]") {
  compare_cached_decoding(small_gpt2());
  compare_cached_decoding(small_llama());
}

int main(int argc, char** argv) { return cai_test::gpu_main(argc, argv); }
