// Tests of cai/model/transformer.hpp: the parameter table of each family, gradients of the whole model
// against finite differences (in double), KV-cached decoding against the full forward, and learning.
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <vector>

#include "cai/model/transformer.hpp"
#include "cai/train/sgd.hpp"

namespace {
cai::transformer_config tiny_gpt2() { return cai::transformer_config::gpt2(11, 8, 8, 2, 2); }
cai::transformer_config tiny_llama(bool tied = false) {
  auto c = cai::transformer_config::llama(11, 8, 8, 2, 4, 2, 12, 10000.0, tied);
  c.norm_eps = 1e-6;
  return c;
}
std::vector<std::int32_t> tokens(std::size_t n, std::int32_t vocab, std::int32_t seed) {
  std::vector<std::int32_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int32_t>((i * 7 + static_cast<std::size_t>(seed) * 3) % static_cast<std::size_t>(vocab));
  return v;
}
}  // namespace

TEST_CASE("the parameter tables use the Hugging Face names and shapes of each family", "[model][transformer]") {
  cai::transformer<cai::cpu_t, float> gpt2(tiny_gpt2());
  CHECK(gpt2.parameter("h.1.attn.c_attn.weight").shape == std::vector<std::size_t>{24, 8});
  CHECK(gpt2.parameter("wpe.weight").shape == std::vector<std::size_t>{8, 8});
  CHECK(gpt2.parameter("h.0.mlp.c_fc.weight").shape == std::vector<std::size_t>{32, 8});
  // GPT-2 parameter count: 2 embeddings, 12 tensors per layer, final LayerNorm
  CHECK(gpt2.parameters().size() == 2 + 2 * 12 + 2);
  cai::transformer<cai::cpu_t, float> llama(tiny_llama());
  CHECK(llama.parameter("model.layers.0.self_attn.k_proj.weight").shape == std::vector<std::size_t>{4, 8});
  CHECK(llama.parameter("model.layers.1.mlp.down_proj.weight").shape == std::vector<std::size_t>{8, 12});
  CHECK(llama.parameter("lm_head.weight").shape == std::vector<std::size_t>{11, 8});
  cai::transformer<cai::cpu_t, float> tied(tiny_llama(true));
  CHECK_THROWS_WITH(tied.parameter("lm_head.weight"), Catch::Matchers::ContainsSubstring("no parameter named 'lm_head.weight'"));
}

TEST_CASE("invalid configurations name the field", "[model][transformer]") {
  auto c = tiny_llama();
  c.n_kv_heads = 3;
  CHECK_THROWS_WITH((cai::transformer<cai::cpu_t, float>(c)), Catch::Matchers::ContainsSubstring("n_kv_heads"));
  c = tiny_gpt2();
  c.d_model = 9;
  CHECK_THROWS_WITH((cai::transformer<cai::cpu_t, float>(c)), Catch::Matchers::ContainsSubstring("multiple of n_heads"));
}

TEST_CASE("every parameter gradient of both families matches finite differences", "[model][transformer][gradient]") {
  for (const auto& config : {tiny_gpt2(), tiny_llama(), tiny_llama(true)}) {
    INFO("family " << cai::to_string(config.family) << " tied " << config.tied_embeddings);
    cai::transformer<cai::cpu_t, double> model(config);
    model.init_random(42);
    // larger weights than the default init, so that every path carries a visible gradient
    for (std::size_t i = 0; i < model.num_parameters(); ++i) model.data()[i] *= 10.0;
    const std::size_t B = 2, T = 5;
    const auto ids = tokens(B * T, 11, 1);
    auto targets = tokens(B * T, 11, 2);
    targets[3] = -1;  // a masked position
    model.zero_grad();
    (void)model.forward_loss(ids, targets, B, T);
    model.backward_loss();
    // check a spread of elements of every tensor
    const double h = 1e-5;
    for (const auto& p : model.parameters()) {
      for (std::size_t j = 0; j < p.size; j += std::max<std::size_t>(1, p.size / 5)) {
        double& w = model.data()[p.offset + j];
        const double keep = w;
        w = keep + h;
        const double up = model.forward_loss(ids, targets, B, T);
        w = keep - h;
        const double down = model.forward_loss(ids, targets, B, T);
        w = keep;
        const double numeric = (up - down) / (2 * h);
        INFO(p.name << "[" << j << "]");
        CHECK_THAT(model.grad()[p.offset + j], Catch::Matchers::WithinAbs(numeric, 1e-6 + 1e-5 * std::abs(numeric)));
      }
    }
  }
}

TEST_CASE("KV-cached decoding gives the logits of a full forward", "[model][transformer][cache]") {
  for (const auto& config : {tiny_gpt2(), tiny_llama()}) {
    INFO("family " << cai::to_string(config.family));
    cai::transformer<cai::cpu_t, float> model(config);
    model.init_random(7);
    const std::size_t T = 6, V = config.vocab_size;
    const auto a = tokens(T, 11, 3), b = tokens(4, 11, 5);
    std::vector<float> full_a(model.forward(a, 1, T).begin(), model.forward(a, 1, T).end());
    std::vector<float> full_b(model.forward(b, 1, 4).begin(), model.forward(b, 1, 4).end());

    cai::kv_cache<cai::cpu_t, float> cache(config, 2, 8);
    // prefill sequence a with 3 tokens and sequence b with 1, then decode both one token at a time
    std::vector<cai::cache_segment> first{{0, std::span(a).subspan(0, 3)}, {1, std::span(b).subspan(0, 1)}};
    auto logits = model.forward_cached(cache, first);
    REQUIRE(logits.size() == 4 * V);
    for (std::size_t i = 0; i < 3 * V; ++i) CHECK_THAT(logits[i], Catch::Matchers::WithinAbs(full_a[i], 1e-5));
    for (std::size_t i = 0; i < V; ++i) CHECK_THAT(logits[3 * V + i], Catch::Matchers::WithinAbs(full_b[i], 1e-5));
    for (std::size_t t = 3; t < T; ++t) {
      std::vector<cai::cache_segment> step{{0, std::span(a).subspan(t, 1)}};
      if (t - 2 < 4) step.push_back({1, std::span(b).subspan(t - 2, 1)});
      auto out = model.forward_cached(cache, step);
      for (std::size_t i = 0; i < V; ++i) CHECK_THAT(out[i], Catch::Matchers::WithinAbs(full_a[t * V + i], 1e-5));
      if (t - 2 < 4)
        for (std::size_t i = 0; i < V; ++i)
          CHECK_THAT(out[V + i], Catch::Matchers::WithinAbs(full_b[(t - 2) * V + i], 1e-5));
    }
    CHECK(cache.length(0) == T);
    // a forked slot continues from the same prefix
    cache.copy_slot(1, 0);
    CHECK(cache.length(0) == 4);
    std::vector<std::int32_t> overflow(5, 1);
    std::vector<cai::cache_segment> too_long{{0, overflow}};
    CHECK_THROWS_AS(model.forward_cached(cache, too_long), cai::config_error);
  }
}

TEST_CASE("a tiny model learns a repeating sequence with sgd", "[model][transformer][training]") {
  for (const auto& config : {tiny_gpt2(), tiny_llama()}) {
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
