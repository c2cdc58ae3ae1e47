// Tests of cai/backend/cpu.hpp: every backward kernel against central finite differences of its forward
// kernel (in double, so the tolerance can be tight), and the forwards against direct formulas.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/random.hpp"

namespace {
using vec = std::vector<double>;

vec random_vec(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  cai::rng g(seed);
  vec v(n);
  for (auto& x : v) x = (2.0 * g.uniform_real() - 1.0) * scale;
  return v;
}

/// Checks d(sum(forward() * R))/d(x[i]) against `analytic[i]` for every i, by central differences.
void check_gradient(const std::function<vec()>& forward, vec& x, const vec& analytic, const vec& R,
                    double tolerance = 1e-6) {
  REQUIRE(analytic.size() == x.size());
  const double h = 1e-6;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const vec up = forward();
    x[i] = keep - h;
    const vec down = forward();
    x[i] = keep;
    double numeric = 0;
    for (std::size_t j = 0; j < R.size(); ++j) numeric += (up[j] - down[j]) * R[j];
    numeric /= 2 * h;
    INFO("element " << i);
    CHECK_THAT(analytic[i], Catch::Matchers::WithinAbs(numeric, tolerance * (1 + std::abs(numeric))));
  }
}
}  // namespace

TEST_CASE("matmul backward matches finite differences for input weight and bias", "[backend][cpu][matmul]") {
  const std::size_t N = 3, C = 4, OC = 5;
  vec x = random_vec(N * C, 1), w = random_vec(OC * C, 2), b = random_vec(OC, 3), R = random_vec(N * OC, 4);
  auto forward = [&] {
    vec out(N * OC);
    cai::matmul_forward(cai::cpu, out.data(), x.data(), w.data(), b.data(), N, C, OC);
    return out;
  };
  vec dx(N * C, 0.0), dw(OC * C, 0.0), db(OC, 0.0);
  cai::matmul_backward(cai::cpu, dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), N, C, OC);
  check_gradient(forward, x, dx, R);
  check_gradient(forward, w, dw, R);
  check_gradient(forward, b, db, R);
  // forward against the direct formula
  const vec out = forward();
  double direct = b[2];
  for (std::size_t c = 0; c < C; ++c) direct += x[1 * C + c] * w[2 * C + c];
  CHECK_THAT(out[1 * OC + 2], Catch::Matchers::WithinAbs(direct, 1e-12));
}

TEST_CASE("backward kernels accumulate into their gradient buffers", "[backend][cpu][matmul]") {
  const std::size_t N = 2, C = 3, OC = 2;
  vec x = random_vec(N * C, 5), w = random_vec(OC * C, 6), R = random_vec(N * OC, 7);
  vec once(OC * C, 0.0), twice(OC * C, 0.0);
  cai::matmul_backward<double>(cai::cpu, nullptr, once.data(), nullptr, R.data(), x.data(), w.data(), N, C, OC);
  cai::matmul_backward<double>(cai::cpu, nullptr, twice.data(), nullptr, R.data(), x.data(), w.data(), N, C, OC);
  cai::matmul_backward<double>(cai::cpu, nullptr, twice.data(), nullptr, R.data(), x.data(), w.data(), N, C, OC);
  for (std::size_t i = 0; i < once.size(); ++i) CHECK_THAT(twice[i], Catch::Matchers::WithinAbs(2 * once[i], 1e-12));
}

TEST_CASE("layernorm backward matches finite differences", "[backend][cpu][norm]") {
  const std::size_t N = 3, C = 6;
  vec x = random_vec(N * C, 8, 2.0), w = random_vec(C, 9), b = random_vec(C, 10), R = random_vec(N * C, 11);
  vec mean(N), rstd(N);
  auto forward = [&] {
    vec out(N * C);
    cai::layernorm_forward(cai::cpu, out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5);
    return out;
  };
  (void)forward();
  vec dx(N * C, 0.0), dw(C, 0.0), db(C, 0.0);
  cai::layernorm_backward(cai::cpu, dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), mean.data(),
                          rstd.data(), N, C);
  check_gradient(forward, x, dx, R);
  check_gradient(forward, w, dw, R);
  check_gradient(forward, b, db, R);
}

TEST_CASE("rmsnorm backward matches finite differences", "[backend][cpu][norm]") {
  const std::size_t N = 3, C = 6;
  vec x = random_vec(N * C, 12, 2.0), w = random_vec(C, 13), R = random_vec(N * C, 14);
  vec rstd(N);
  auto forward = [&] {
    vec out(N * C);
    cai::rmsnorm_forward(cai::cpu, out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6);
    return out;
  };
  (void)forward();
  vec dx(N * C, 0.0), dw(C, 0.0);
  cai::rmsnorm_backward(cai::cpu, dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), N, C);
  check_gradient(forward, x, dx, R);
  check_gradient(forward, w, dw, R);
}

TEST_CASE("gelu and swiglu backward match finite differences", "[backend][cpu][activation]") {
  const std::size_t n = 16;
  vec x = random_vec(n, 15, 3.0), up = random_vec(n, 16, 2.0), R = random_vec(n, 17);
  auto gelu = [&] {
    vec out(n);
    cai::gelu_forward(cai::cpu, out.data(), x.data(), n);
    return out;
  };
  vec dx(n, 0.0);
  cai::gelu_backward(cai::cpu, dx.data(), x.data(), R.data(), n);
  check_gradient(gelu, x, dx, R);
  CHECK_THAT(gelu()[0], Catch::Matchers::WithinAbs(
                            0.5 * x[0] * (1 + std::tanh(std::sqrt(2 / M_PI) * (x[0] + 0.044715 * std::pow(x[0], 3)))),
                            1e-12));

  auto swiglu = [&] {
    vec out(n);
    cai::swiglu_forward(cai::cpu, out.data(), x.data(), up.data(), n);
    return out;
  };
  vec dgate(n, 0.0), dup(n, 0.0);
  cai::swiglu_backward(cai::cpu, dgate.data(), dup.data(), x.data(), up.data(), R.data(), n);
  check_gradient(swiglu, x, dgate, R);
  check_gradient(swiglu, up, dup, R);
}

TEST_CASE("rope rotates pairs by position and its backward is the inverse rotation", "[backend][cpu][rope]") {
  const std::size_t BT = 3, H = 2, D = 8;
  const std::vector<std::int32_t> pos{0, 5, 17};
  for (auto style : {cai::rope_style::half, cai::rope_style::interleaved}) {
    vec x = random_vec(BT * H * D, 18), R = random_vec(BT * H * D, 19);
    auto forward = [&] {
      vec y = x;
      cai::rope_forward(cai::cpu, y.data(), pos.data(), BT, H, D, 10000.0, style);
      return y;
    };
    // position 0 is the identity; norms are preserved
    const vec y = forward();
    for (std::size_t i = 0; i < H * D; ++i) CHECK_THAT(y[i], Catch::Matchers::WithinAbs(x[i], 1e-12));
    double nx = 0, ny = 0;
    for (std::size_t i = 0; i < x.size(); ++i) nx += x[i] * x[i], ny += y[i] * y[i];
    CHECK_THAT(ny, Catch::Matchers::WithinRel(nx, 1e-12));
    vec dx = R;
    cai::rope_backward(cai::cpu, dx.data(), pos.data(), BT, H, D, 10000.0, style);
    check_gradient(forward, x, dx, R);
  }
  // The half style pairs element i with i + D/2: at position 1 and frequency index 0 the angle is 1 rad.
  vec e(D, 0.0);
  e[0] = 1.0;
  const std::int32_t one = 1;
  cai::rope_forward(cai::cpu, e.data(), &one, 1, 1, D, 10000.0, cai::rope_style::half);
  CHECK_THAT(e[0], Catch::Matchers::WithinAbs(std::cos(1.0), 1e-12));
  CHECK_THAT(e[D / 2], Catch::Matchers::WithinAbs(std::sin(1.0), 1e-12));
}

TEST_CASE("causal grouped-query attention backward matches finite differences", "[backend][cpu][attention]") {
  const std::size_t B = 2, T = 4, H = 4, KVH = 2, D = 3;
  vec q = random_vec(B * T * H * D, 20), k = random_vec(B * T * KVH * D, 21), v = random_vec(B * T * KVH * D, 22);
  vec R = random_vec(B * T * H * D, 23);
  vec att(B * H * T * T);
  auto forward = [&] {
    vec out(B * T * H * D);
    cai::attention_forward(cai::cpu, out.data(), att.data(), q.data(), k.data(), v.data(), B, T, H, KVH, D);
    return out;
  };
  const vec out = forward();
  vec dq(q.size(), 0.0), dk(k.size(), 0.0), dv(v.size(), 0.0);
  cai::attention_backward(cai::cpu, dq.data(), dk.data(), dv.data(), R.data(), q.data(), k.data(), v.data(), att.data(),
                          B, T, H, KVH, D);
  check_gradient(forward, q, dq, R);
  check_gradient(forward, k, dk, R);
  check_gradient(forward, v, dv, R);
  // causality: the first token attends only to itself, so its output is its value vector
  for (std::size_t d = 0; d < D; ++d) CHECK_THAT(out[d], Catch::Matchers::WithinAbs(v[d], 1e-12));
  // probabilities of each row sum to one and vanish in the future
  for (std::size_t r = 0; r < B * H * T; ++r) {
    const std::size_t t = r % T;
    double sum = 0;
    for (std::size_t s = 0; s < T; ++s) {
      sum += att[r * T + s];
      if (s > t) CHECK(att[r * T + s] == 0.0);
    }
    CHECK_THAT(sum, Catch::Matchers::WithinAbs(1.0, 1e-12));
  }
  CHECK_THROWS_AS(cai::attention_forward(cai::cpu, vec(1).data(), att.data(), q.data(), k.data(), v.data(), 1, 1, 3, 2, D),
                  cai::config_error);
}

TEST_CASE("cross-entropy backward matches finite differences and masks targets of -1", "[backend][cpu][loss]") {
  const std::size_t N = 4, V = 7;
  vec logits = random_vec(N * V, 24, 3.0), R = random_vec(N, 25);
  const std::vector<std::int32_t> targets{3, -1, 0, 6};
  vec lse(N);
  auto forward = [&] {
    vec losses(N);
    cai::crossentropy_forward(cai::cpu, losses.data(), lse.data(), logits.data(), targets.data(), N, V);
    return losses;
  };
  const vec losses = forward();
  CHECK(losses[1] == 0.0);
  double direct = 0;
  for (std::size_t i = 0; i < V; ++i) direct += std::exp(logits[i]);
  CHECK_THAT(losses[0], Catch::Matchers::WithinAbs(std::log(direct) - logits[3], 1e-12));
  vec dlogits(N * V, 0.0);
  cai::crossentropy_backward(cai::cpu, dlogits.data(), R.data(), logits.data(), lse.data(), targets.data(), N, V);
  check_gradient(forward, logits, dlogits, R);
  const std::vector<std::int32_t> bad{7, 0, 0, 0};
  vec l(N);
  CHECK_THROWS_AS(cai::crossentropy_forward(cai::cpu, l.data(), lse.data(), logits.data(), bad.data(), N, V),
                  cai::validation_error);
}

TEST_CASE("embedding gathers rows and scatters gradients with accumulation", "[backend][cpu][embedding]") {
  const std::size_t V = 5, C = 3;
  vec table = random_vec(V * C, 26);
  const std::vector<std::int32_t> ids{4, 1, 4};
  vec out(ids.size() * C);
  cai::embedding_forward(cai::cpu, out.data(), ids.data(), table.data(), ids.size(), C, V);
  for (std::size_t c = 0; c < C; ++c) CHECK(out[2 * C + c] == table[4 * C + c]);
  vec R = random_vec(ids.size() * C, 27), dtable(V * C, 0.0);
  cai::embedding_backward(cai::cpu, dtable.data(), R.data(), ids.data(), ids.size(), C);
  auto forward = [&] {
    vec o(ids.size() * C);
    cai::embedding_forward(cai::cpu, o.data(), ids.data(), table.data(), ids.size(), C, V);
    return o;
  };
  check_gradient(forward, table, dtable, R);
  const std::vector<std::int32_t> bad{5};
  CHECK_THROWS_AS(cai::embedding_forward(cai::cpu, out.data(), bad.data(), table.data(), 1, C, V), cai::validation_error);
}

TEST_CASE("softmax rows sum to one and the float kernels agree with the double ones", "[backend][cpu][softmax]") {
  const std::size_t N = 3, V = 9;
  vec x = random_vec(N * V, 28, 5.0), y(N * V);
  cai::softmax_forward(cai::cpu, y.data(), x.data(), N, V);
  for (std::size_t n = 0; n < N; ++n) {
    double s = 0;
    for (std::size_t i = 0; i < V; ++i) s += y[n * V + i];
    CHECK_THAT(s, Catch::Matchers::WithinAbs(1.0, 1e-12));
  }
  std::vector<float> xf(x.begin(), x.end()), yf(N * V);
  cai::softmax_forward(cai::cpu, yf.data(), xf.data(), N, V);
  for (std::size_t i = 0; i < y.size(); ++i) CHECK_THAT(yf[i], Catch::Matchers::WithinAbs(y[i], 1e-6));
}
