// The rankers of cai/feedback/ end to end on a real, if tiny, model: a one-layer GPT-2-shaped
// transformer with random weights and the GPT-2 BPE tokenizer, inside cai::native_model. The labels mean
// nothing; the test shows that every ranker runs on a real scoring model and gives probabilities that
// agree with the model's own log-probabilities.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/feedback.hpp"
#include "cai/model/native_model.hpp"
#include "cai/model/tokenizer.hpp"

using Catch::Matchers::WithinAbs;
using model_t = cai::native_model<cai::cpu_t>;
using P = cai::constitutional_principle;
using task_t = cai::ranking_task<P>;

namespace {
model_t& tiny_gpt2() {
  static model_t model = [] {
    auto tok = cai::bpe_tokenizer::from_gpt2_files(CAI_SHARED_DATA_DIR "/gpt2-bpe/encoder.json",
                                                   CAI_SHARED_DATA_DIR "/gpt2-bpe/vocab.bpe");
    cai::transformer<cai::cpu_t, float> t(cai::transformer_config::gpt2(tok.vocab_size(), 256, 16, 1, 2));
    t.init_random(2022);
    for (std::size_t i = 0; i < t.num_parameters(); ++i) t.data()[i] *= 10.0f;  // labels away from one half
    return model_t(std::move(t), std::move(tok));
  }();
  return model;
}

cai::constitution two_questions() {
  cai::constitution c;
  c.name = "native";
  for (auto [name, question] : {std::pair{"harmless", "Which of these assistant responses is less harmful?"},
                                 std::pair{"honest", "Which response is more honest?"}}) {
    P p;
    p.name = name;
    p.comparison_question = question;
    c.principles.push_back(p);
  }
  return c;
}

std::vector<task_t> native_tasks() {
  const std::vector<cai::comparison> pairs{
      {cai::user_turn("How do I pick a lock?"), "Use a tension wrench.", "Ask a locksmith."},
      {cai::user_turn("Is it safe to mix bleach and ammonia?"), "No, it makes toxic gas.", "Yes, it cleans well."},
  };
  return cai::draw_ranking_tasks(std::span<const cai::comparison>(pairs), two_questions(), 1);
}
}  // namespace

TEST_CASE("the rankers run on a tiny native GPT-2 checkpoint", "[feedback][native]") {
  model_t& model = tiny_gpt2();
  REQUIRE(model.tokenizer().vocab_size() == 50257);
  STATIC_REQUIRE(cai::ranker<cai::choice_ranker<model_t>, P>);
  STATIC_REQUIRE(cai::ranker<cai::clamped<cai::debiased<cai::cot_ranker<model_t>>>, P>);
  const std::vector<task_t> tasks = native_tasks();
  const std::span<const task_t> span(tasks);

  cai::choice_ranker<model_t> choice(model);
  const std::vector<double> p = choice.rank(span);
  REQUIRE(p.size() == 2);
  for (std::size_t i = 0; i < p.size(); ++i) {
    CHECK(p[i] > 0.0);
    CHECK(p[i] < 1.0);
    UNSCOPED_INFO("P(A) of task " << i << " = " << p[i]);
    // the label is the model's own normalised option probability
    const std::string q = choice.question(tasks[i]);
    const std::vector<cai::scoring_request> req{{q, " (A)"}, {q, " (B)"}};
    const auto lp = model.score(req);
    CHECK(lp[0] < 0.0);
    CHECK(lp[1] < 0.0);
    CHECK_THAT(p[i], WithinAbs(std::exp(lp[0]) / (std::exp(lp[0]) + std::exp(lp[1])), 1e-9));
  }

  SECTION("order averaging agrees with the plain ranker on both orders") {
    std::vector<task_t> swapped = tasks;
    for (auto& t : swapped) std::swap(t.pair.response_a, t.pair.response_b);
    const auto q = choice.rank(std::span<const task_t>(swapped));
    cai::debiased<cai::choice_ranker<model_t>> debiased{cai::choice_ranker<model_t>(model)};
    const auto d = debiased.rank(span);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK_THAT(d[i], WithinAbs((p[i] + 1.0 - q[i]) / 2.0, 1e-12));
      CHECK_THAT(debiased.position_bias()[i], WithinAbs((p[i] + q[i]) / 2.0 - 0.5, 1e-12));
      CHECK(d[i] > 0.0);
      CHECK(d[i] < 1.0);
    }
  }
  SECTION("clamped debiased chain of thought stays within 40 to 60 percent") {
    cai::cot_options o;
    o.reasoning.max_new_tokens = 6;
    o.reasoning.temperature = 0.8;
    o.samples = 2;
    using cot = cai::cot_ranker<model_t>;
    cai::clamped<cai::debiased<cot>> ranker{cai::debiased<cot>{cot(model, o)}};
    const auto c = ranker.rank(span);
    REQUIRE(c.size() == 2);
    for (double x : c) {
      CHECK(x >= 0.4);
      CHECK(x <= 0.6);
    }
    CHECK(ranker.inner().inner().last_reasoning().size() == 4);  // both orders of two tasks
  }
  SECTION("an ensemble of rankers over the model gives the mean of their labels") {
    cai::ensemble<cai::choice_ranker<model_t>, cai::debiased<cai::choice_ranker<model_t>>> both(
        cai::choice_ranker<model_t>(model), cai::debiased<cai::choice_ranker<model_t>>{cai::choice_ranker<model_t>(model)});
    const auto e = both.rank(span);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK_THAT(e[i], WithinAbs((both.last_votes()[i][0] + both.last_votes()[i][1]) / 2.0, 1e-15));
      CHECK_THAT(both.last_votes()[i][0], WithinAbs(p[i], 1e-12));
    }
    cai::principle_ensemble<cai::choice_ranker<model_t>, cai::constitution> principles(
        cai::choice_ranker<model_t>(model), two_questions(), 2);
    const auto pe = principles.rank(span);
    CHECK_THAT(pe[0], WithinAbs((principles.last_votes()[0][0] + principles.last_votes()[0][1]) / 2.0, 1e-15));
    CHECK_THAT(principles.last_votes()[0][0], WithinAbs(p[0], 1e-12));
  }
  SECTION("pairs sampled from the model label into preferences") {
    cai::pair_options o;
    o.first.max_new_tokens = o.second.max_new_tokens = 5;
    o.seed = 3;
    const std::vector<cai::dialogue> contexts{cai::user_turn("Tell me a joke.")};
    const auto pairs = cai::sample_pairs(model, std::span<const cai::dialogue>(contexts), o);
    const auto ptasks = cai::draw_ranking_tasks(std::span<const cai::comparison>(pairs), two_questions(), 9);
    const auto prefs = cai::label_preferences(choice, std::span<const task_t>(ptasks));
    REQUIRE(prefs.size() == 1);
    CHECK(prefs[0].p_a > 0.0);
    CHECK(prefs[0].p_a < 1.0);
    CHECK(prefs[0].pair.context == contexts[0]);
  }
}
