// sft_trainer, the parameter sets (full and LoRA), checkpoints and faults.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "cai/train/adamw.hpp"
#include "cai/train/sft.hpp"
#include "cai/train/sgd.hpp"
#include "support.hpp"

using cai_test::scratch_dir;
using cai_test::tiny_gpt2;
using cai_test::tiny_llama;

namespace {

// Eight prompt/response pairs over a 32-token vocabulary: token 1 starts each prompt; the response is a
// fixed function of the prompt (reversed and shifted), so that it can be learned exactly.
std::vector<cai::sft_sequence> toy_data(std::size_t n = 8) {
  std::vector<cai::sft_sequence> data;
  cai::rng g(11);
  for (std::size_t i = 0; i < n; ++i) {
    cai::sft_sequence e;
    e.prompt = {1};
    for (int k = 0; k < 4; ++k) e.prompt.push_back(static_cast<std::int32_t>(4 + g.uniform_index(12)));
    e.prompt.push_back(2);
    for (std::size_t k = 5; k-- > 1;) e.response.push_back(e.prompt[k] + 12);
    e.response.push_back(3);
    data.push_back(e);
  }
  return data;
}

cai::sft_options options(std::size_t steps, std::size_t batch = 8, std::size_t accumulation = 1) {
  cai::sft_options o;
  o.train.batch_size = batch;
  o.train.gradient_accumulation = accumulation;
  o.train.max_steps = steps;
  o.train.seed = 5;
  return o;
}

}  // namespace

TEST_CASE("SFT with AdamW overfits a small dataset to a loss below 0.05", "[train][sft]") {
  auto model = tiny_gpt2();
  cai::full_parameters params(model);
  cai::sft_trainer trainer(params, cai::adamw{.learning_rate = 1e-2f, .weight_decay = 0.0f}, options(150));
  const auto data = toy_data();
  const auto result = trainer.train(data, cai::quiet{});
  CHECK(result.steps == 150);
  CHECK(result.loss < 0.05);
  // the trained model predicts every response token of the training set
  const auto rows = trainer.rows(data);
  for (const auto& r : rows) {
    const auto logits = model.forward(r.ids, 1, r.ids.size());
    for (std::size_t t = 0; t < r.ids.size(); ++t) {
      if (r.targets[t] < 0) continue;
      const float* row = logits.data() + t * 32;
      CHECK(std::max_element(row, row + 32) - row == r.targets[t]);
    }
  }
}

TEST_CASE("SFT learns only the response tokens", "[train][sft]") {
  auto model = tiny_llama();
  cai::full_parameters params(model);
  cai::sft_trainer trainer(params, cai::adamw{}, options(1));
  const auto data = toy_data(2);
  const auto rows = trainer.rows(data);
  REQUIRE(rows.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& e = data[i];
    const auto& r = rows[i];
    REQUIRE(r.ids.size() == e.prompt.size() + e.response.size());
    for (std::size_t t = 0; t + 1 < e.prompt.size(); ++t) CHECK(r.targets[t] == -1);
    for (std::size_t t = e.prompt.size() - 1; t + 1 < r.ids.size(); ++t) CHECK(r.targets[t] == r.ids[t + 1]);
    CHECK(r.targets.back() == -1);
  }
}

TEST_CASE("Packed SFT rows never learn across a sequence boundary", "[train][sft]") {
  auto model = tiny_gpt2();
  cai::full_parameters params(model);
  auto o = options(1);
  o.packing = true;
  o.max_length = 16;
  cai::sft_trainer trainer(params, cai::adamw{}, o);
  const auto data = toy_data(6);  // 6 sequences of 11 tokens: 66 tokens, rows of 16
  const auto rows = trainer.rows(data);
  REQUIRE(rows.size() == 5);
  std::size_t learned = 0;
  for (const auto& r : rows) {
    CHECK(r.ids.size() <= 16);
    for (std::size_t t = 0; t < r.ids.size(); ++t) {
      if (r.targets[t] < 0) continue;
      ++learned;
      REQUIRE(t + 1 < r.ids.size());
      CHECK(r.targets[t] == r.ids[t + 1]);
      CHECK(r.ids[t] != 3);  // the end token of a sequence never predicts the next sequence's start
    }
  }
  // each sequence has 5 learned targets, less those cut by a row boundary
  CHECK(learned <= 6 * 5);
  CHECK(learned >= 6 * 5 - 4);
  const auto result = trainer.train(data, cai::quiet{});
  CHECK(std::isfinite(result.loss));
}

TEST_CASE("Gradient accumulation gives the step of the whole batch", "[train][sft]") {
  const auto data = toy_data();
  auto a = tiny_gpt2(), b = tiny_gpt2();
  cai::full_parameters pa(a), pb(b);
  cai::sft_trainer ta(pa, cai::sgd{.learning_rate = 0.1f}, options(3, 8, 1));
  cai::sft_trainer tb(pb, cai::sgd{.learning_rate = 0.1f}, options(3, 2, 4));
  const auto ra = ta.train(data, cai::quiet{});
  const auto rb = tb.train(data, cai::quiet{});
  CHECK(std::abs(ra.loss - rb.loss) < 1e-5);
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.num_parameters(); ++i) {
    diff += std::pow(double(a.data()[i]) - b.data()[i], 2);
    norm += std::pow(double(a.data()[i]), 2);
  }
  CHECK(std::sqrt(diff / norm) < 1e-5);
}

TEST_CASE("A resumed SFT run gives the uninterrupted run's weights bit for bit", "[train][sft][checkpoint]") {
  const auto data = toy_data();
  scratch_dir dir("sft-resume");
  auto o = options(6, 4, 1);
  o.train.checkpoint_dir = dir.path / "ckpt";
  o.train.checkpoint_every = 1;

  auto straight = tiny_llama();
  {
    cai::full_parameters p(straight);
    auto plain = o;
    plain.train.checkpoint_dir.clear();
    cai::sft_trainer t(p, cai::adamw{.learning_rate = 3e-3f}, plain);
    t.train(data, cai::quiet{});
  }
  // the interrupted run: a callback stops it after 3 steps (as a crash would, after the checkpoint)
  {
    auto model = tiny_llama();
    cai::full_parameters p(model);
    cai::sft_trainer t(p, cai::adamw{.learning_rate = 3e-3f}, o);
    struct stop_at_3 {
      bool on_step(const cai::train_progress& pr) const { return pr.step == 3; }
    };
    const auto r = t.train(data, stop_at_3{});
    CHECK(r.stopped_early);
    CHECK(r.steps == 3);
  }
  auto resumed = tiny_llama(99);  // other initial weights: everything must come from the checkpoint
  cai::full_parameters p(resumed);
  cai::sft_trainer t(p, cai::adamw{.learning_rate = 3e-3f}, o);
  const auto r = t.train(data, cai::quiet{});
  CHECK(r.resumed);
  CHECK(r.steps == 6);
  CHECK(r.run_steps == 3);
  REQUIRE(resumed.num_parameters() == straight.num_parameters());
  CHECK(std::memcmp(resumed.data(), straight.data(), sizeof(float) * straight.num_parameters()) == 0);

  // running again after the end does nothing
  const auto again = t.train(data, cai::quiet{});
  CHECK(again.run_steps == 0);
}

TEST_CASE("A NaN in training stops with the step and the tensor and keeps the last checkpoint", "[train][sft][faults]") {
  const auto data = toy_data();
  scratch_dir dir("sft-nan");
  auto model = tiny_gpt2();
  cai::full_parameters params(model);
  auto o = options(10, 4, 1);
  o.train.checkpoint_dir = dir.path / "ckpt";
  o.train.checkpoint_every = 1;
  cai::sft_trainer trainer(params, cai::adamw{.learning_rate = 1e-3f}, o);
  std::vector<float> after_step_2;
  // after step 2 a weight becomes NaN: step 3's loss is NaN
  struct poison {
    cai::transformer<cai::cpu_t, float>* m;
    std::vector<float>* saved;
    void on_step(const cai::train_progress& p) {
      if (p.step == 2) {
        saved->assign(m->data(), m->data() + m->num_parameters());
        m->data(m->parameter("h.1.mlp.c_fc.weight"))[5] = std::numeric_limits<float>::quiet_NaN();
      }
    }
  };
  try {
    trainer.train(data, poison{&model, &after_step_2});
    FAIL("no error");
  } catch (const cai::numeric_error& e) {
    CHECK(e.step() == 3);
    CHECK(e.phase() == "sft");
    CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("sft step 3") &&
                                          Catch::Matchers::ContainsSubstring("NaN"));
  }
  const auto c = cai::checkpoint::load(dir.path / "ckpt");
  REQUIRE(c.has_value());
  CHECK(c->meta["step"] == 2);
  const auto& values = c->tensor("values", model.num_parameters());
  CHECK(std::memcmp(values.data(), after_step_2.data(), sizeof(float) * values.size()) == 0);
}

TEST_CASE("A non-finite gradient is reported with the tensor that holds it", "[train][faults]") {
  auto model = tiny_gpt2();
  cai::full_parameters params(model);
  cai::optimizer_step<cai::full_parameters<cai::cpu_t>, cai::adamw> step(params, cai::adamw{}, {}, 1.0);
  step.zero_grad();
  const auto& p = model.parameter("h.0.attn.c_proj.weight");
  model.grad(p)[3] = std::numeric_limits<float>::infinity();
  const std::vector<float> before(model.data(), model.data() + model.num_parameters());
  try {
    step.apply("dpo", 7);
    FAIL("no error");
  } catch (const cai::numeric_error& e) {
    CHECK(std::string(e.what()) == "dpo step 7: the gradient of h.0.attn.c_proj.weight holds an infinity (element " +
                                       std::to_string(p.offset + 3) + ")");
    CHECK(e.tensor() == "the gradient of h.0.attn.c_proj.weight");
  }
  CHECK(std::memcmp(before.data(), model.data(), sizeof(float) * before.size()) == 0);
}

TEST_CASE("LoRA trains only the adapters and starts equal to the base", "[train][lora]") {
  const auto data = toy_data();
  auto model = tiny_llama();
  {  // a base that has begun to learn the task (a random model's frozen head and norms cannot be adapted)
    cai::full_parameters full(model);
    cai::sft_trainer pre(full, cai::adamw{.learning_rate = 1e-2f, .weight_decay = 0.0f}, options(6));
    pre.train(data, cai::quiet{});
  }
  const std::vector<float> base(model.data(), model.data() + model.num_parameters());
  const auto base_model = model;
  // the output head adapted too: a tiny model's frozen head would bound what the adapters can reach
  cai::lora_adapters lora(model, {.rank = 4, .alpha = 8.0, .targets = {"q_proj", "v_proj", "lm_head"}, .seed = 1});
  CHECK(lora.adapters().size() == 5);  // 2 modules in each of 2 layers, and the head
  lora.before_forward();
  CHECK(std::memcmp(base.data(), model.data(), sizeof(float) * base.size()) == 0);  // B = 0

  auto o = options(100);
  cai::sft_trainer trainer(lora, cai::adamw{.learning_rate = 1e-2f, .weight_decay = 0.0f}, o);
  double initial = 0;
  for (const auto& r : trainer.rows(data)) initial += model.forward_loss(r.ids, r.targets, 1, r.ids.size()) / 8.0;
  const auto first = trainer.train(data, cai::quiet{});
  // the frozen weights are unchanged; the adapted ones moved
  for (const auto& p : model.parameters()) {
    const bool adapted = p.name.ends_with("q_proj.weight") || p.name.ends_with("v_proj.weight") ||
                         p.name == "lm_head.weight";
    const bool same = std::memcmp(base.data() + p.offset, model.data() + p.offset, sizeof(float) * p.size) == 0;
    INFO(p.name);
    CHECK(same != adapted);
  }
  INFO("initial loss " << initial << " final " << first.loss);
  CHECK(first.loss < 0.1 * initial);

  // saved and loaded adapters reproduce the adapted weights on a fresh base
  scratch_dir dir("lora");
  lora.save(dir.path);
  CHECK(std::filesystem::exists(dir.path / "adapter_config.json"));
  auto again = base_model;
  cai::lora_adapters loaded(again, {.rank = 4, .alpha = 8.0, .targets = {"q_proj", "v_proj", "lm_head"}, .seed = 2});
  loaded.load(dir.path);
  loaded.merge();
  CHECK(std::memcmp(again.data(), model.data(), sizeof(float) * base.size()) == 0);
}

TEST_CASE("LoRA gradients match finite differences of the loss", "[train][lora]") {
  auto model = tiny_gpt2(3);
  cai::lora_adapters lora(model, {.rank = 2, .alpha = 4.0, .targets = {"c_attn"}, .seed = 4});
  cai::rng g(8);
  for (auto& v : lora.values()) v = static_cast<float>(g.uniform_real() - 0.5) * 0.5f;
  const std::vector<std::int32_t> ids{1, 5, 9, 3, 7, 2, 8, 4}, targets{5, 9, 3, 7, 2, 8, 4, -1};
  auto loss = [&] {
    lora.before_forward();
    return static_cast<double>(model.forward_loss(ids, targets, 1, ids.size()));
  };
  lora.zero_grad();
  loss();
  model.backward_loss();
  lora.after_backward();
  const std::vector<float> analytic(lora.gradients().begin(), lora.gradients().end());
  std::size_t checked = 0;
  for (std::size_t i = 0; i < lora.values().size(); i += 17) {
    const float keep = lora.values()[i];
    const float h = 1e-2f;
    lora.values()[i] = keep + h;
    const double up = loss();
    lora.values()[i] = keep - h;
    const double down = loss();
    lora.values()[i] = keep;
    const double numeric = (up - down) / (2.0 * h);
    INFO("element " << i << " (" << lora.tensor_name(i) << ")");
    CHECK(std::abs(numeric - analytic[i]) <= 2e-3 + 2e-2 * std::abs(numeric));
    ++checked;
  }
  CHECK(checked > 20);
}

TEST_CASE("LoRA refuses targets that match nothing", "[train][lora]") {
  auto model = tiny_gpt2();
  CHECK_THROWS_WITH(cai::lora_adapters(model, {.targets = {"q_proj"}}),
                    Catch::Matchers::ContainsSubstring("no weight of this gpt2 model matches"));
}

TEST_CASE("The progress bar writes plain lines when not on a terminal", "[train][callbacks]") {
  cai::train_progress p;
  p.phase = "sft";
  p.step = 10;
  p.total_steps = 20;
  p.loss = 1.5;
  p.tokens = 5000;
  p.elapsed_seconds = 2.0;
  p.metrics["accuracy"] = 0.75;
  const auto line = cai::progress_bar::numbers(p);
  CHECK(line == "step 10/20 loss 1.5000 accuracy 0.75 2500 tok/s 0:02 left");
}
