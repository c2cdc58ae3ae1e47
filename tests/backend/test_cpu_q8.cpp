// Tests of cai/backend/cpu_q8.hpp: the 8-bit block format (each value within half a step of the float),
// and the products of a few float rows by an 8-bit matrix, against a double reference within the error
// bound the two roundings give, with a bias, an odd number of blocks, 1 to 9 rows, and the same bits on
// one thread and on two.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cai/backend/cpu_q8.hpp"
#include "cai/random.hpp"

#include "backend/with_threads.hpp"

namespace {
std::vector<float> random_floats(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  cai::rng g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * (2.0 * g.uniform_real() - 1.0));
  return v;
}
}  // namespace

TEST_CASE("q8_0 blocks hold each value within half a step of the float", "[backend][q8]") {
  const std::size_t rows = 5, cols = 96;
  auto w = random_floats(rows * cols, 1, 3.0);
  for (std::size_t i = 32; i < 64; ++i) w[i] = 0.0f;  // a block of zeros
  w[7] = -5.5f;                                        // a block's largest magnitude, negative
  const auto m = cai::q8_0_matrix::quantize(w.data(), rows, cols);
  REQUIRE(m.q.size() == rows * cols);
  REQUIRE(m.d.size() == rows * cols / 32);
  CHECK(m.d[1] == 0.0f);
  CHECK(m.d[0] == 5.5f / 127.0f);
  CHECK(m.q[7] == -127);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const float step = m.d[(r * cols + c) / 32];
      INFO("element " << r << ", " << c);
      CHECK(std::abs(m.at(r, c) - w[r * cols + c]) <= 0.5f * step * 1.0001f);
    }
  CHECK_THROWS_WITH(cai::q8_0_matrix::quantize(w.data(), 2, 48),
                    Catch::Matchers::ContainsSubstring("48 columns is not a positive multiple of 32"));
}

TEST_CASE("8-bit products of a few rows stay within the rounding bound of the float product", "[backend][q8]") {
  const std::size_t C = 96, OC = 70;  // three blocks per row: the AVX-512 loop takes two, the last alone
  const auto w = random_floats(OC * C, 2);
  const auto bias = random_floats(OC, 3);
  const auto m = cai::q8_0_matrix::quantize(w.data(), OC, C);
  for (std::size_t N : {1, 3, 4, 5, 8, 9}) {
    const auto x = random_floats(N * C, 10 + N, 2.0);
    std::vector<float> out(N * OC, -1.0f);
    cai::matmul_forward_q8_0(cai::cpu, out.data(), x.data(), m, bias.data(), N);
    for (std::size_t n = 0; n < N; ++n) {
      // the input rows' own blocks, as the product quantises them
      std::vector<std::int8_t> q(C);
      float dx[3];
      for (std::size_t b = 0; b < 3; ++b) dx[b] = cai::q8_0_matrix::quantize_block(x.data() + n * C + b * 32, q.data() + b * 32);
      for (std::size_t o = 0; o < OC; ++o) {
        double exact = bias[o], bound = 0.0, magnitude = 0.0;
        for (std::size_t c = 0; c < C; ++c) {
          const double wv = w[o * C + c], xv = x[n * C + c], ew = 0.5 * m.d[(o * C + c) / 32], ex = 0.5 * dx[c / 32];
          exact += wv * xv;
          bound += ew * std::abs(xv) + ex * std::abs(wv) + ew * ex;
          magnitude += std::abs(wv * xv);
        }
        INFO("rows " << N << " row " << n << " output " << o);
        CHECK(std::abs(out[n * OC + o] - exact) <= bound + 1e-5 * (magnitude + 1.0));
      }
    }
  }
  // a row's result does not depend on the rows beside it, nor on the number of threads
  const auto x = random_floats(9 * C, 30, 2.0);
  auto run = [&](std::size_t first, std::size_t N) {
    std::vector<float> out(N * OC);
    cai::matmul_forward_q8_0(cai::cpu, out.data(), x.data() + first * C, m, nullptr, N);
    return out;
  };
  const auto all = cai_test::with_threads(1, [&] { return run(0, 9); });
  const auto two = cai_test::with_threads(2, [&] { return run(0, 9); });
  CHECK(std::memcmp(all.data(), two.data(), sizeof(float) * all.size()) == 0);
  const auto row6 = run(6, 1);
  CHECK(std::memcmp(row6.data(), all.data() + 6 * OC, sizeof(float) * OC) == 0);
}
