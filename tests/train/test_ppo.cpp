// ppo_trainer: PPO raises a programmatic reward while the KL to the reference stays bounded.
#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "cai/train/adamw.hpp"
#include "cai/train/ppo.hpp"
#include "support.hpp"

using cai_test::scratch_dir;
using cai_test::tiny_gpt2;

namespace {

std::vector<std::vector<std::int32_t>> prompts(std::size_t n) {
  std::vector<std::vector<std::int32_t>> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back({1, static_cast<std::int32_t>(4 + i % 24), 2});
  return out;
}

// The reward: the fraction of the response's tokens that are the target token 7.
struct target_frequency {
  std::vector<double> operator()(std::span<const std::vector<std::int32_t>>,
                                 std::span<const std::vector<std::int32_t>> responses) const {
    std::vector<double> out;
    for (const auto& r : responses)
      out.push_back(static_cast<double>(std::count(r.begin(), r.end(), 7)) / static_cast<double>(r.size()));
    return out;
  }
};

cai::ppo_options options(std::size_t iterations) {
  cai::ppo_options o;
  o.train.batch_size = 16;
  o.train.max_steps = iterations;
  o.train.seed = 3;
  o.sampling.max_new_tokens = 8;
  o.ppo_epochs = 2;
  o.minibatches = 2;
  o.kl_coef = 0.04;
  return o;
}

}  // namespace

TEST_CASE("sample_responses gives each prompt the same text whatever the batch", "[train][ppo]") {
  auto model = tiny_gpt2(4);
  const auto ps = prompts(4);
  cai::sampling_options s{.max_new_tokens = 6, .temperature = 1.0, .end_tokens = {3}};
  const std::vector<std::uint64_t> seeds{11, 12, 13, 14};
  const auto all = cai::sample_responses(model, std::span<const std::vector<std::int32_t>>(ps), s, seeds);
  const auto one = cai::sample_responses(model, std::span<const std::vector<std::int32_t>>(ps).subspan(2, 1), s,
                                         std::span<const std::uint64_t>(seeds).subspan(2, 1));
  REQUIRE(all.size() == 4);
  CHECK(one[0] == all[2]);
  for (const auto& r : all) {
    CHECK(!r.empty());
    CHECK(r.size() <= 6);
  }
}

TEST_CASE("PPO raises the frequency of a rewarded token while the KL stays bounded", "[train][ppo]") {
  auto policy = tiny_gpt2(4);
  auto reference = policy;
  cai::full_parameters params(policy);
  cai::ppo_trainer trainer(params, reference, cai::adamw{.learning_rate = 3e-3f, .weight_decay = 0.0f}, options(40));
  std::vector<double> scores, kls;
  struct record {
    std::vector<double>* scores;
    std::vector<double>* kls;
    void on_step(const cai::train_progress& p) {
      scores->push_back(p.metrics.at("score"));
      kls->push_back(p.metrics.at("kl"));
    }
  };
  const auto result = trainer.train(prompts(48), target_frequency{}, record{&scores, &kls});
  REQUIRE(scores.size() == 40);
  const double first = (scores[0] + scores[1] + scores[2]) / 3.0;
  const double last = (scores[37] + scores[38] + scores[39]) / 3.0;
  INFO("mean reward of the first 3 iterations " << first << " of the last 3 " << last << " final KL " << kls.back());
  CHECK(last >= first + 0.25);
  CHECK(kls.back() < 10.0);  // nats per response of at most 8 tokens
  CHECK(std::isfinite(result.loss));
}

TEST_CASE("A resumed PPO run repeats the uninterrupted run bit for bit", "[train][ppo][checkpoint]") {
  scratch_dir dir("ppo-resume");
  auto run = [&](bool interrupted) {
    auto policy = tiny_gpt2(5);
    auto reference = policy;
    cai::full_parameters params(policy);
    auto o = options(4);
    o.train.batch_size = 8;
    if (interrupted) {
      o.train.checkpoint_dir = dir.path / "ckpt";
      o.train.checkpoint_every = 1;
      cai::ppo_trainer first(params, reference, cai::adamw{.learning_rate = 3e-3f}, o);
      struct stop_at_2 {
        bool on_step(const cai::train_progress& p) const { return p.step == 2; }
      };
      first.train(prompts(16), target_frequency{}, stop_at_2{});
      auto fresh = tiny_gpt2(6);
      cai::full_parameters fp(fresh);
      cai::ppo_trainer again(fp, reference, cai::adamw{.learning_rate = 3e-3f}, o);
      const auto r = again.train(prompts(16), target_frequency{}, cai::quiet{});
      CHECK(r.resumed);
      CHECK(r.steps == 4);
      std::vector<float> w(fresh.data(), fresh.data() + fresh.num_parameters());
      w.insert(w.end(), again.value_head().begin(), again.value_head().end());
      return w;
    }
    cai::ppo_trainer t(params, reference, cai::adamw{.learning_rate = 3e-3f}, o);
    t.train(prompts(16), target_frequency{}, cai::quiet{});
    std::vector<float> w(policy.data(), policy.data() + policy.num_parameters());
    w.insert(w.end(), t.value_head().begin(), t.value_head().end());
    return w;
  };
  const auto straight = run(false), resumed = run(true);
  REQUIRE(straight.size() == resumed.size());
  CHECK(std::memcmp(straight.data(), resumed.data(), sizeof(float) * straight.size()) == 0);
}
