// Tests of the decode-step kernels of cai/backend/cpu.hpp: float matrix products of a few rows (the
// vectorised dot products of a KV-cached decode step), of wide outputs (the vocabulary head, computed in
// tiles) and the cached attention, against the double kernels; a row's result does not depend on the
// rows beside it, and the results are the same bits on one thread and on two.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/random.hpp"

#include "backend/with_threads.hpp"

namespace {
std::vector<double> random_vec(std::size_t n, std::uint64_t seed) {
  cai::rng g(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = 2.0 * g.uniform_real() - 1.0;
  return v;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

using cai_test::with_threads;

/// The largest |a - b| over the largest |b|.
double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    norm = std::max(norm, std::abs(b[i]));
  }
  return diff / norm;
}
}  // namespace

TEST_CASE("float products of few rows and of wide outputs agree with the double product", "[backend][cpu][matmul]") {
  struct shape {
    std::size_t N, C, OC;
  };
  for (const shape s : {shape{1, 7, 5}, shape{3, 37, 33}, shape{5, 64, 17}, shape{8, 256, 40}, shape{13, 100, 9},
                        shape{23, 48, 31}, shape{7, 20, 2100}, shape{300, 24, 2100}}) {
    const auto x = random_vec(s.N * s.C, 1), w = random_vec(s.OC * s.C, 2), b = random_vec(s.OC, 3);
    for (const bool bias : {false, true}) {
      std::vector<double> ref(s.N * s.OC);
      cai::matmul_forward(cai::cpu, ref.data(), x.data(), w.data(), bias ? b.data() : nullptr, s.N, s.C, s.OC);
      const auto xf = to_float(x), wf = to_float(w), bf = to_float(b);
      std::vector<float> out(s.N * s.OC);
      cai::matmul_forward(cai::cpu, out.data(), xf.data(), wf.data(), bias ? bf.data() : nullptr, s.N, s.C, s.OC);
      INFO("N " << s.N << " C " << s.C << " OC " << s.OC << " bias " << bias);
      CHECK(relative_error(out, ref) < 1e-5);
    }
  }
}

TEST_CASE("a row's product does not depend on the rows beside it or on the threads", "[backend][cpu][matmul]") {
  const std::size_t N = 13, C = 300, OC = 70;
  const auto xf = to_float(random_vec(N * C, 4)), wf = to_float(random_vec(OC * C, 5)), bf = to_float(random_vec(OC, 6));
  auto all = [&] {
    std::vector<float> out(N * OC);
    cai::matmul_forward(cai::cpu, out.data(), xf.data(), wf.data(), bf.data(), N, C, OC);
    return out;
  };
  const auto one = with_threads(1, all), two = with_threads(2, all);
  CHECK(std::memcmp(one.data(), two.data(), sizeof(float) * one.size()) == 0);
  for (std::size_t n = 0; n < N; ++n) {
    std::vector<float> alone(OC);
    cai::matmul_forward(cai::cpu, alone.data(), xf.data() + n * C, wf.data(), bf.data(), 1, C, OC);
    INFO("row " << n);
    CHECK(std::memcmp(alone.data(), one.data() + n * OC, sizeof(float) * OC) == 0);
  }
}

TEST_CASE("cached attention over float agrees with the double kernel and with itself on two threads", "[backend][cpu][attention]") {
  struct shape {
    std::size_t H, KVH, D;
  };
  for (const shape s : {shape{8, 8, 32}, shape{9, 3, 64}, shape{4, 2, 20}}) {
    const std::size_t slots = 3, max_len = 37, N = 5, W = s.KVH * s.D;
    const auto q = random_vec(N * s.H * s.D, 7), k = random_vec(slots * max_len * W, 8), v = random_vec(slots * max_len * W, 9);
    const std::vector<std::int32_t> slot{0, 2, 1, 2, 0}, position{0, 36, 17, 5, 30};
    std::vector<double> ref(N * s.H * s.D);
    cai::attention_cached_forward(cai::cpu, ref.data(), q.data(), k.data(), v.data(), slot.data(), position.data(), N,
                                  max_len, s.H, s.KVH, s.D);
    const auto qf = to_float(q), kf = to_float(k), vf = to_float(v);
    auto run = [&] {
      std::vector<float> out(N * s.H * s.D);
      cai::attention_cached_forward(cai::cpu, out.data(), qf.data(), kf.data(), vf.data(), slot.data(), position.data(),
                                    N, max_len, s.H, s.KVH, s.D);
      return out;
    };
    const auto one = with_threads(1, run), two = with_threads(2, run);
    INFO("H " << s.H << " KVH " << s.KVH << " D " << s.D);
    CHECK(relative_error(one, ref) < 1e-5);
    CHECK(std::memcmp(one.data(), two.data(), sizeof(float) * one.size()) == 0);
  }
}
