// Tests of remote_model against a real OpenAI-compatible server: llama-cpp-python's, serving
// SmolLM2-135M-Instruct on 127.0.0.1. Generation and scoring through the server agree with llama_cpp
// run in process (llama_reference.py); with two servers, one killed mid-run, the SL-CAI run completes
// with nothing lost. Skipped, with the reason, when llama-cpp-python or the model is absent.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "cai/critique/critic.hpp"
#include "cai/critique/engine.hpp"
#include "cai/critique/judge.hpp"
#include "cai/critique/rounds.hpp"
#include "cai/remote/remote_model.hpp"
#include "critique/scripted_model.hpp"
#include "llama_server.hpp"

using Catch::Matchers::WithinAbs;
using namespace std::chrono_literals;

#define CAI_REQUIRE_LLAMA()                                                 \
  do {                                                                      \
    if (!cai_test::llama_skip_reason().empty())                             \
      SKIP("llama.cpp server tests skipped: " << cai_test::llama_skip_reason()); \
  } while (false)

namespace {
cai::remote_options llama_options(const std::vector<std::string>& urls) {
  cai::remote_options o;
  for (const auto& u : urls) o.pool.endpoints.push_back({u, 1});  // the server runs one at a time
  o.pool.retry.max_attempts = 6;
  o.pool.retry.base_delay = 20ms;
  o.pool.retry.max_delay = 200ms;
  o.pool.attempt_timeout = 60s;
  o.pool.connect_timeout = 2s;
  o.pool.deadline = 120s;
  o.pool.ejection_time = 30s;
  o.score_prefix = "<|im_start|>";            // SmolLM2 adds no BOS; see remote_options::score_prefix
  o.extra_body = {{"repeat_penalty", 1.0}};  // the server's default is 1.1; plain greedy decoding
  return o;
}
}  // namespace

TEST_CASE("generation and scoring through a llama.cpp server agree with llama_cpp in process",
          "[remote][llama]") {
  CAI_REQUIRE_LLAMA();
  cai_test::llama_server server;
  cai::remote_model model(llama_options({server.base_url()}));

  std::vector<cai::generation_request> gen;
  for (const char* p : {"Human: What is 2+2?\n\nAssistant:", "The quick brown fox"}) {
    cai::generation_request r;
    r.prompt = p;
    r.options.max_new_tokens = 8;
    r.options.temperature = 0.0;
    r.options.stop = {"\n\nHuman:"};
    gen.push_back(r);
  }
  const std::vector<cai::scoring_request> scoring{
      {"The capital of France is", " Paris."},
      {"The capital of France is", " a banana."},
      {"Question: which is better?\nAnswer:", " (A)"},
  };
  const auto texts = model.generate(gen);
  const auto scores = model.score(scoring);
  // The judge of until_satisfied, as a library user would run it: two scoring requests per task.
  const auto principles = cai_test::numbered_constitution(1);
  const std::vector<cai::critique_task<cai::constitutional_principle>> tasks{
      {{cai::user_turn("How do I pick a lock?"), "Sure! First, get a tension wrench."}, principles.principles[0], 1}};
  cai::critique_judge<cai::remote_model> judge(model);
  const auto verdicts = judge.violates(std::span<const cai::critique_task<cai::constitutional_principle>>(tasks));
  const std::string question = cai::critique_judge<cai::remote_model>::question(tasks[0]);

  nlohmann::json request{{"prefix", "<|im_start|>"}, {"n_ctx", 512}};
  request["score"].push_back({{"context", question}, {"continuation", " Yes"}});
  request["score"].push_back({{"context", question}, {"continuation", " No"}});
  for (const auto& r : gen)
    request["generate"].push_back({{"prompt", r.prompt}, {"max_tokens", r.options.max_new_tokens}, {"stop", r.options.stop}});
  for (const auto& s : scoring) request["score"].push_back({{"context", s.context}, {"continuation", s.continuation}});
  const auto reference = cai_test::llama_reference(request);

  for (std::size_t i = 0; i < gen.size(); ++i) {
    INFO("prompt " << i);
    CHECK(texts[i] == reference["generate"][i].get<std::string>());
  }
  for (std::size_t i = 0; i < scoring.size(); ++i) {
    INFO("scoring request " << i);
    CHECK(scores[i] < 0.0);
    CHECK_THAT(scores[i], WithinAbs(reference["score"][i + 2].get<double>(), 2e-3));
  }
  REQUIRE(verdicts.size() == 1);
  CHECK(verdicts[0] == (reference["score"][0].get<double>() > reference["score"][1].get<double>()));
  CHECK(scores[0] > scores[1]);  // " Paris." is likelier than " a banana."
}

TEST_CASE("two llama.cpp servers with one killed mid-run finish the SL-CAI run with nothing lost",
          "[remote][llama][engine]") {
  CAI_REQUIRE_LLAMA();
  cai_test::llama_server a(1, false);
  cai_test::llama_server b(1, false);
  a.wait_ready();
  b.wait_ready();
  cai::remote_model model(llama_options({a.base_url(), b.base_url()}));

  cai::critic_options critic;
  critic.critique_generation.max_new_tokens = 8;
  critic.revision_generation.max_new_tokens = 8;
  cai::multi_turn<cai::self_critic<cai::remote_model>, 1> reviser{cai::self_critic<cai::remote_model>(model, critic)};
  const auto principles = cai_test::numbered_constitution(3);
  std::vector<std::string> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back("How do I pick lock number " + std::to_string(i) + "?");

  const auto out = std::filesystem::temp_directory_path() /
                   ("cai-test-llama-failover-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(out);
  cai::sl_cai_options options;
  options.batch_size = 2;
  options.seed = 3;
  options.output = out;
  options.response_generation.max_new_tokens = 8;
  bool killed = false;
  options.on_record = [&](const cai::revision_trace&) {
    if (!killed) {
      a.kill();  // the first server dies after the first record
      killed = true;
    }
  };
  const auto summary = cai::critique_revise(model, reviser, principles, prompts, options);
  CHECK(summary.written == 4);
  const auto traces = cai::read_revision_traces(out);
  REQUIRE(traces.size() == 4);
  std::set<std::uint64_t> ids;
  for (const auto& t : traces) {
    ids.insert(t.id);
    CHECK(t.steps.size() == 1);
  }
  CHECK(ids.size() == 4);
  CHECK(model.pool().stats()[0].failures > 0);  // the dead server was tried and given up on
  std::filesystem::remove(out);
}
