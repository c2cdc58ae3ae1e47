// The training step and KV-cached generation of transformer<cuda_t> on a GPT-2 124M shape (vocabulary
// 50257, context 1024, d_model 768, 12 layers, 12 heads), for scripts/gpu-check. Not a test: it measures.
//
//  1. Training step (zero_grad, forward_loss, backward_loss, one AdamW step over all parameters) on
//     (B, 1024) batches, in each math mode of the matrix products (bf16, tf32, fp32), B the largest batch
//     that fits in that mode (estimated from the free memory, then lowered while an allocation fails; BF16
//     attention runs in tiles and keeps no (T, T) probabilities, so its batch is larger): milliseconds
//     per step, tokens per second and model-FLOPs utilisation. FLOPs per token are llm.c's estimate,
//     6 N + 6 L C T (Kaplan et al. 2020's 6 N for the forward and backward products, plus attention with
//     the causal mask), N counting every parameter; MFU is against the GPU's dense BF16 tensor-core peak
//     (H100 SXM and H200: 989 TFLOP/s; H100 PCIe: 756), the reference llm.c reports against, whatever
//     the mode.
//     In BF16 also the step's parts (forward, backward, AdamW, each synchronised), and attention alone
//     (8 x 1024 tokens, 12 heads of 64) tiled in BF16 against the direct kernels in FP32.
//  2. KV-cached generation: S sequences prefilled with P tokens in one call, then greedy decoding of one
//     token per sequence per call (the logits go to the host for the argmax): tokens per second of each.
//
// Prints a human-readable report, then one line per result, `bench|<what>|<result>|<seconds>|<notes>`, for
// gpu-check's table. Exits 77 without a GPU. `--quick` uses fewer steps (a smoke run).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cai/backend/cuda.cuh"
#include "cai/backend/cuda_train.cuh"
#include "cai/model/transformer.hpp"
#include "cai/train/adamw.hpp"

namespace {

using model_type = cai::transformer<cai::cuda_t, float>;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

bool out_of_memory(const cai::cuda_error& e) {
  return e.code_name() == "cudaErrorMemoryAllocation" || e.code_name() == "CUBLAS_STATUS_ALLOC_FAILED";
}

/// The GPU's dense BF16 peak in TFLOP/s, or 0 when unknown.
double bf16_peak_tflops(const std::string& name) {
  if (name.find("H100") != std::string::npos) return name.find("PCIe") != std::string::npos ? 756.0 : 989.4;
  if (name.find("H200") != std::string::npos) return 989.4;
  if (name.find("A100") != std::string::npos) return 312.0;
  return 0.0;
}

/// Device bytes a (B, T) training step of `config` holds per sequence in the current math mode, by the
/// transformer's buffers (activations kept for the backward pass, the backward buffers, the logits and their
/// gradient, attention's scratch). What attention keeps depends on the mode: the (H, T, T) probabilities,
/// or in BF16 the tiled kernels' H T (D + 1) values (cai::attention_saved_size).
double step_bytes_per_sequence(const cai::transformer_config& c, std::size_t T) {
  const double C = double(c.d_model), H = double(c.n_heads), F = double(c.d_ff), V = double(c.vocab_size);
  const double saved = double(cai::attention_saved_size<float>(cai::cuda, 1, T, c.n_heads, c.head_dim())) / double(T);
  const double scratch = saved < H * double(T) ? H : H * double(T);  // the backward's (B, H, T) or (B, H, T, T)
  const double per_layer = 7 * C + 3 * C + saved + 2 * F + 4;  // per token
  const double per_token = double(c.n_layers) * per_layer + 4 * C + 2 * V + 8 * C + 2 * F + scratch + 8;
  return per_token * double(T) * sizeof(float);
}

std::vector<std::int32_t> batch_tokens(std::size_t n, std::size_t vocab, std::size_t seed) {
  std::vector<std::int32_t> v(n);
  std::uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (auto& t : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    t = static_cast<std::int32_t>(x % vocab);
  }
  return v;
}

struct step_result {
  std::size_t batch = 0;
  double ms = 0, tokens_per_s = 0, mfu = 0;
  float loss = 0;
};

/// Builds the model and finds the largest batch whose step fits, starting from `first`.
std::size_t fit_batch(model_type& model, const cai::transformer_config& config, std::size_t first, std::size_t T) {
  for (std::size_t B = first; B >= 1; B = B > 8 ? B - 4 : B / 2) {
    try {
      const auto ids = batch_tokens(B * T, config.vocab_size, 1), targets = batch_tokens(B * T, config.vocab_size, 2);
      model.zero_grad();
      (void)model.forward_loss(ids, targets, B, T);
      model.backward_loss();
      cai::cuda_synchronize();
      return B;
    } catch (const cai::cuda_error& e) {
      if (!out_of_memory(e)) throw;
      std::printf("  batch %zu does not fit (%s); trying a smaller one\n", B, e.code_name().c_str());
      model = model_type(config);  // frees the activations; weights do not matter for timing
      (void)cudaGetLastError();
    }
    if (B == 1) break;
  }
  return 0;
}

step_result time_steps(model_type& model, const cai::transformer_config& config, std::size_t B, std::size_t T,
                       int steps, double peak) {
  const auto ids = batch_tokens(B * T, config.vocab_size, 3), targets = batch_tokens(B * T, config.vocab_size, 4);
  cai::adamw opt;
  opt.learning_rate = 1e-4f;
  cai::cuda_adamw_state<float> state(opt, model.parameter_storage());
  step_result r;
  r.batch = B;
  auto step = [&] {
    model.zero_grad();
    r.loss = model.forward_loss(ids, targets, B, T);
    model.backward_loss();
    state.update(model.parameter_storage(), model.gradient_storage());
  };
  step();  // warm-up: cuBLAS heuristics, first allocations
  cai::cuda_synchronize();
  const auto t0 = clock_type::now();
  for (int i = 0; i < steps; ++i) step();
  cai::cuda_synchronize();
  const double s = seconds_since(t0) / steps;
  const double N = double(model.num_parameters()), L = double(config.n_layers), C = double(config.d_model);
  const double flops_per_token = 6 * N + 6 * L * C * double(T);
  r.ms = s * 1e3;
  r.tokens_per_s = double(B * T) / s;
  r.mfu = peak > 0 ? flops_per_token * r.tokens_per_s / (peak * 1e12) : 0;
  return r;
}

/// The median of a few timings.
double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Milliseconds of each part of a training step (zero_grad + forward_loss, backward_loss, the AdamW
/// update), each followed by a synchronisation, median of `steps`: where the step's time goes.
struct phase_result {
  double forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
};

phase_result time_phases(model_type& model, const cai::transformer_config& config, std::size_t B, std::size_t T,
                         int steps) {
  const auto ids = batch_tokens(B * T, config.vocab_size, 3), targets = batch_tokens(B * T, config.vocab_size, 4);
  cai::adamw opt;
  opt.learning_rate = 1e-4f;
  cai::cuda_adamw_state<float> state(opt, model.parameter_storage());
  std::vector<double> f, b, o;
  for (int i = 0; i <= steps; ++i) {  // the first is a warm-up
    cai::cuda_synchronize();
    auto t = clock_type::now();
    model.zero_grad();
    (void)model.forward_loss(ids, targets, B, T);
    cai::cuda_synchronize();
    const double tf = seconds_since(t);
    t = clock_type::now();
    model.backward_loss();
    cai::cuda_synchronize();
    const double tb = seconds_since(t);
    t = clock_type::now();
    state.update(model.parameter_storage(), model.gradient_storage());
    cai::cuda_synchronize();
    const double to = seconds_since(t);
    if (i == 0) continue;
    f.push_back(tf * 1e3), b.push_back(tb * 1e3), o.push_back(to * 1e3);
  }
  return {median_of(f), median_of(b), median_of(o)};
}

/// Milliseconds of attention alone, forward and backward, for (B, T, H heads of size D), in the current
/// math mode (BF16: the tiled tensor-core kernels; FP32: the direct ones), median of `reps`.
std::pair<double, double> time_attention(std::size_t B, std::size_t T, std::size_t H, std::size_t D, int reps) {
  const std::size_t n = B * T * H * D;
  cai::device_vector<float> q(n), k(n), v(n), out(n), dout(n), dq(n), dk(n), dv(n);
  cai::device_vector<float> saved(cai::attention_saved_size<float>(cai::cuda, B, T, H, D));
  const auto host = batch_tokens(n, 1000, 9);
  std::vector<float> values(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = float(host[i]) / 1000.0f - 0.5f;
  for (auto* buf : {&q, &k, &v, &dout}) buf->from_host(values);
  std::vector<double> fwd, bwd;
  for (int i = 0; i <= reps; ++i) {
    cai::cuda_synchronize();
    auto t = clock_type::now();
    cai::attention_forward(cai::cuda, out.data(), saved.data(), q.data(), k.data(), v.data(), B, T, H, H, D);
    cai::cuda_synchronize();
    const double tf = seconds_since(t);
    t = clock_type::now();
    cai::attention_backward(cai::cuda, dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(),
                            saved.data(), B, T, H, H, D);
    cai::cuda_synchronize();
    if (i == 0) continue;
    fwd.push_back(tf * 1e3), bwd.push_back(seconds_since(t) * 1e3);
  }
  return {median_of(fwd), median_of(bwd)};
}

struct generation_result {
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0, decode_ms = 0;
};

generation_result time_generation(model_type& model, const cai::transformer_config& config, std::size_t S,
                                  std::size_t P, std::size_t steps) {
  const std::size_t V = config.vocab_size;
  cai::kv_cache<cai::cuda_t, float> cache(config, S, P + steps + 1);
  const auto prompt = batch_tokens(S * P, V, 5);
  std::vector<cai::cache_segment> segments(S);
  for (std::size_t s = 0; s < S; ++s) segments[s] = {s, std::span<const std::int32_t>(prompt).subspan(s * P, P)};
  std::vector<float> logits(S * V);
  std::vector<std::int32_t> next(S);
  auto argmax_rows = [&](std::span<const float> device_logits, std::size_t rows, std::size_t row_stride) {
    cai::copy_to_host(cai::cuda, logits.data(), device_logits.data(), std::min(device_logits.size(), logits.size()));
    for (std::size_t s = 0; s < rows; ++s) {
      const float* row = logits.data() + s * row_stride;
      next[s] = static_cast<std::int32_t>(std::max_element(row, row + V) - row);
    }
  };
  generation_result r;
  cai::cuda_synchronize();
  auto t0 = clock_type::now();
  const auto pre = model.forward_cached(cache, segments);
  cai::cuda_synchronize();
  r.prefill_tokens_per_s = double(S * P) / seconds_since(t0);
  // the last prompt token of each sequence
  for (std::size_t s = 0; s < S; ++s) {
    std::vector<float> row(V);
    cai::copy_to_host(cai::cuda, row.data(), pre.data() + ((s + 1) * P - 1) * V, V);
    next[s] = static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
  }
  std::vector<std::int32_t> tokens(S);
  t0 = clock_type::now();
  for (std::size_t i = 0; i < steps; ++i) {
    tokens = next;
    for (std::size_t s = 0; s < S; ++s) segments[s] = {s, std::span<const std::int32_t>(tokens).subspan(s, 1)};
    argmax_rows(model.forward_cached(cache, segments), S, V);
  }
  const double s = seconds_since(t0);
  r.decode_tokens_per_s = double(S * steps) / s;
  r.decode_ms = s * 1e3 / double(steps);
  return r;
}

const char* mode_name(cai::cuda_math m) {
  return m == cai::cuda_math::bf16 ? "bf16" : m == cai::cuda_math::tf32 ? "tf32" : "fp32";
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (cai::cuda_device_count() == 0) {
    std::printf("skipped: no GPU answers\n");
    return 77;
  }
  try {
    cudaDeviceProp prop{};
    CAI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const std::string gpu = prop.name;
    const double peak = bf16_peak_tflops(gpu);
    const auto config = cai::transformer_config::gpt2(50257, 1024, 768, 12, 12);
    const std::size_t T = 1024;

    // 1. Per math mode, the largest batch whose step fits, then the training step.
    model_type model(config);
    model.init_random(1);
    std::printf("GPU %s; GPT-2 124M shape (%zu parameters)\n", gpu.c_str(), model.num_parameters());
    std::vector<std::string> rows;
    for (auto mode : {cai::cuda_math::bf16, cai::cuda_math::tf32, cai::cuda_math::fp32}) {
      cai::scoped_cuda_math math(mode);
      const auto t_fit = clock_type::now();
      model = model_type(config);  // frees the previous mode's activations
      model.init_random(1);
      std::size_t free_bytes = 0, total_bytes = 0;
      CAI_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      const double per_seq = step_bytes_per_sequence(config, T);
      const std::size_t guess =
          std::max<std::size_t>(1, static_cast<std::size_t>(0.92 * double(free_bytes) / per_seq));
      std::printf("%s: %.1f GiB free, about %.2f GiB per sequence of %zu\n", mode_name(mode),
                  double(free_bytes) / (1 << 30), per_seq / (1 << 30), T);
      std::size_t B = fit_batch(model, config, guess, T);
      if (B == 0) throw cai::config_error("bench: not even one sequence of 1024 tokens fits on this GPU");
      std::printf("batch %zu x %zu tokens fits (found in %.1f s)\n", B, T, seconds_since(t_fit));
      char fit[256];
      std::snprintf(fit, sizeof fit, "bench|largest batch, %s (T = %zu)|%zu|%.1f|estimate %zu from the free memory",
                    mode_name(mode), T, B, seconds_since(t_fit), guess);
      rows.push_back(fit);
      const int steps = quick ? 1 : (mode == cai::cuda_math::bf16 ? 5 : 2);
      const auto t0 = clock_type::now();
      step_result r;
      for (;;) {
        try {
          r = time_steps(model, config, B, T, steps, peak);
          break;
        } catch (const cai::cuda_error& e) {  // the optimizer's moments did not fit beside the batch
          if (!out_of_memory(e) || B == 1) throw;
          B -= std::max<std::size_t>(1, B / 8);
          std::printf("  out of memory with the optimizer state; batch lowered to %zu\n", B);
          model = model_type(config);
          model.init_random(1);
          (void)cudaGetLastError();
        }
      }
      char mfu[32] = "n/a (unknown peak)";
      if (peak > 0) std::snprintf(mfu, sizeof mfu, "%.1f%%", r.mfu * 100);
      char line[512];
      std::snprintf(line, sizeof line, "bench|training step, %s products|%.0f tok/s|%.1f|B=%zu: %.1f ms/step, MFU %s, loss %.3f",
                    mode_name(mode), r.tokens_per_s, seconds_since(t0), B, r.ms, mfu, static_cast<double>(r.loss));
      std::printf("training step, %s products: %.1f ms, %.0f tokens/s, MFU %.1f%%\n", mode_name(mode), r.ms,
                  r.tokens_per_s, r.mfu * 100);
      rows.push_back(line);
      if (mode == cai::cuda_math::bf16) {  // where the BF16 step's time goes
        const auto t1 = clock_type::now();
        const auto ph = time_phases(model, config, B, T, quick ? 1 : 3);
        std::snprintf(line, sizeof line, "bench|step parts, bf16 (ms)|%.1f / %.1f / %.1f|%.1f|forward / backward / AdamW, B=%zu",
                      ph.forward_ms, ph.backward_ms, ph.optimizer_ms, seconds_since(t1), B);
        std::printf("step parts, bf16: forward %.1f ms, backward %.1f ms, AdamW %.1f ms\n", ph.forward_ms,
                    ph.backward_ms, ph.optimizer_ms);
        rows.push_back(line);
      }
    }

    // Attention alone (12 heads of 64, T = 1024, 8 sequences): tiled in BF16 against direct in FP32.
    model = model_type(config);  // frees the training activations
    for (auto mode : {cai::cuda_math::bf16, cai::cuda_math::fp32}) {
      cai::scoped_cuda_math math(mode);
      const auto t0 = clock_type::now();
      const auto [fwd_ms, bwd_ms] = time_attention(8, T, 12, 64, quick ? 1 : 3);
      char line[256];
      std::snprintf(line, sizeof line, "bench|attention alone, %s (ms)|%.2f / %.2f|%.1f|forward / backward, 8 x %zu, 12 heads of 64%s",
                    mode_name(mode), fwd_ms, bwd_ms, seconds_since(t0), T,
                    mode == cai::cuda_math::bf16 ? ", tiled on tensor cores" : ", direct kernels");
      std::printf("attention alone, %s: forward %.2f ms, backward %.2f ms\n", mode_name(mode), fwd_ms, bwd_ms);
      rows.push_back(line);
    }

    // 3. KV-cached generation (after the training buffers are released).
    model = model_type(config);
    model.init_random(1);
    for (auto mode : {cai::cuda_math::bf16, cai::cuda_math::fp32}) {
      cai::scoped_cuda_math math(mode);
      const std::size_t S = 16, P = 128, steps = quick ? 8 : 64;
      const auto t0 = clock_type::now();
      const auto g = time_generation(model, config, S, P, steps);
      char line[512];
      std::snprintf(line, sizeof line,
                    "bench|KV-cached generation, %s|%.0f tok/s|%.1f|%zu sequences: decode %.2f ms/step; prefill %zu x %zu at %.0f tok/s",
                    mode_name(mode), g.decode_tokens_per_s, seconds_since(t0), S, g.decode_ms, S, P,
                    g.prefill_tokens_per_s);
      std::printf("generation, %s: prefill %.0f tokens/s, decode %.0f tokens/s (%.2f ms per step of %zu)\n",
                  mode_name(mode), g.prefill_tokens_per_s, g.decode_tokens_per_s, g.decode_ms, S);
      rows.push_back(line);
    }
    for (const auto& row : rows) std::printf("%s\n", row.c_str());
    return 0;
  } catch (const cai::error& e) {
    std::printf("bench|benchmark|FAIL|-|%s\n", e.what());
    std::fprintf(stderr, "bench_cuda_transformer: %s\n", e.what());
    return 1;
  }
}
