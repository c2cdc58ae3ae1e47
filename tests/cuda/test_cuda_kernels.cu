// Every kernel of the CUDA backend against the CPU backend's on the same random inputs (fixed seeds):
// forward outputs, every gradient (accumulated onto non-zero buffers, so `+=` is checked too), the losses
// and AdamW steps. Tolerances, relative to the largest magnitude of the reference (|gpu - cpu| <= tol *
// max(1, max|cpu|)):
//   float, fp32 math: 1e-5 (reductions in another order, device tanh/exp within 2 ulp)
//   double:           1e-12
//   float matrix products in TF32: 5e-3; in BF16: 3e-2 (10- and 7-bit mantissas of the products' inputs;
//   sums stay fp32), checked on K = 64.
// Without a GPU the program prints why and exits with 77, which CTest reports as skipped.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cai/backend/cpu.hpp"
#include "gpu_main.hpp"
#include "cai/backend/cuda.cuh"
#include "cai/backend/cuda_train.cuh"
#include "cai/train/adamw.hpp"
#include "cai/train/losses/dpo.hpp"
#include "cai/train/losses/preference.hpp"
#include "cai/train/losses/token.hpp"

namespace {

template <class T>
constexpr double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;

template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(gen));
  return v;
}

template <class T>
std::vector<T> zeros(std::size_t n) {
  return std::vector<T>(n);
}

std::vector<std::int32_t> random_ints(std::size_t n, unsigned seed, int lo, int hi) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<std::int32_t> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

/// A host buffer and its device copy; `gpu()` copies the device contents back.
template <class T>
struct pair_buffer {
  std::vector<T> host;
  cai::device_vector<T> device;
  explicit pair_buffer(std::vector<T> h) : host(std::move(h)), device(std::span<const T>(host)) {}
  T* h() { return host.data(); }
  T* d() { return device.data(); }
  std::vector<T> gpu() const { return device.to_host(); }
};

template <class T>
void require_close(const std::vector<T>& cpu, const std::vector<T>& gpu, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(cpu.size() == gpu.size());
  double scale = 1.0;
  for (T x : cpu) scale = std::max(scale, std::abs(static_cast<double>(x)));
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double e = std::abs(static_cast<double>(cpu[i]) - static_cast<double>(gpu[i]));
    if (!(e <= worst)) {  // also catches NaN
      worst = e;
      at = i;
    }
  }
  INFO("largest difference " << worst << " at " << at << " (cpu " << static_cast<double>(cpu[at]) << ", gpu "
                             << static_cast<double>(gpu[at]) << "), allowed " << tol * scale);
  CHECK(worst <= tol * scale);
}

template <class T>
void require_close(pair_buffer<T>& b, double tol, const std::string& what) {
  require_close(b.host, b.gpu(), tol, what);
}

}  // namespace

using cai::cpu;
// the tag by another name: `cuda` alone would clash with libcu++'s namespace ::cuda, which Thrust brings
constexpr cai::cuda_t gpu{};

TEMPLATE_TEST_CASE("Element-wise helpers agree on cuda and cpu", "[cuda][elementwise]", float, double) {
  using T = TestType;
  const std::size_t N = 7, qw = 12, kvw = 4, W = qw + 2 * kvw;
  pair_buffer<T> a(random_values<T>(N * W, 1)), b(random_values<T>(N * W, 2)), out(zeros<T>(N * W));
  cai::add_forward(cpu, out.h(), a.h(), b.h(), N * W);
  cai::add_forward(gpu, out.d(), a.d(), b.d(), N * W);
  require_close(out, tolerance<T>, "add_forward");
  cai::accumulate(cpu, out.h(), a.h(), N * W);
  cai::accumulate(gpu, out.d(), a.d(), N * W);
  require_close(out, tolerance<T>, "accumulate");

  pair_buffer<T> q(zeros<T>(N * qw)), k(zeros<T>(N * kvw)), v(zeros<T>(N * kvw));
  cai::split_columns(cpu, q.h(), k.h(), v.h(), a.h(), N, qw, kvw);
  cai::split_columns(gpu, q.d(), k.d(), v.d(), a.d(), N, qw, kvw);
  require_close(q, 0.0, "split_columns q");
  require_close(k, 0.0, "split_columns k");
  require_close(v, 0.0, "split_columns v");
  pair_buffer<T> fused(zeros<T>(N * W));
  cai::merge_columns(cpu, fused.h(), q.h(), k.h(), v.h(), N, qw, kvw);
  cai::merge_columns(gpu, fused.d(), q.d(), k.d(), v.d(), N, qw, kvw);
  require_close(fused, 0.0, "merge_columns");
  require_close(fused.host, a.host, 0.0, "merge inverts split");
}

TEMPLATE_TEST_CASE("Embedding agrees on cuda and cpu with repeated ids summing their gradients in position order", "[cuda][embedding]",
                   float, double) {
  using T = TestType;
  const std::size_t N = 19, C = 24, V = 11;
  pair_buffer<std::int32_t> ids(random_ints(N, 3, 0, static_cast<int>(V) - 1));
  pair_buffer<T> table(random_values<T>(V * C, 4)), out(zeros<T>(N * C));
  cai::embedding_forward(cpu, out.h(), ids.h(), table.h(), N, C, V);
  cai::embedding_forward(gpu, out.d(), ids.d(), table.d(), N, C, V);
  require_close(out, 0.0, "embedding_forward");
  pair_buffer<T> dout(random_values<T>(N * C, 5)), dtable(random_values<T>(V * C, 6));
  cai::embedding_backward(cpu, dtable.h(), dout.h(), ids.h(), N, C);
  cai::embedding_backward(gpu, dtable.d(), dout.d(), ids.d(), N, C);
  // the rows of a repeated id are added in position order on both backends: equal bits
  require_close(dtable, 0.0, "embedding_backward");

  ids.host[3] = static_cast<std::int32_t>(V);
  ids.device.from_host(ids.host);
  CHECK_THROWS_AS(cai::embedding_forward(gpu, out.d(), ids.d(), table.d(), N, C, V), cai::validation_error);
}

TEMPLATE_TEST_CASE("Matrix products agree on cuda and cpu", "[cuda][matmul]", float, double) {
  using T = TestType;
  const std::size_t N = 37, C = 64, OC = 29;
  pair_buffer<T> in(random_values<T>(N * C, 7)), w(random_values<T>(OC * C, 8)), bias(random_values<T>(OC, 9));
  pair_buffer<T> out(zeros<T>(N * OC));
  cai::matmul_forward(cpu, out.h(), in.h(), w.h(), bias.h(), N, C, OC);
  cai::matmul_forward(gpu, out.d(), in.d(), w.d(), bias.d(), N, C, OC);
  require_close(out, tolerance<T>, "matmul_forward with bias");
  cai::matmul_forward(cpu, out.h(), in.h(), w.h(), static_cast<const T*>(nullptr), N, C, OC);
  cai::matmul_forward(gpu, out.d(), in.d(), w.d(), static_cast<const T*>(nullptr), N, C, OC);
  require_close(out, tolerance<T>, "matmul_forward without bias");

  pair_buffer<T> dout(random_values<T>(N * OC, 10)), din(random_values<T>(N * C, 11)),
      dw(random_values<T>(OC * C, 12)), db(random_values<T>(OC, 13));
  cai::matmul_backward(cpu, din.h(), dw.h(), db.h(), dout.h(), in.h(), w.h(), N, C, OC);
  cai::matmul_backward(gpu, din.d(), dw.d(), db.d(), dout.d(), in.d(), w.d(), N, C, OC);
  require_close(din, tolerance<T>, "matmul_backward din");
  require_close(dw, tolerance<T>, "matmul_backward dweight");
  require_close(db, tolerance<T>, "matmul_backward dbias");
  cai::matmul_backward(cpu, din.h(), static_cast<T*>(nullptr), static_cast<T*>(nullptr), dout.h(), in.h(), w.h(), N, C, OC);
  cai::matmul_backward(gpu, din.d(), static_cast<T*>(nullptr), static_cast<T*>(nullptr), dout.d(), in.d(), w.d(), N, C,
                       OC);
  require_close(din, tolerance<T>, "matmul_backward din only");
}

TEST_CASE("TF32 and BF16 matrix products stay within their documented tolerances", "[cuda][matmul][tensor-cores]") {
  const std::size_t N = 64, C = 64, OC = 48;
  pair_buffer<float> in(random_values<float>(N * C, 14)), w(random_values<float>(OC * C, 15)),
      out(zeros<float>(N * OC));
  cai::matmul_forward(cpu, out.h(), in.h(), w.h(), static_cast<const float*>(nullptr), N, C, OC);
  for (auto [mode, tol, name] : {std::tuple{cai::cuda_math::tf32, 5e-3, "tf32"}, std::tuple{cai::cuda_math::bf16, 3e-2, "bf16"}}) {
    cai::scoped_cuda_math scope(mode);
    CHECK(cai::cuda_math_mode() == mode);
    cai::matmul_forward(gpu, out.d(), in.d(), w.d(), static_cast<const float*>(nullptr), N, C, OC);
    require_close(out, tol, std::string("matmul_forward in ") + name);
  }
  CHECK(cai::cuda_math_mode() == cai::cuda_math::fp32);
}

TEMPLATE_TEST_CASE("LayerNorm and RMSNorm agree on cuda and cpu", "[cuda][norm]", float, double) {
  using T = TestType;
  const std::size_t N = 9, C = 300;
  const T eps = T(1e-5);
  pair_buffer<T> in(random_values<T>(N * C, 16, -2, 3)), w(random_values<T>(C, 17)), b(random_values<T>(C, 18));
  pair_buffer<T> out(zeros<T>(N * C)), mean(zeros<T>(N)), rstd(zeros<T>(N));
  cai::layernorm_forward(cpu, out.h(), mean.h(), rstd.h(), in.h(), w.h(), b.h(), N, C, eps);
  cai::layernorm_forward(gpu, out.d(), mean.d(), rstd.d(), in.d(), w.d(), b.d(), N, C, eps);
  require_close(out, tolerance<T>, "layernorm_forward out");
  require_close(mean, tolerance<T>, "layernorm_forward mean");
  require_close(rstd, tolerance<T>, "layernorm_forward rstd");
  pair_buffer<T> dout(random_values<T>(N * C, 19)), din(random_values<T>(N * C, 20)), dw(random_values<T>(C, 21)),
      db(random_values<T>(C, 22));
  cai::layernorm_backward(cpu, din.h(), dw.h(), db.h(), dout.h(), in.h(), w.h(), mean.h(), rstd.h(), N, C);
  cai::layernorm_backward(gpu, din.d(), dw.d(), db.d(), dout.d(), in.d(), w.d(), mean.d(), rstd.d(), N, C);
  require_close(din, tolerance<T>, "layernorm_backward din");
  require_close(dw, tolerance<T>, "layernorm_backward dweight");
  require_close(db, tolerance<T>, "layernorm_backward dbias");

  cai::rmsnorm_forward(cpu, out.h(), rstd.h(), in.h(), w.h(), N, C, eps);
  cai::rmsnorm_forward(gpu, out.d(), rstd.d(), in.d(), w.d(), N, C, eps);
  require_close(out, tolerance<T>, "rmsnorm_forward out");
  require_close(rstd, tolerance<T>, "rmsnorm_forward rstd");
  cai::rmsnorm_backward(cpu, din.h(), dw.h(), dout.h(), in.h(), w.h(), rstd.h(), N, C);
  cai::rmsnorm_backward(gpu, din.d(), dw.d(), dout.d(), in.d(), w.d(), rstd.d(), N, C);
  require_close(din, tolerance<T>, "rmsnorm_backward din");
  require_close(dw, tolerance<T>, "rmsnorm_backward dweight");
}

TEMPLATE_TEST_CASE("GELU and SwiGLU agree on cuda and cpu", "[cuda][activation]", float, double) {
  using T = TestType;
  const std::size_t n = 1000;
  pair_buffer<T> x(random_values<T>(n, 23, -5, 5)), up(random_values<T>(n, 24)), out(zeros<T>(n));
  cai::gelu_forward(cpu, out.h(), x.h(), n);
  cai::gelu_forward(gpu, out.d(), x.d(), n);
  require_close(out, tolerance<T>, "gelu_forward");
  pair_buffer<T> dout(random_values<T>(n, 25)), din(random_values<T>(n, 26)), dup(random_values<T>(n, 27));
  cai::gelu_backward(cpu, din.h(), x.h(), dout.h(), n);
  cai::gelu_backward(gpu, din.d(), x.d(), dout.d(), n);
  require_close(din, tolerance<T>, "gelu_backward");
  cai::swiglu_forward(cpu, out.h(), x.h(), up.h(), n);
  cai::swiglu_forward(gpu, out.d(), x.d(), up.d(), n);
  require_close(out, tolerance<T>, "swiglu_forward");
  cai::swiglu_backward(cpu, din.h(), dup.h(), x.h(), up.h(), dout.h(), n);
  cai::swiglu_backward(gpu, din.d(), dup.d(), x.d(), up.d(), dout.d(), n);
  require_close(din, tolerance<T>, "swiglu_backward dgate");
  require_close(dup, tolerance<T>, "swiglu_backward dup");
}

TEMPLATE_TEST_CASE("RoPE agrees on cuda and cpu in both styles", "[cuda][rope]", float, double) {
  using T = TestType;
  const std::size_t BT = 10, H = 3, D = 16;
  pair_buffer<std::int32_t> pos(random_ints(BT, 28, 0, 4000));
  for (auto style : {cai::rope_style::half, cai::rope_style::interleaved}) {
    pair_buffer<T> x(random_values<T>(BT * H * D, 29));
    cai::rope_forward(cpu, x.h(), pos.h(), BT, H, D, 10000.0, style);
    cai::rope_forward(gpu, x.d(), pos.d(), BT, H, D, 10000.0, style);
    require_close(x, tolerance<T>, "rope_forward");
    cai::rope_backward(cpu, x.h(), pos.h(), BT, H, D, 500000.0, style);
    cai::rope_backward(gpu, x.d(), pos.d(), BT, H, D, 500000.0, style);
    require_close(x, tolerance<T>, "rope_backward");
  }
  pair_buffer<T> odd(zeros<T>(BT * 3));
  CHECK_THROWS_AS(cai::rope_forward(gpu, odd.d(), pos.d(), BT, 1, 3, 10000.0), cai::config_error);
}

TEMPLATE_TEST_CASE("Causal grouped-query attention agrees on cuda and cpu", "[cuda][attention]", float, double) {
  using T = TestType;
  for (auto [B, Tn, H, KVH, D] : {std::tuple<std::size_t, std::size_t, std::size_t, std::size_t, std::size_t>{2, 13, 4, 2, 8},
                                  {1, 40, 3, 3, 16},
                                  {3, 5, 4, 1, 4}}) {
    INFO("B " << B << " T " << Tn << " H " << H << " KVH " << KVH << " D " << D);
    pair_buffer<T> q(random_values<T>(B * Tn * H * D, 30, -2, 2)), k(random_values<T>(B * Tn * KVH * D, 31, -2, 2)),
        v(random_values<T>(B * Tn * KVH * D, 32));
    pair_buffer<T> out(zeros<T>(B * Tn * H * D)), att(random_values<T>(B * H * Tn * Tn, 33));
    cai::attention_forward(cpu, out.h(), att.h(), q.h(), k.h(), v.h(), B, Tn, H, KVH, D);
    cai::attention_forward(gpu, out.d(), att.d(), q.d(), k.d(), v.d(), B, Tn, H, KVH, D);
    require_close(out, tolerance<T>, "attention_forward out");
    require_close(att, tolerance<T>, "attention_forward att");
    pair_buffer<T> dout(random_values<T>(B * Tn * H * D, 34)), dq(random_values<T>(B * Tn * H * D, 35)),
        dk(random_values<T>(B * Tn * KVH * D, 36)), dv(random_values<T>(B * Tn * KVH * D, 37));
    cai::attention_backward(cpu, dq.h(), dk.h(), dv.h(), dout.h(), q.h(), k.h(), v.h(), att.h(), B, Tn, H, KVH, D);
    cai::attention_backward(gpu, dq.d(), dk.d(), dv.d(), dout.d(), q.d(), k.d(), v.d(), att.d(), B, Tn, H, KVH, D);
    require_close(dq, tolerance<T>, "attention_backward dq");
    require_close(dk, tolerance<T>, "attention_backward dk");
    require_close(dv, tolerance<T>, "attention_backward dv");
  }
  pair_buffer<T> x(zeros<T>(64));
  CHECK_THROWS_AS(cai::attention_forward(gpu, x.d(), x.d(), x.d(), x.d(), x.d(), 1, 2, 3, 2, 4), cai::config_error);
}

TEST_CASE("Tiled BF16 attention agrees with the CPU within its tolerance", "[cuda][attention][tensor-cores]") {
  // BF16 math sends float attention with a head size that is a multiple of 16 (and T > D) to the tiled
  // tensor-core kernels (cuda_flash_attention.cuh): q, k, v, dout and the probabilities are rounded to bf16
  // (8 significant bits), the sums are fp32. T = 150 spans three 64-row tiles, the last one partial.
  const cai::scoped_cuda_math bf16(cai::cuda_math::bf16);
  struct shape {
    std::size_t B, Tn, H, KVH, D;
  };
  for (const shape sh : {shape{2, 150, 4, 2, 32}, shape{1, 80, 2, 2, 64}, shape{1, 130, 2, 1, 16}}) {
    const auto [B, Tn, H, KVH, D] = sh;
    INFO("B " << B << " T " << Tn << " H " << H << " KVH " << KVH << " D " << D);
    REQUIRE(cai::attention_saved_size<float>(gpu, B, Tn, H, D) == B * H * Tn * (D + 1));
    REQUIRE(cai::attention_saved_size<float>(cpu, B, Tn, H, D) == B * H * Tn * Tn);
    // q and k scaled up so that the softmax is far from uniform
    pair_buffer<float> q(random_values<float>(B * Tn * H * D, 61, -2.0, 2.0)),
        k(random_values<float>(B * Tn * KVH * D, 62, -2.0, 2.0)), v(random_values<float>(B * Tn * KVH * D, 63));
    pair_buffer<float> out(zeros<float>(B * Tn * H * D));
    std::vector<float> att(B * H * Tn * Tn);
    cai::device_vector<float> saved(cai::attention_saved_size<float>(gpu, B, Tn, H, D));
    cai::attention_forward(cpu, out.h(), att.data(), q.h(), k.h(), v.h(), B, Tn, H, KVH, D);
    cai::attention_forward(gpu, out.d(), saved.data(), q.d(), k.d(), v.d(), B, Tn, H, KVH, D);
    require_close(out, 3e-2, "tiled attention_forward out");
    // gradients accumulate onto what is there
    pair_buffer<float> dout(random_values<float>(B * Tn * H * D, 64)), dq(random_values<float>(B * Tn * H * D, 65)),
        dk(random_values<float>(B * Tn * KVH * D, 66)), dv(random_values<float>(B * Tn * KVH * D, 67));
    cai::attention_backward(cpu, dq.h(), dk.h(), dv.h(), dout.h(), q.h(), k.h(), v.h(), att.data(), B, Tn, H, KVH, D);
    cai::attention_backward(gpu, dq.d(), dk.d(), dv.d(), dout.d(), q.d(), k.d(), v.d(), saved.data(), B, Tn, H, KVH,
                            D);
    require_close(dq, 3e-2, "tiled attention_backward dq");
    require_close(dk, 3e-2, "tiled attention_backward dk");
    require_close(dv, 3e-2, "tiled attention_backward dv");
  }
  // in place inside a fused (B, T, qw + 2 kvw) projection, as GPT-2 calls it
  const std::size_t B = 2, Tn = 70, H = 2, KVH = 2, D = 32, qw = H * D, kvw = KVH * D, W = qw + 2 * kvw;
  const cai::attention_strides strides{qw, W, W, W};
  pair_buffer<float> qkv(random_values<float>(B * Tn * W, 68, -2.0, 2.0)), out(zeros<float>(B * Tn * qw)),
      da(random_values<float>(B * Tn * qw, 69)), dqkv(random_values<float>(B * Tn * W, 70));
  std::vector<float> att(B * H * Tn * Tn);
  cai::device_vector<float> saved(cai::attention_saved_size<float>(gpu, B, Tn, H, D));
  cai::attention_forward(cpu, out.h(), att.data(), qkv.h(), qkv.h() + qw, qkv.h() + qw + kvw, B, Tn, H, KVH, D,
                         strides);
  cai::attention_forward(gpu, out.d(), saved.data(), qkv.d(), qkv.d() + qw, qkv.d() + qw + kvw, B, Tn, H, KVH, D,
                         strides);
  require_close(out, 3e-2, "tiled strided attention_forward out");
  cai::attention_backward(cpu, dqkv.h(), dqkv.h() + qw, dqkv.h() + qw + kvw, da.h(), qkv.h(), qkv.h() + qw,
                          qkv.h() + qw + kvw, att.data(), B, Tn, H, KVH, D, strides);
  cai::attention_backward(gpu, dqkv.d(), dqkv.d() + qw, dqkv.d() + qw + kvw, da.d(), qkv.d(), qkv.d() + qw,
                          qkv.d() + qw + kvw, saved.data(), B, Tn, H, KVH, D, strides);
  require_close(dqkv, 3e-2, "tiled strided attention_backward dqkv");
}

TEMPLATE_TEST_CASE("KV-cached attention agrees on cuda and cpu", "[cuda][attention]", float, double) {
  using T = TestType;
  const std::size_t slots = 3, max_len = 20, H = 4, KVH = 2, D = 8, N = 5;
  pair_buffer<T> kc(random_values<T>(slots * max_len * KVH * D, 38, -2, 2)),
      vc(random_values<T>(slots * max_len * KVH * D, 39)), q(random_values<T>(N * H * D, 40, -2, 2)),
      out(zeros<T>(N * H * D));
  pair_buffer<std::int32_t> slot(std::vector<std::int32_t>{0, 2, 1, 2, 0}), pos(std::vector<std::int32_t>{0, 7, 19, 3, 12});
  cai::attention_cached_forward(cpu, out.h(), q.h(), kc.h(), vc.h(), slot.h(), pos.h(), N, max_len, H, KVH, D);
  cai::attention_cached_forward(gpu, out.d(), q.d(), kc.d(), vc.d(), slot.d(), pos.d(), N, max_len, H, KVH, D);
  require_close(out, tolerance<T>, "attention_cached_forward");
  pos.host[1] = static_cast<std::int32_t>(max_len);
  pos.device.from_host(pos.host);
  CHECK_THROWS_AS(
      cai::attention_cached_forward(gpu, out.d(), q.d(), kc.d(), vc.d(), slot.d(), pos.d(), N, max_len, H, KVH, D),
      cai::config_error);
}

TEMPLATE_TEST_CASE("Softmax, cross-entropy and the token losses agree on cuda and cpu", "[cuda][losses]", float, double) {
  using T = TestType;
  const std::size_t N = 6, V = 1000;
  pair_buffer<T> logits(random_values<T>(N * V, 41, -6, 6)), out(zeros<T>(N * V));
  cai::softmax_forward(cpu, out.h(), logits.h(), N, V);
  cai::softmax_forward(gpu, out.d(), logits.d(), N, V);
  require_close(out, tolerance<T>, "softmax_forward");

  pair_buffer<std::int32_t> targets(std::vector<std::int32_t>{3, -1, 999, 0, 512, 77});
  pair_buffer<T> losses(zeros<T>(N)), lse(zeros<T>(N));
  cai::crossentropy_forward(cpu, losses.h(), lse.h(), logits.h(), targets.h(), N, V);
  cai::crossentropy_forward(gpu, losses.d(), lse.d(), logits.d(), targets.d(), N, V);
  require_close(losses, tolerance<T>, "crossentropy_forward losses");
  require_close(lse, tolerance<T>, "crossentropy_forward lse");
  pair_buffer<T> dl(random_values<T>(N, 42)), dlogits(random_values<T>(N * V, 43));
  cai::crossentropy_backward(cpu, dlogits.h(), dl.h(), logits.h(), lse.h(), targets.h(), N, V);
  cai::crossentropy_backward(gpu, dlogits.d(), dl.d(), logits.d(), lse.d(), targets.d(), N, V);
  require_close(dlogits, tolerance<T>, "crossentropy_backward");

  cai::token_logprob_forward(cpu, losses.h(), lse.h(), logits.h(), targets.h(), N, V);
  cai::token_logprob_forward(gpu, losses.d(), lse.d(), logits.d(), targets.d(), N, V);
  require_close(losses, tolerance<T>, "token_logprob_forward");
  cai::token_logprob_backward(cpu, dlogits.h(), dl.h(), logits.h(), lse.h(), targets.h(), N, V);
  cai::token_logprob_backward(gpu, dlogits.d(), dl.d(), logits.d(), lse.d(), targets.d(), N, V);
  require_close(dlogits, tolerance<T>, "token_logprob_backward");
  cai::token_entropy_forward(cpu, losses.h(), logits.h(), N, V);
  cai::token_entropy_forward(gpu, losses.d(), logits.d(), N, V);
  require_close(losses, tolerance<T>, "token_entropy_forward");
  cai::token_entropy_backward(cpu, dlogits.h(), dl.h(), logits.h(), N, V);
  cai::token_entropy_backward(gpu, dlogits.d(), dl.d(), logits.d(), N, V);
  require_close(dlogits, tolerance<T>, "token_entropy_backward");

  targets.host[2] = static_cast<std::int32_t>(V);
  targets.device.from_host(targets.host);
  CHECK_THROWS_AS(cai::crossentropy_forward(gpu, losses.d(), lse.d(), logits.d(), targets.d(), N, V),
                  cai::validation_error);
  CHECK_THROWS_AS(cai::token_logprob_forward(gpu, losses.d(), lse.d(), logits.d(), targets.d(), N, V),
                  cai::validation_error);
}

TEMPLATE_TEST_CASE("The preference and DPO losses agree on cuda and cpu", "[cuda][losses]", float, double) {
  using T = TestType;
  const std::size_t n = 17;
  pair_buffer<T> a(random_values<T>(n, 44, -3, 3)), b(random_values<T>(n, 45, -3, 3)), p(random_values<T>(n, 46, 0, 1));
  p.host[0] = T(0);
  p.host[1] = T(1);
  p.device.from_host(p.host);
  const T margin = T(0.25);
  const T lc = cai::preference_loss_forward(cpu, a.h(), b.h(), p.h(), n, margin);
  const T lg = cai::preference_loss_forward(gpu, a.d(), b.d(), p.d(), n, margin);
  CHECK(std::abs(static_cast<double>(lc - lg)) <= tolerance<T> * std::max(1.0, std::abs(static_cast<double>(lc))));
  pair_buffer<T> da(random_values<T>(n, 47)), db(random_values<T>(n, 48));
  cai::preference_loss_backward(cpu, da.h(), db.h(), a.h(), b.h(), p.h(), n, margin, T(0.5));
  cai::preference_loss_backward(gpu, da.d(), db.d(), a.d(), b.d(), p.d(), n, margin, T(0.5));
  require_close(da, tolerance<T>, "preference_loss_backward da");
  require_close(db, tolerance<T>, "preference_loss_backward db");

  pair_buffer<T> pc(random_values<T>(n, 49, -40, -5)), pr(random_values<T>(n, 50, -40, -5)),
      rc(random_values<T>(n, 51, -40, -5)), rr(random_values<T>(n, 52, -40, -5));
  for (auto variant : {cai::dpo_variant::sigmoid, cai::dpo_variant::ipo}) {
    const cai::dpo_options opt{.beta = 0.1, .label_smoothing = 0.1, .variant = variant};
    pair_buffer<T> cr(zeros<T>(n)), rj(zeros<T>(n));
    const T dc = cai::dpo_loss_forward(cpu, pc.h(), pr.h(), rc.h(), rr.h(), n, opt, cr.h(), rj.h());
    const T dg = cai::dpo_loss_forward(gpu, pc.d(), pr.d(), rc.d(), rr.d(), n, opt, cr.d(), rj.d());
    CHECK(std::abs(static_cast<double>(dc - dg)) <= tolerance<T> * std::max(1.0, std::abs(static_cast<double>(dc))));
    require_close(cr, tolerance<T>, "dpo chosen rewards");
    require_close(rj, tolerance<T>, "dpo rejected rewards");
    pair_buffer<T> dpc(random_values<T>(n, 53)), dpr(random_values<T>(n, 54));
    cai::dpo_loss_backward(cpu, dpc.h(), dpr.h(), pc.h(), pr.h(), rc.h(), rr.h(), n, opt, T(2));
    cai::dpo_loss_backward(gpu, dpc.d(), dpr.d(), pc.d(), pr.d(), rc.d(), rr.d(), n, opt, T(2));
    require_close(dpc, tolerance<T>, "dpo_loss_backward chosen");
    require_close(dpr, tolerance<T>, "dpo_loss_backward rejected");
  }

  p.host[3] = T(1.5);
  p.device.from_host(p.host);
  CHECK_THROWS_AS((void)cai::preference_loss_forward(gpu, a.d(), b.d(), p.d(), n, margin), cai::validation_error);
  CHECK_THROWS_AS((void)cai::dpo_loss_forward(gpu, pc.d(), pr.d(), rc.d(), rr.d(), n, cai::dpo_options{.beta = -1.0}),
                  cai::config_error);
}

TEMPLATE_TEST_CASE("AdamW steps agree on cuda and cpu", "[cuda][adamw]", float, double) {
  using T = TestType;
  const std::size_t n = 1000;
  for (bool amsgrad : {false, true}) {
    cai::adamw opt{.learning_rate = 1e-2f, .weight_decay = 0.1f, .amsgrad = amsgrad};
    std::vector<T> theta = random_values<T>(n, 55);
    cai::device_vector<T> theta_gpu{std::span<const T>(theta)};
    typename cai::adamw::template state<std::vector<T>> cpu_state(opt, theta);
    cai::cuda_adamw_state<T> gpu_state(opt, n);
    for (unsigned step = 0; step < 3; ++step) {
      const std::vector<T> g = random_values<T>(n, 56 + step);
      cai::device_vector<T> g_gpu{std::span<const T>(g)};
      cpu_state.update(theta, g);
      gpu_state.update(theta_gpu, g_gpu);
      opt.learning_rate *= 0.5f;  // a schedule: both read the optimizer at every step
    }
    CHECK(gpu_state.steps() == 3);
    require_close(theta, theta_gpu.to_host(), tolerance<T>, amsgrad ? "theta (amsgrad)" : "theta");
    const auto m = cpu_state.first_moment(), v = cpu_state.second_moment();
    require_close(std::vector<T>(m.begin(), m.end()), gpu_state.first_moment().to_host(), tolerance<T>, "m");
    require_close(std::vector<T>(v.begin(), v.end()), gpu_state.second_moment().to_host(), tolerance<T>, "v");
  }
}

TEMPLATE_TEST_CASE("Overwriting backward kernels and strided attention agree on cuda and cpu", "[cuda][options]",
                   float, double) {
  using T = TestType;
  constexpr auto write = cai::grad_mode::overwrite;
  // matmul_backward and gelu_backward write din over garbage
  const std::size_t N = 9, C = 12, OC = 7;
  pair_buffer<T> in(random_values<T>(N * C, 50)), w(random_values<T>(OC * C, 51)), dout(random_values<T>(N * OC, 52));
  pair_buffer<T> din(random_values<T>(N * C, 53, 100, 200)), dw(random_values<T>(OC * C, 54));
  cai::matmul_backward(cpu, din.h(), dw.h(), static_cast<T*>(nullptr), dout.h(), in.h(), w.h(), N, C, OC, write);
  cai::matmul_backward(gpu, din.d(), dw.d(), static_cast<T*>(nullptr), dout.d(), in.d(), w.d(), N, C, OC, write);
  require_close(din, tolerance<T>, "matmul_backward overwrite din");
  require_close(dw, tolerance<T>, "matmul_backward overwrite still accumulates dweight");
  pair_buffer<T> g(random_values<T>(N * C, 55, 100, 200));
  cai::gelu_backward(cpu, g.h(), in.h(), din.h(), N * C, write);
  cai::gelu_backward(gpu, g.d(), in.d(), din.d(), N * C, write);
  require_close(g, tolerance<T>, "gelu_backward overwrite");
  // crossentropy_backward writes every row, masked ones zero
  const std::size_t R = 4, V = 50;
  pair_buffer<T> logits(random_values<T>(R * V, 56, -3, 3)), lse(zeros<T>(R)), losses(zeros<T>(R));
  pair_buffer<std::int32_t> targets(std::vector<std::int32_t>{3, -1, 49, 0});
  cai::crossentropy_forward(cpu, losses.h(), lse.h(), logits.h(), targets.h(), R, V);
  cai::crossentropy_forward(gpu, losses.d(), lse.d(), logits.d(), targets.d(), R, V);
  pair_buffer<T> dl(random_values<T>(R, 57)), dlogits(random_values<T>(R * V, 58, 100, 200));
  cai::crossentropy_backward(cpu, dlogits.h(), dl.h(), logits.h(), lse.h(), targets.h(), R, V, write);
  cai::crossentropy_backward(gpu, dlogits.d(), dl.d(), logits.d(), lse.d(), targets.d(), R, V, write);
  require_close(dlogits, tolerance<T>, "crossentropy_backward overwrite");
  // attention over q, k and v read in place from a fused (B, T, qw + 2 kvw) projection
  const std::size_t B = 2, Tn = 11, H = 4, KVH = 2, D = 8, qw = H * D, kvw = KVH * D, W = qw + 2 * kvw;
  const cai::attention_strides strides{qw, W, W, W};
  pair_buffer<T> qkv(random_values<T>(B * Tn * W, 59, -2, 2)), out(zeros<T>(B * Tn * qw)),
      att(zeros<T>(B * H * Tn * Tn));
  cai::attention_forward(cpu, out.h(), att.h(), qkv.h(), qkv.h() + qw, qkv.h() + qw + kvw, B, Tn, H, KVH, D, strides);
  cai::attention_forward(gpu, out.d(), att.d(), qkv.d(), qkv.d() + qw, qkv.d() + qw + kvw, B, Tn, H, KVH, D, strides);
  require_close(out, tolerance<T>, "strided attention_forward out");
  require_close(att, tolerance<T>, "strided attention_forward att");
  pair_buffer<T> da(random_values<T>(B * Tn * qw, 60)), dqkv(random_values<T>(B * Tn * W, 61));
  cai::attention_backward(cpu, dqkv.h(), dqkv.h() + qw, dqkv.h() + qw + kvw, da.h(), qkv.h(), qkv.h() + qw,
                          qkv.h() + qw + kvw, att.h(), B, Tn, H, KVH, D, strides);
  cai::attention_backward(gpu, dqkv.d(), dqkv.d() + qw, dqkv.d() + qw + kvw, da.d(), qkv.d(), qkv.d() + qw,
                          qkv.d() + qw + kvw, att.d(), B, Tn, H, KVH, D, strides);
  require_close(dqkv, tolerance<T>, "strided attention_backward dqkv");
}

TEST_CASE("The storage helpers fill and copy on the device", "[cuda][storage]") {
  const std::vector<float> host{1, 2, 3, 4, 5};
  cai::device_vector<float> a(5), b(5);
  cai::copy_from_host(gpu, a.data(), host.data(), host.size());
  cai::copy(gpu, b.data() + 1, a.data(), 3);
  cai::fill(gpu, a.data() + 3, 9.0f, 2);
  std::vector<float> back(5);
  cai::copy_to_host(gpu, back.data(), a.data(), 5);
  CHECK(back == std::vector<float>{1, 2, 3, 9, 9});
  CHECK(b.to_host() == std::vector<float>{0, 1, 2, 3, 0});
}

TEST_CASE("device_vector resizes, copies and zeroes like a vector", "[cuda][storage]") {
  cai::device_vector<float> v(std::span<const float>(std::vector<float>{1, 2, 3}));
  v.resize(5);
  CHECK(v.to_host() == std::vector<float>{1, 2, 3, 0, 0});
  cai::device_vector<float> w = v;
  v.zero();
  CHECK(w.to_host() == std::vector<float>{1, 2, 3, 0, 0});
  CHECK(v.to_host() == std::vector<float>(5, 0.0f));
  cai::device_vector<float> moved = std::move(w);
  CHECK(w.empty());
  CHECK(moved.size() == 5);
  moved.resize(2);
  CHECK(moved.to_host() == std::vector<float>{1, 2});
}

int main(int argc, char** argv) { return cai_test::gpu_main(argc, argv); }
