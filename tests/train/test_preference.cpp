// preference_model and preference_trainer: the scalar head's gradients and learning a preference.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "cai/train/adamw.hpp"
#include "cai/train/preference_model.hpp"
#include "support.hpp"

using cai_test::scratch_dir;
using cai_test::tiny_gpt2;
using cai_test::tiny_llama;

namespace {

// A synthetic preference with a learnable rule: the better response contains the marker token 9, the
// worse one does not. Prompt: 1, two topic tokens, 2; responses: 5 tokens from 10..27 (+ the marker).
std::vector<cai::preference_pair> marker_pairs(std::size_t n, std::uint64_t seed, bool soft) {
  cai::rng g(seed);
  std::vector<cai::preference_pair> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::int32_t> prompt{1, static_cast<std::int32_t>(10 + g.uniform_index(18)),
                                     static_cast<std::int32_t>(10 + g.uniform_index(18)), 2};
    auto response = [&](bool marked) {
      std::vector<std::int32_t> r = prompt;
      const std::size_t at = g.uniform_index(5);
      for (std::size_t k = 0; k < 5; ++k)
        r.push_back(marked && k == at ? 9 : static_cast<std::int32_t>(10 + g.uniform_index(18)));
      r.push_back(3);
      return r;
    };
    cai::preference_pair p;
    p.chosen = response(true);
    p.rejected = response(false);
    p.p_chosen = soft ? 0.75 + 0.25 * g.uniform_real() : 1.0;
    if (g.uniform_index(2) == 1) {  // half the pairs list the worse response as "chosen", with p < 0.5
      std::swap(p.chosen, p.rejected);
      p.p_chosen = 1.0 - p.p_chosen;
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

TEST_CASE("The reward head's gradients match finite differences", "[train][preference]") {
  cai::preference_model<cai::cpu_t> pm(tiny_llama(5), 3);
  const std::vector<std::vector<std::int32_t>> seqs{{1, 4, 9, 7, 3}, {1, 8, 2}, {1, 5, 5, 6, 7, 8, 9}};
  const std::vector<float> weights{0.7f, -1.3f, 0.4f};
  auto objective = [&] {
    const auto r = pm.forward(seqs);
    double s = 0;
    for (std::size_t i = 0; i < 3; ++i) s += weights[i] * r[i];
    return s;
  };
  auto& body = pm.body();
  body.zero_grad();
  std::fill(pm.head_gradient().begin(), pm.head_gradient().end(), 0.0f);
  objective();
  pm.backward(weights);
  // head
  for (std::size_t c = 0; c < pm.head().size(); c += 5) {
    const float keep = pm.head()[c];
    pm.head()[c] = keep + 1e-2f;
    const double up = objective();
    pm.head()[c] = keep - 1e-2f;
    const double down = objective();
    pm.head()[c] = keep;
    CHECK(std::abs((up - down) / 2e-2 - pm.head_gradient()[c]) <= 1e-3 + 1e-2 * std::abs(pm.head_gradient()[c]));
  }
  // body: a few elements of every tensor
  std::size_t checked = 0;
  for (const auto& p : body.parameters()) {
    for (std::size_t i = 0; i < p.size; i += std::max<std::size_t>(1, p.size / 3)) {
      float* w = body.data() + p.offset + i;
      const float keep = *w;
      const float h = 1e-2f;
      *w = keep + h;
      const double up = objective();
      *w = keep - h;
      const double down = objective();
      *w = keep;
      const double numeric = (up - down) / (2.0 * h), analytic = body.grad()[p.offset + i];
      INFO(p.name << " element " << i);
      CHECK(std::abs(numeric - analytic) <= 2e-3 + 3e-2 * std::abs(numeric));
      ++checked;
    }
  }
  CHECK(checked > 30);
}

TEST_CASE("The preference model reaches 95 percent accuracy on held-out pairs of a learnable rule", "[train][preference]") {
  cai::preference_model<cai::cpu_t> pm(tiny_gpt2(21), 1);
  cai::full_parameters body(pm.body());
  cai::preference_options o;
  o.train.batch_size = 16;
  o.train.max_steps = 120;
  o.train.seed = 2;
  cai::preference_trainer trainer(pm, body, cai::adamw{.learning_rate = 3e-3f, .weight_decay = 0.0f}, o);
  const auto train = marker_pairs(512, 1, true);
  const auto held_out = marker_pairs(200, 999, false);
  const auto before = trainer.evaluate(held_out);
  const auto result = trainer.train(train, cai::quiet{});
  const auto after = trainer.evaluate(held_out);
  INFO("accuracy before " << before.accuracy << " after " << after.accuracy << " loss " << after.loss);
  CHECK(result.steps == 120);
  CHECK(after.accuracy >= 0.95);
  CHECK(after.loss < before.loss);
  // calibration data covers every pair
  std::size_t counted = 0;
  for (const auto& bin : after.bins) counted += bin.count;
  CHECK(counted == held_out.size());
  CHECK(after.calibration_error >= 0.0);
  CHECK(after.calibration_error <= 1.0);

  // save and load keep the rewards
  scratch_dir dir("pm");
  pm.save(dir.path);
  auto loaded = cai::preference_model<cai::cpu_t>::load(dir.path);
  const std::vector<std::vector<std::int32_t>> probe{held_out[0].chosen, held_out[1].rejected};
  const auto a = pm.rewards(probe), b = loaded.rewards(probe);
  CHECK(a == b);
}

TEST_CASE("The preference trainer refuses labels outside the unit interval", "[train][preference]") {
  cai::preference_model<cai::cpu_t> pm(tiny_gpt2());
  cai::full_parameters body(pm.body());
  cai::preference_trainer trainer(pm, body, cai::adamw{}, {});
  std::vector<cai::preference_pair> bad{{{1, 2}, {1, 3}, 1.5}};
  CHECK_THROWS_WITH(trainer.train(bad, cai::quiet{}), Catch::Matchers::ContainsSubstring("pair 0 has p_chosen"));
}

TEST_CASE("A preference model trains with LoRA on its body", "[train][preference][lora]") {
  cai::preference_model<cai::cpu_t> pm(tiny_llama(4), 1);
  cai::lora_adapters lora(pm.body(), {.rank = 4, .alpha = 8.0, .targets = {"q_proj", "v_proj", "up_proj"}});
  cai::preference_options o;
  o.train.batch_size = 16;
  o.train.max_steps = 40;
  cai::preference_trainer trainer(pm, lora, cai::adamw{.learning_rate = 1e-2f, .weight_decay = 0.0f}, o);
  const auto held_out = marker_pairs(100, 77, false);
  const auto before = trainer.evaluate(held_out);
  trainer.train(marker_pairs(256, 5, true), cai::quiet{});
  const auto after = trainer.evaluate(held_out);
  INFO("loss before " << before.loss << " after " << after.loss);
  CHECK(after.loss < before.loss);
}
