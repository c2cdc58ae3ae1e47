// Tests of cai/model/native_model.hpp: sampling, batched generation whose text per request does not
// depend on the batch, stop sequences, scoring against a full forward pass, and the real SmolLM2 model
// answering a chat prompt.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cai/model/model_cache.hpp"
#include "cai/model/bpe_trainer.hpp"
#include "cai/model/native_model.hpp"

namespace {
using model_t = cai::native_model<cai::cpu_t>;

model_t tiny_model() {
  std::vector<std::string> corpus{"Human: hello there\n\nAssistant: hello, how can I help?",
                                  "Human: what is two plus two\n\nAssistant: four", "<|endoftext|>"};
  cai::bpe_trainer_options o;
  o.vocab_size = 300;
  o.special_tokens = {"<|endoftext|>"};
  auto tok = cai::train_bpe(corpus, o);
  auto config = cai::transformer_config::llama(tok.vocab_size(), 64, 16, 2, 4, 2, 24);
  cai::transformer<cai::cpu_t, float> t(config);
  t.init_random(11);
  for (std::size_t i = 0; i < t.num_parameters(); ++i) t.data()[i] *= 20.0f;  // a peaky, non-uniform model
  return model_t(std::move(t), std::move(tok));
}

cai::generation_request request(std::string prompt, double temperature, std::uint64_t seed, std::size_t n = 12) {
  cai::generation_request r;
  r.prompt = std::move(prompt);
  r.options.temperature = temperature;
  r.options.seed = seed;
  r.options.max_new_tokens = n;
  return r;
}

std::filesystem::path smollm2_path() { return cai::smollm2_gguf_path(); }
}  // namespace

TEST_CASE("native_model models language_model and scoring_model", "[model][native]") {
  STATIC_REQUIRE(cai::language_model<model_t>);
  STATIC_REQUIRE(cai::scoring_model<model_t>);
}

TEST_CASE("sample_token is greedy at temperature zero and follows top-k and top-p", "[model][native][sampling]") {
  std::vector<float> logits{0.1f, 2.0f, -1.0f, 1.9f};
  cai::rng g(1);
  cai::generation_options o;
  o.temperature = 0.0;
  CHECK(cai::sample_token(logits, o, g) == 1);
  o.temperature = 1.0;
  o.top_k = 1;
  for (int i = 0; i < 20; ++i) CHECK(cai::sample_token(logits, o, g) == 1);
  o.top_k = 2;
  int ones = 0, threes = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto t = cai::sample_token(logits, o, g);
    REQUIRE((t == 1 || t == 3));
    (t == 1 ? ones : threes)++;
  }
  CHECK(ones > threes);  // exp(0.1) = 1.105 times as likely
  CHECK(threes > 700);
  o.top_k = 0;
  o.top_p = 0.3;  // the top token alone holds more than 30%
  for (int i = 0; i < 20; ++i) CHECK(cai::sample_token(logits, o, g) == 1);
}

TEST_CASE("sampling by temperature alone draws each token with its softmax probability", "[model][native][sampling]") {
  std::vector<float> logits{0.5f, 2.0f, -1.0f, 1.0f, 2.0f};
  for (const double temperature : {1.0, 0.5}) {
    cai::generation_options o;
    o.temperature = temperature;
    std::vector<double> p(logits.size());
    double total = 0;
    for (std::size_t i = 0; i < p.size(); ++i) total += (p[i] = std::exp(logits[i] / temperature));
    cai::rng g(5);
    std::vector<int> counts(logits.size(), 0);
    const int draws = 20000;
    for (int i = 0; i < draws; ++i) counts[static_cast<std::size_t>(cai::sample_token(logits, o, g))]++;
    for (std::size_t i = 0; i < p.size(); ++i) {
      INFO("temperature " << temperature << " token " << i);
      CHECK_THAT(counts[i] / static_cast<double>(draws), Catch::Matchers::WithinAbs(p[i] / total, 0.015));
    }
  }
  // greedy takes the first of equal largest logits
  cai::generation_options greedy;
  greedy.temperature = 0.0;
  cai::rng g(1);
  CHECK(cai::sample_token(logits, greedy, g) == 1);
}

TEST_CASE("a request gives the same text alone or in a batch", "[model][native][generate]") {
  auto model = tiny_model();
  std::vector<cai::generation_request> batch{request("Human: hello", 0.0, 1), request("Human: what is", 1.0, 7),
                                             request("Assistant:", 0.8, 9, 5)};
  const auto together = model.generate(batch);
  REQUIRE(together.size() == 3);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto alone = model.generate(std::span<const cai::generation_request>(&batch[i], 1));
    CHECK(alone[0] == together[i]);
  }
  // the same seed gives the same sample; the text is not empty for this peaky model
  CHECK(model.generate(std::span<const cai::generation_request>(&batch[1], 1))[0] == together[1]);
  CHECK_FALSE(together[0].empty());
}

TEST_CASE("generation stops before a stop sequence and at max_new_tokens", "[model][native][generate]") {
  auto model = tiny_model();
  auto r = request("Human: hello", 0.0, 1, 20);
  const auto full = model.generate(std::span<const cai::generation_request>(&r, 1))[0];
  REQUIRE(full.size() > 2);
  const std::string stop = full.substr(full.size() / 2, 2);
  r.options.stop = {stop};
  const auto cut = model.generate(std::span<const cai::generation_request>(&r, 1))[0];
  CHECK(cut == full.substr(0, full.find(stop)));
  r.options.stop.clear();
  r.options.max_new_tokens = 2;
  const auto ids = model.tokenizer().encode(model.generate(std::span<const cai::generation_request>(&r, 1))[0]);
  CHECK(ids.size() <= 2);
}

TEST_CASE("score equals the log-probabilities of a full forward pass and shares contexts", "[model][native][score]") {
  auto model = tiny_model();
  const std::string context = "Human: what is two plus two\n\nAssistant:";
  const std::vector<cai::scoring_request> requests{{context, " four"}, {context, " hello there"}, {"Human:", " hello"}};
  const auto scores = model.score(requests);
  REQUIRE(scores.size() == 3);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto ctx = model.tokenizer().encode(requests[i].context);
    const auto cont = model.tokenizer().encode(requests[i].continuation);
    std::vector<std::int32_t> all = ctx;
    all.insert(all.end(), cont.begin(), cont.end());
    const std::size_t V = model.model().config().vocab_size;
    const auto logits = model.model().forward(all, 1, all.size());
    double expected = 0;
    for (std::size_t t = 0; t < cont.size(); ++t) {
      const float* row = logits.data() + (ctx.size() - 1 + t) * V;
      double m = *std::max_element(row, row + V), sum = 0;
      for (std::size_t v = 0; v < V; ++v) sum += std::exp(row[v] - m);
      expected += row[cont[t]] - m - std::log(sum);
    }
    CHECK(scores[i] <= 0.0);
    CHECK_THAT(scores[i], Catch::Matchers::WithinAbs(expected, 1e-3));
  }
  // one request alone scores the same as in a group sharing its context
  const auto alone = model.score(std::span<const cai::scoring_request>(&requests[1], 1));
  CHECK_THAT(alone[0], Catch::Matchers::WithinAbs(scores[1], 1e-6));
}

TEST_CASE("SmolLM2 answers a chat prompt through the native model", "[model][native][smollm2]") {
  const auto path = smollm2_path();
  if (!std::filesystem::exists(path)) SKIP("SmolLM2 GGUF not found at " << path.string() << " (scripts/fetch-smollm2)");
  auto model = model_t::load(path);
  REQUIRE(model.chat_template().has_value());
  cai::generation_request r;
  r.messages = cai::user_turn("What is the capital of France? Answer in one sentence.");
  r.options.temperature = 0.0;
  r.options.max_new_tokens = 24;
  const auto answer = model.generate(std::span<const cai::generation_request>(&r, 1))[0];
  INFO(answer);
  CHECK_THAT(answer, Catch::Matchers::ContainsSubstring("Paris"));
  // scoring: the right answer is more likely than a wrong one
  const std::string context = model.prompt_text(r);
  const std::vector<cai::scoring_request> s{{context, "The capital of France is Paris."},
                                            {context, "The capital of France is Berlin."}};
  const auto lp = model.score(s);
  CHECK(lp[0] > lp[1]);
  // with 8-bit weights in the decode steps, the answer still names Paris
  model.options().decode = cai::decode_weights::q8_0;
  const auto answer_q8 = model.generate(std::span<const cai::generation_request>(&r, 1))[0];
  INFO(answer_q8);
  CHECK_THAT(answer_q8, Catch::Matchers::ContainsSubstring("Paris"));
  CHECK_FALSE(model.model().has_decoding_weights());  // the 8-bit copy lives for the call only
  model.options().decode = cai::decode_weights::fp32;
  CHECK(model.generate(std::span<const cai::generation_request>(&r, 1))[0] == answer);
}
