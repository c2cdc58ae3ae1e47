// dpo_trainer: DPO raises the chosen-over-rejected margin and the implicit reward accuracy.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "cai/train/adamw.hpp"
#include "cai/train/dpo.hpp"
#include "support.hpp"

using cai_test::scratch_dir;
using cai_test::tiny_gpt2;
using cai_test::tiny_llama;

namespace {

// Chosen responses use even tokens, rejected ones odd tokens: a preference a policy can learn.
std::vector<cai::dpo_example> parity_data(std::size_t n, std::uint64_t seed) {
  cai::rng g(seed);
  std::vector<cai::dpo_example> out;
  for (std::size_t i = 0; i < n; ++i) {
    cai::dpo_example e;
    e.prompt = {1, static_cast<std::int32_t>(4 + g.uniform_index(28)), 2};
    for (int k = 0; k < 4; ++k) {
      e.chosen.push_back(static_cast<std::int32_t>(4 + 2 * g.uniform_index(14)));
      e.rejected.push_back(static_cast<std::int32_t>(5 + 2 * g.uniform_index(13)));
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

TEST_CASE("response_logprobs sums the log-probabilities of the response tokens", "[train][dpo]") {
  auto model = tiny_gpt2(9);
  const std::vector<std::int32_t> prompt{1, 7, 2}, response{4, 6, 8};
  const std::vector<const std::vector<std::int32_t>*> ps{&prompt}, rs{&response};
  const auto got = cai::response_logprobs(model, ps, rs);
  std::vector<std::int32_t> ids{1, 7, 2, 4, 6, 8};
  const auto logits = model.forward(ids, 1, 6);
  double want = 0;
  for (std::size_t t = 2; t < 5; ++t) {
    const float* row = logits.data() + t * 32;
    double m = *std::max_element(row, row + 32), s = 0;
    for (int v = 0; v < 32; ++v) s += std::exp(row[v] - m);
    want += row[ids[t + 1]] - m - std::log(s);
  }
  REQUIRE(got.size() == 1);
  CHECK(std::abs(got[0] - want) < 1e-4);
}

TEST_CASE("DPO raises the margin and the implicit reward accuracy", "[train][dpo]") {
  auto policy = tiny_llama(12);
  auto reference = policy;
  cai::full_parameters params(policy);
  cai::dpo_trainer_options o;
  o.train.batch_size = 8;
  o.train.max_steps = 40;
  o.dpo.beta = 0.1;
  cai::dpo_trainer trainer(params, reference, cai::adamw{.learning_rate = 3e-3f, .weight_decay = 0.0f}, o);
  const auto data = parity_data(64, 3), held_out = parity_data(64, 4);
  const auto [margin0, accuracy0] = trainer.evaluate(held_out);
  CHECK(std::abs(margin0) < 1e-6);  // the policy starts as the reference
  const auto result = trainer.train(data, cai::quiet{});
  const auto [margin, accuracy] = trainer.evaluate(held_out);
  INFO("margin " << margin << " accuracy " << accuracy << " loss " << result.loss);
  CHECK(margin > 1.0);
  CHECK(accuracy >= 0.9);
  CHECK(result.loss < std::log(2.0));
}

TEST_CASE("IPO and conservative DPO train too", "[train][dpo]") {
  for (auto variant : {cai::dpo_variant::ipo, cai::dpo_variant::sigmoid}) {
    auto policy = tiny_gpt2(12);
    auto reference = policy;
    cai::full_parameters params(policy);
    cai::dpo_trainer_options o;
    o.train.batch_size = 8;
    o.train.max_steps = 15;
    o.dpo.variant = variant;
    o.dpo.label_smoothing = variant == cai::dpo_variant::sigmoid ? 0.2 : 0.0;
    cai::dpo_trainer trainer(params, reference, cai::adamw{.learning_rate = 3e-3f, .weight_decay = 0.0f}, o);
    const auto data = parity_data(32, 5);
    trainer.train(data, cai::quiet{});
    const auto [margin, accuracy] = trainer.evaluate(data);
    CHECK(margin > 0.0);
  }
}

TEST_CASE("A resumed DPO run with LoRA gives the uninterrupted run's adapters bit for bit", "[train][dpo][checkpoint]") {
  const auto data = parity_data(24, 8);
  scratch_dir dir("dpo-resume");
  cai::dpo_trainer_options o;
  o.train.batch_size = 4;
  o.train.max_steps = 6;
  o.train.checkpoint_every = 2;
  auto run = [&](bool interrupted, std::vector<float>& adapters) {
    auto policy = tiny_llama(3);
    auto reference = policy;
    cai::lora_adapters lora(policy, {.rank = 2, .alpha = 4.0, .seed = 1});
    auto opts = o;
    if (interrupted) opts.train.checkpoint_dir = dir.path / "ckpt";
    cai::dpo_trainer t(lora, reference, cai::adamw{.learning_rate = 1e-2f}, opts);
    if (interrupted) {
      struct stop_at_4 {
        bool on_step(const cai::train_progress& p) const { return p.step == 4; }
      };
      CHECK(t.train(data, stop_at_4{}).steps == 4);
      auto fresh_policy = tiny_llama(3);
      auto fresh_reference = fresh_policy;
      cai::lora_adapters fresh(fresh_policy, {.rank = 2, .alpha = 4.0, .seed = 99});
      cai::dpo_trainer again(fresh, fresh_reference, cai::adamw{.learning_rate = 1e-2f}, opts);
      const auto r = again.train(data, cai::quiet{});
      CHECK(r.resumed);
      CHECK(r.steps == 6);
      adapters.assign(fresh.values().begin(), fresh.values().end());
    } else {
      t.train(data, cai::quiet{});
      adapters.assign(lora.values().begin(), lora.values().end());
    }
  };
  std::vector<float> straight, resumed;
  run(false, straight);
  run(true, resumed);
  REQUIRE(straight.size() == resumed.size());
  CHECK(std::memcmp(straight.data(), resumed.data(), sizeof(float) * straight.size()) == 0);
}
