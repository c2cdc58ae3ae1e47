// The test cases of transformer<Backend> (model/transformer.hpp) that hold on every backend, written once
// as Catch2 template test cases over a list of backends. The including file names the backends before
// including this one (each case's name then ends with its backend, "... - cai::cpu_t"):
//
//     #define CAI_MODEL_BACKENDS cai::cpu_t    // tests/model/test_transformer.cpp
//     #define CAI_MODEL_BACKENDS cai::cuda_t   // tests/cuda/test_cuda_model_cases.cu (after cuda.cuh)
//
// A case reads the model only through its backend-neutral surface: host copies of what the model returns
// (cai::copy_to_host), `load_parameters`, `host_parameters`, `host_gradients`, and the optimizer state that
// the trainers would keep for the backend's storage (optimizer_state_t). The cases:
//  - the parameter tables and the configuration errors;
//  - every parameter gradient against central finite differences, in double;
//  - KV-cached decoding (prefill and one-token steps on two slots) against a full forward;
//  - a tiny model learning a repeating sequence with AdamW;
//  - bit-for-bit determinism: equal inputs give equal logits and gradients whatever the addresses of the
//    buffers and whatever batch shapes the model saw before (trainers feed batches of varying shape).
// The same tolerances apply on every backend: the GPU's float kernels differ from the CPU's in summation
// order only, which these tests never compare across backends (tests/cuda does that).
#pragma once

#ifndef CAI_MODEL_BACKENDS
#error "define CAI_MODEL_BACKENDS, the backend tags to test, before including model/transformer_cases.hpp"
#endif

#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "cai/model/transformer.hpp"
#include "cai/train/adamw.hpp"
#include "cai/train/backend_ops.hpp"

namespace model_cases {

inline cai::transformer_config tiny_gpt2() { return cai::transformer_config::gpt2(11, 8, 8, 2, 2); }
inline cai::transformer_config tiny_llama(bool tied = false) {
  auto c = cai::transformer_config::llama(11, 8, 8, 2, 4, 2, 12, 10000.0, tied);
  c.norm_eps = 1e-6;
  return c;
}
inline std::vector<std::int32_t> tokens(std::size_t n, std::int32_t vocab, std::int32_t seed) {
  std::vector<std::int32_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::int32_t>((i * 7 + static_cast<std::size_t>(seed) * 3) % static_cast<std::size_t>(vocab));
  return v;
}

/// A model of `config` trained for 100 steps on 1 2 3 4 1 2 3 4 1 with `opt` (the state the trainers would
/// keep for the backend's storage): the loss falls from above 2 to below 0.2.
template <class Backend, class Optimizer>
void check_learns_sequence(const cai::transformer_config& config, const Optimizer& opt) {
  using storage = typename Backend::template storage<float>;
  cai::transformer<Backend, float> model(config);
  model.init_random(3);
  const std::vector<std::int32_t> seq{1, 2, 3, 4, 1, 2, 3, 4, 1};
  const std::vector<std::int32_t> ids(seq.begin(), seq.end() - 1), targets(seq.begin() + 1, seq.end());
  auto& params = model.parameter_storage();
  cai::optimizer_state_t<Optimizer, storage> state(opt, params);
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

/// A host copy of backend memory (what `forward` and `forward_cached` return).
template <class Backend, class T>
std::vector<T> host(std::span<const T> s) {
  std::vector<T> out(s.size());
  cai::copy_to_host(Backend{}, out.data(), s.data(), s.size());
  return out;
}

}  // namespace model_cases

TEMPLATE_TEST_CASE("the parameter tables use the Hugging Face names and shapes of each family",
                        "[model][transformer]", CAI_MODEL_BACKENDS) {
  using namespace model_cases;
  cai::transformer<TestType, float> gpt2(tiny_gpt2());
  CHECK(gpt2.parameter("h.1.attn.c_attn.weight").shape == std::vector<std::size_t>{24, 8});
  CHECK(gpt2.parameter("wpe.weight").shape == std::vector<std::size_t>{8, 8});
  CHECK(gpt2.parameter("h.0.mlp.c_fc.weight").shape == std::vector<std::size_t>{32, 8});
  // GPT-2 parameter count: 2 embeddings, 12 tensors per layer, final LayerNorm
  CHECK(gpt2.parameters().size() == 2 + 2 * 12 + 2);
  CHECK(gpt2.parameter_storage().size() == gpt2.num_parameters());
  cai::transformer<TestType, float> llama(tiny_llama());
  CHECK(llama.parameter("model.layers.0.self_attn.k_proj.weight").shape == std::vector<std::size_t>{4, 8});
  CHECK(llama.parameter("model.layers.1.mlp.down_proj.weight").shape == std::vector<std::size_t>{8, 12});
  CHECK(llama.parameter("lm_head.weight").shape == std::vector<std::size_t>{11, 8});
  cai::transformer<TestType, float> tied(tiny_llama(true));
  CHECK_THROWS_WITH(tied.parameter("lm_head.weight"), Catch::Matchers::ContainsSubstring("no parameter named 'lm_head.weight'"));
}

TEMPLATE_TEST_CASE("invalid configurations name the field", "[model][transformer]", CAI_MODEL_BACKENDS) {
  using namespace model_cases;
  auto c = tiny_llama();
  c.n_kv_heads = 3;
  CHECK_THROWS_WITH((cai::transformer<TestType, float>(c)), Catch::Matchers::ContainsSubstring("n_kv_heads"));
  c = tiny_gpt2();
  c.d_model = 9;
  CHECK_THROWS_WITH((cai::transformer<TestType, float>(c)), Catch::Matchers::ContainsSubstring("multiple of n_heads"));
  cai::transformer<TestType, float> model(tiny_gpt2());
  const std::vector<float> short_weights(model.num_parameters() - 1, 0.0f);
  CHECK_THROWS_WITH(model.load_parameters(short_weights), Catch::Matchers::ContainsSubstring("values for a model of"));
}

TEMPLATE_TEST_CASE("every parameter gradient of both families matches finite differences",
                        "[model][transformer][gradient]", CAI_MODEL_BACKENDS) {
  using namespace model_cases;
  for (const auto& config : {tiny_gpt2(), tiny_llama(), tiny_llama(true)}) {
    INFO("family " << cai::to_string(config.family) << " tied " << config.tied_embeddings);
    cai::transformer<TestType, double> model(config);
    model.init_random(42);
    // larger weights than the default init, so that every path carries a visible gradient
    auto w = model.host_parameters();
    for (auto& x : w) x *= 10.0;
    model.load_parameters(w);
    const std::size_t B = 2, T = 5;
    const auto ids = tokens(B * T, 11, 1);
    auto targets = tokens(B * T, 11, 2);
    targets[3] = -1;  // a masked position
    model.zero_grad();
    (void)model.forward_loss(ids, targets, B, T);
    model.backward_loss();
    const auto grad = model.host_gradients();
    // check a spread of elements of every tensor
    const double h = 1e-5;
    auto loss_with = [&](std::size_t i, double value) {
      const double keep = w[i];
      w[i] = value;
      model.load_parameters(w);
      w[i] = keep;
      return static_cast<double>(model.forward_loss(ids, targets, B, T));
    };
    for (const auto& p : model.parameters()) {
      for (std::size_t j = 0; j < p.size; j += std::max<std::size_t>(1, p.size / 5)) {
        const std::size_t i = p.offset + j;
        const double up = loss_with(i, w[i] + h), down = loss_with(i, w[i] - h);
        const double numeric = (up - down) / (2 * h);
        INFO(p.name << "[" << j << "]");
        CHECK_THAT(grad[i], Catch::Matchers::WithinAbs(numeric, 1e-6 + 1e-5 * std::abs(numeric)));
      }
    }
  }
}

TEMPLATE_TEST_CASE("KV-cached decoding gives the logits of a full forward", "[model][transformer][cache]",
                        CAI_MODEL_BACKENDS) {
  using namespace model_cases;
  using Backend = TestType;
  for (const auto& config : {tiny_gpt2(), tiny_llama()}) {
    INFO("family " << cai::to_string(config.family));
    cai::transformer<Backend, float> model(config);
    model.init_random(7);
    const std::size_t T = 6, V = config.vocab_size;
    const auto a = tokens(T, 11, 3), b = tokens(4, 11, 5);
    const auto full_a = host<Backend>(model.forward(a, 1, T));
    const auto full_b = host<Backend>(model.forward(b, 1, 4));

    cai::kv_cache<Backend, float> cache(config, 2, 8);
    // prefill sequence a with 3 tokens and sequence b with 1, then decode both one token at a time
    std::vector<cai::cache_segment> first{{0, std::span(a).subspan(0, 3)}, {1, std::span(b).subspan(0, 1)}};
    const auto logits = host<Backend>(model.forward_cached(cache, first));
    REQUIRE(logits.size() == 4 * V);
    for (std::size_t i = 0; i < 3 * V; ++i) CHECK_THAT(logits[i], Catch::Matchers::WithinAbs(full_a[i], 1e-5));
    for (std::size_t i = 0; i < V; ++i) CHECK_THAT(logits[3 * V + i], Catch::Matchers::WithinAbs(full_b[i], 1e-5));
    for (std::size_t t = 3; t < T; ++t) {
      std::vector<cai::cache_segment> step{{0, std::span(a).subspan(t, 1)}};
      if (t - 2 < 4) step.push_back({1, std::span(b).subspan(t - 2, 1)});
      const auto out = host<Backend>(model.forward_cached(cache, step));
      for (std::size_t i = 0; i < V; ++i) CHECK_THAT(out[i], Catch::Matchers::WithinAbs(full_a[t * V + i], 1e-5));
      if (t - 2 < 4)
        for (std::size_t i = 0; i < V; ++i)
          CHECK_THAT(out[V + i], Catch::Matchers::WithinAbs(full_b[(t - 2) * V + i], 1e-5));
    }
    CHECK(cache.length(0) == T);
    // only the last row of each segment: the same logits as those rows of a full forward
    cai::kv_cache<Backend, float> fresh(config, 2, 8);
    const std::vector<cai::cache_segment> both{{0, std::span(a).subspan(0, 5)}, {1, std::span(b).subspan(0, 3)}};
    const auto lasts = host<Backend>(model.forward_cached(fresh, both, cai::cached_logits::last));
    REQUIRE(lasts.size() == 2 * V);
    for (std::size_t i = 0; i < V; ++i) {
      CHECK_THAT(lasts[i], Catch::Matchers::WithinAbs(full_a[4 * V + i], 1e-5));
      CHECK_THAT(lasts[V + i], Catch::Matchers::WithinAbs(full_b[2 * V + i], 1e-5));
    }
    CHECK(fresh.length(0) == 5);
    CHECK(fresh.length(1) == 3);
    // a forked slot continues from the same prefix
    cache.copy_slot(1, 0);
    CHECK(cache.length(0) == 4);
    std::vector<std::int32_t> overflow(5, 1);
    std::vector<cai::cache_segment> too_long{{0, overflow}};
    CHECK_THROWS_AS(model.forward_cached(cache, too_long), cai::config_error);
  }
}

TEMPLATE_TEST_CASE("a tiny model learns a repeating sequence with adamw", "[model][transformer][training]",
                   CAI_MODEL_BACKENDS) {
  for (const auto& config : {model_cases::tiny_gpt2(), model_cases::tiny_llama()}) {
    INFO("family " << cai::to_string(config.family));
    model_cases::check_learns_sequence<TestType>(config, cai::adamw{.learning_rate = 0.02f, .weight_decay = 0.0f});
  }
}

namespace model_cases {

struct run_outputs {
  std::vector<float> logits, grads, cached;
};

/// Logits, gradients and cached-decoding logits of a fresh model, with `shift` odd-sized host allocations
/// alive beforehand (they move the next buffers to other alignments: Eigen's vectorised reductions over
/// unaligned maps would otherwise peel a different number of leading elements and round differently).
template <class Backend>
run_outputs run_once(const cai::transformer_config& config, std::size_t shift) {
  std::vector<std::unique_ptr<char[]>> spacers;
  for (std::size_t i = 0; i < shift; ++i) spacers.emplace_back(new char[16 * i + 8]);
  cai::transformer<Backend, float> m(config);
  m.init_random(11);
  const std::size_t B = 3, T = 13;
  std::vector<std::int32_t> ids(B * T), targets(B * T);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<std::int32_t>((i * 7 + 3) % config.vocab_size);
    targets[i] = i % 5 == 0 ? -1 : static_cast<std::int32_t>((i * 5 + 1) % config.vocab_size);
  }
  run_outputs o;
  o.logits = host<Backend>(m.forward(ids, B, T));
  m.zero_grad();
  (void)m.forward_loss(ids, targets, B, T);
  m.backward_loss();
  o.grads = m.host_gradients();
  cai::kv_cache<Backend, float> cache(config, 2, 16);
  const std::vector<std::int32_t> a(ids.begin(), ids.begin() + 9), b(ids.begin() + 20, ids.begin() + 25);
  const std::vector<cai::cache_segment> segments{{0, a}, {1, b}};
  o.cached = host<Backend>(m.forward_cached(cache, segments));
  return o;
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

template <class Backend>
void check_same_whatever_the_addresses(const cai::transformer_config& config) {
  const auto first = run_once<Backend>(config, 0);
  for (std::size_t shift = 1; shift <= 6; ++shift) {
    const auto other = run_once<Backend>(config, shift);
    INFO("allocation shift " << shift);
    CHECK(same_bits(first.logits, other.logits));
    CHECK(same_bits(first.grads, other.grads));
    CHECK(same_bits(first.cached, other.cached));
  }
}

}  // namespace model_cases

TEMPLATE_TEST_CASE("GPT-2 logits and gradients are bit-identical whatever the buffers' addresses",
                        "[model][determinism]", CAI_MODEL_BACKENDS) {
  // repeated token ids, so that the embedding gradient sums several rows into one
  model_cases::check_same_whatever_the_addresses<TestType>(cai::transformer_config::gpt2(40, 32, 36, 2, 3));
}

TEMPLATE_TEST_CASE("Llama logits and gradients are bit-identical whatever the buffers' addresses",
                        "[model][determinism]", CAI_MODEL_BACKENDS) {
  model_cases::check_same_whatever_the_addresses<TestType>(cai::transformer_config::llama(40, 32, 36, 2, 6, 2, 52));
}

TEMPLATE_TEST_CASE("A batch's gradients do not depend on the shapes of earlier batches", "[model][determinism]",
                        CAI_MODEL_BACKENDS) {
  // trainers feed batches of varying (B, T) to one model; buffers kept between steps must follow
  for (const auto& config : {cai::transformer_config::gpt2(40, 32, 36, 2, 3),
                             cai::transformer_config::llama(40, 32, 36, 2, 6, 2, 52)}) {
    auto gradient_of = [&](cai::transformer<TestType, float>& m, std::size_t B, std::size_t T) {
      std::vector<std::int32_t> ids(B * T), targets(B * T);
      for (std::size_t i = 0; i < ids.size(); ++i) {
        ids[i] = static_cast<std::int32_t>((i * 11 + B) % config.vocab_size);
        targets[i] = i % 4 == 0 ? -1 : static_cast<std::int32_t>((i * 3 + T) % config.vocab_size);
      }
      m.zero_grad();
      (void)m.forward_loss(ids, targets, B, T);
      m.backward_loss();
      return m.host_gradients();
    };
    cai::transformer<TestType, float> warm(config);
    warm.init_random(5);
    const std::size_t shapes[][2] = {{4, 9}, {2, 17}, {3, 5}, {1, 31}, {4, 9}, {5, 12}};
    for (const auto& s : shapes) {
      cai::transformer<TestType, float> fresh(config);
      fresh.init_random(5);
      const auto want = gradient_of(fresh, s[0], s[1]);
      const auto got = gradient_of(warm, s[0], s[1]);
      INFO(to_string(config.family) << " batch " << s[0] << " x " << s[1]);
      CHECK(model_cases::same_bits(want, got));
    }
  }
}
