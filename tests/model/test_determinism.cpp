// Bit-for-bit determinism of the transformer: equal inputs give equal logits and gradients whatever the
// addresses of the buffers (Eigen's vectorised reductions over unaligned maps would otherwise peel a
// different number of leading elements on each allocation and round differently), so that training
// runs are reproducible for a seed and a resumed run equals an uninterrupted one.
#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "cai/model/transformer.hpp"

namespace {

struct outputs {
  std::vector<float> logits, grads, cached;
};

outputs run_once(const cai::transformer_config& config, std::size_t shift) {
  // odd-sized live allocations move the next buffers to other alignments
  std::vector<std::unique_ptr<char[]>> spacers;
  for (std::size_t i = 0; i < shift; ++i) spacers.emplace_back(new char[16 * i + 8]);
  cai::transformer<cai::cpu_t, float> m(config);
  m.init_random(11);
  const std::size_t B = 3, T = 13;
  std::vector<std::int32_t> ids(B * T), targets(B * T);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<std::int32_t>((i * 7 + 3) % config.vocab_size);
    targets[i] = i % 5 == 0 ? -1 : static_cast<std::int32_t>((i * 5 + 1) % config.vocab_size);
  }
  outputs o;
  const auto logits = m.forward(ids, B, T);
  o.logits.assign(logits.begin(), logits.end());
  m.zero_grad();
  (void)m.forward_loss(ids, targets, B, T);
  m.backward_loss();
  o.grads.assign(m.grad(), m.grad() + m.num_parameters());
  cai::kv_cache<cai::cpu_t, float> cache(config, 2, 16);
  const std::vector<std::int32_t> a(ids.begin(), ids.begin() + 9), b(ids.begin() + 20, ids.begin() + 25);
  const std::vector<cai::cache_segment> segments{{0, a}, {1, b}};
  const auto c = m.forward_cached(cache, segments);
  o.cached.assign(c.begin(), c.end());
  return o;
}

void check_same(const cai::transformer_config& config) {
  const auto first = run_once(config, 0);
  for (std::size_t shift = 1; shift <= 6; ++shift) {
    const auto other = run_once(config, shift);
    INFO("allocation shift " << shift);
    CHECK(std::memcmp(first.logits.data(), other.logits.data(), sizeof(float) * first.logits.size()) == 0);
    CHECK(std::memcmp(first.grads.data(), other.grads.data(), sizeof(float) * first.grads.size()) == 0);
    CHECK(std::memcmp(first.cached.data(), other.cached.data(), sizeof(float) * first.cached.size()) == 0);
  }
}

}  // namespace

TEST_CASE("GPT-2 logits and gradients are bit-identical whatever the buffers' addresses", "[model][determinism]") {
  check_same(cai::transformer_config::gpt2(40, 32, 36, 2, 3));
}

TEST_CASE("Llama logits and gradients are bit-identical whatever the buffers' addresses", "[model][determinism]") {
  check_same(cai::transformer_config::llama(40, 32, 36, 2, 6, 2, 52));
}

TEST_CASE("A batch's gradients do not depend on the shapes of earlier batches", "[model][determinism]") {
  // trainers feed batches of varying (B, T) to one model; buffers kept between steps must follow
  for (const auto& config : {cai::transformer_config::gpt2(40, 32, 36, 2, 3),
                             cai::transformer_config::llama(40, 32, 36, 2, 6, 2, 52)}) {
    auto gradient_of = [&](cai::transformer<cai::cpu_t, float>& m, std::size_t B, std::size_t T) {
      std::vector<std::int32_t> ids(B * T), targets(B * T);
      for (std::size_t i = 0; i < ids.size(); ++i) {
        ids[i] = static_cast<std::int32_t>((i * 11 + B) % config.vocab_size);
        targets[i] = i % 4 == 0 ? -1 : static_cast<std::int32_t>((i * 3 + T) % config.vocab_size);
      }
      m.zero_grad();
      (void)m.forward_loss(ids, targets, B, T);
      m.backward_loss();
      return std::vector<float>(m.grad(), m.grad() + m.num_parameters());
    };
    cai::transformer<cai::cpu_t, float> warm(config);
    warm.init_random(5);
    const std::size_t shapes[][2] = {{4, 9}, {2, 17}, {3, 5}, {1, 31}, {4, 9}, {5, 12}};
    for (const auto& s : shapes) {
      cai::transformer<cai::cpu_t, float> fresh(config);
      fresh.init_random(5);
      const auto want = gradient_of(fresh, s[0], s[1]);
      const auto got = gradient_of(warm, s[0], s[1]);
      INFO(to_string(config.family) << " batch " << s[0] << " x " << s[1]);
      CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
    }
  }
}
