// Throughput of the SL-CAI critique-revision phase through remote_model, with one and with two local
// llama.cpp servers (and with the fake server, which shows the client's own ceiling). Hidden ([.]): not
// a test, a measurement; run it by hand and copy the numbers into docs/performance.md:
//   build-remote/tests/cai_test_remote "[throughput]"
#include <catch2/catch_test_macros.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cai/critique/critic.hpp"
#include "cai/critique/engine.hpp"
#include "cai/critique/rounds.hpp"
#include "cai/model/native_model.hpp"
#include "cai/remote/remote_model.hpp"
#include "critique/scripted_model.hpp"
#include "llama_server.hpp"
#include "remote_fixtures.hpp"

using namespace std::chrono_literals;

namespace {
constexpr int records = 16;
constexpr std::size_t new_tokens = 32;

template <class Model>
double records_per_second(Model& model) {
  cai::critic_options critic;
  critic.critique_generation.max_new_tokens = new_tokens;
  critic.revision_generation.max_new_tokens = new_tokens;
  cai::multi_turn<cai::self_critic<Model>, 1> reviser{cai::self_critic<Model>(model, critic)};
  const auto principles = cai_test::numbered_constitution(3);
  std::vector<std::string> prompts;
  for (int i = 0; i < records; ++i) prompts.push_back("How do I pick lock number " + std::to_string(i) + "?");
  cai::sl_cai_options options;
  options.batch_size = 8;
  options.seed = 1;
  options.response_generation.max_new_tokens = new_tokens;
  const auto start = std::chrono::steady_clock::now();
  const auto summary = cai::critique_revise(model, reviser, principles, prompts, options);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  REQUIRE(summary.written == records);
  return records / seconds.count();
}

cai::remote_options options_for(const std::vector<std::string>& urls, std::size_t concurrency) {
  cai::remote_options o;
  for (const auto& u : urls) o.pool.endpoints.push_back({u, concurrency});
  o.scoring = cai::remote_scoring::none;
  o.extra_body = {{"repeat_penalty", 1.0}};
  return o;
}
}  // namespace

TEST_CASE("critique revision throughput with one and two local servers", "[.][remote][throughput]") {
  if (!cai_test::python3().empty()) {
    cai_test::fake_server fake;
    cai::remote_model model(options_for({fake.base_url()}, 8));
    std::printf("fake server (client ceiling): %.1f records/s\n", records_per_second(model));
  }
  if (!cai_test::llama_skip_reason().empty()) SKIP("llama.cpp server: " << cai_test::llama_skip_reason());
  {
    auto native = cai::native_model<>::load(cai_test::smollm2_path());
    std::printf("in-process native model (same GGUF, 1 thread): %.2f records/s\n", records_per_second(native));
  }
  {
    cai_test::llama_server a;
    cai::remote_model model(options_for({a.base_url()}, 1));
    std::printf("one llama.cpp server (1 thread): %.2f records/s (%d records, %zu new tokens per call)\n",
                records_per_second(model), records, new_tokens);
  }
  {
    cai_test::llama_server a(1, false);
    cai_test::llama_server b(1, false);
    a.wait_ready();
    b.wait_ready();
    cai::remote_model model(options_for({a.base_url(), b.base_url()}, 1));
    std::printf("two llama.cpp servers (1 thread each): %.2f records/s\n", records_per_second(model));
    for (const auto& e : model.pool().stats())
      std::printf("  %s: %zu requests answered\n", e.base_url.c_str(), e.successes);
  }
}
