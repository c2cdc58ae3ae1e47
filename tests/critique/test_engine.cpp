// Tests of cai/critique/engine.hpp: the SL-CAI driver over a lazy range of prompts, batched, writing
// JSONL as it goes, and resuming after an interruption.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/take.hpp>
#include <range/v3/view/transform.hpp>

#include "cai/constitution/constitution.hpp"
#include "cai/constitution/io.hpp"
#include "cai/critique/critic.hpp"
#include "cai/critique/engine.hpp"
#include "cai/critique/rounds.hpp"
#include "scripted_model.hpp"

using cai_test::scripted_model;
using reviser_t = cai::multi_turn<cai::self_critic<scripted_model>, 2>;

namespace {
cai::constitution small_constitution() { return cai_test::numbered_constitution(4); }
std::vector<std::string> prompts(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("red-team prompt " + std::to_string(i));
  return v;
}
std::filesystem::path fresh_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-engine";
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::filesystem::remove(path);
  return path;
}
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("critique_revise answers then revises each prompt and writes one JSONL record per prompt",
          "[critique][engine]") {
  scripted_model model;
  reviser_t reviser{cai::self_critic<scripted_model>(model)};
  const auto c = small_constitution();
  const auto out = fresh_file("basic.jsonl");
  cai::sl_cai_options options;
  options.batch_size = 2;
  options.seed = 7;
  options.output = out;
  auto summary = cai::critique_revise(model, reviser, c, prompts(5), options);
  CHECK(summary.prompts == 5);
  CHECK(summary.written == 5);
  CHECK(summary.resumed == 0);

  auto traces = cai::read_revision_traces(out);
  REQUIRE(traces.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(traces[i].id == i);
    CHECK(traces[i].context == cai::user_turn("red-team prompt " + std::to_string(i)));
    // The initial response is cut before the injected "Human:" turn the scripted model appends.
    CHECK(traces[i].initial_response == "Sure! Here is how to red-team prompt " + std::to_string(i) + ".");
    REQUIRE(traces[i].steps.size() == 2);
    CHECK(traces[i].final_response() == "I won't help with that; here is a safer idea.");
  }
  // The initial prompt is the paper's transcript, ending with the assistant's turn marker.
  CHECK(model.seen[0].prompt == "\n\nHuman: red-team prompt 0\n\nAssistant:");
  // Each JSONL line carries the prompt, the initial response, each step and the final revision.
  std::istringstream lines(slurp(out));
  std::string first;
  std::getline(lines, first);
  auto j = nlohmann::json::parse(first);
  CHECK(j["prompt"] == "red-team prompt 0");
  CHECK(j["steps"].size() == 2);
  CHECK(j["steps"][0].contains("principle"));
  CHECK(j["steps"][0].contains("critique"));
  CHECK(j["final_revision"] == "I won't help with that; here is a safer idea.");
}

TEST_CASE("with a fixed seed the principles drawn are fixed and independent of batch size", "[critique][engine]") {
  const auto c = small_constitution();
  auto run = [&](std::size_t batch) {
    scripted_model model;
    reviser_t reviser{cai::self_critic<scripted_model>(model)};
    std::vector<std::string> names;
    cai::sl_cai_options options;
    options.batch_size = batch;
    options.seed = 2022;
    options.on_record = [&](const cai::revision_trace& t) {
      for (const auto& s : t.steps) names.push_back(s.principle);
    };
    (void)cai::critique_revise(model, reviser, c, prompts(4), options);
    return names;
  };
  const auto by_one = run(1);
  CHECK(by_one == run(3));
  CHECK(by_one == run(8));
  // Pinned: the draws of seed 2022 on every platform (records 0..3, rounds 0..1).
  const std::vector<std::string> pinned{"p0", "p0", "p1", "p2", "p3", "p0", "p1", "p1"};
  CHECK(by_one == pinned);
}

TEST_CASE("a killed run resumes without redoing or duplicating finished records", "[critique][engine][resume]") {
  const auto c = small_constitution();
  const auto out = fresh_file("resume.jsonl");
  const auto reference = fresh_file("reference.jsonl");
  cai::sl_cai_options options;
  options.batch_size = 2;
  options.seed = 3;

  {  // The uninterrupted run, for comparison.
    scripted_model model;
    reviser_t reviser{cai::self_critic<scripted_model>(model)};
    options.output = reference;
    (void)cai::critique_revise(model, reviser, c, prompts(5), options);
  }
  options.output = out;
  {  // Killed during the second batch: each batch makes 1 + 2 * 2 generate calls.
    scripted_model model;
    model.fail_after_calls = 7;
    reviser_t reviser{cai::self_critic<scripted_model>(model)};
    CHECK_THROWS_AS(cai::critique_revise(model, reviser, c, prompts(5), options), cai_test::killed);
    CHECK(cai::read_revision_traces(out).size() == 2);
  }
  {  // Resumed: only records 2..4 are generated.
    scripted_model model;
    reviser_t reviser{cai::self_critic<scripted_model>(model)};
    auto summary = cai::critique_revise(model, reviser, c, prompts(5), options);
    CHECK(summary.resumed == 2);
    CHECK(summary.written == 3);
    CHECK(model.seen.front().prompt == "\n\nHuman: red-team prompt 2\n\nAssistant:");
  }
  CHECK(slurp(out) == slurp(reference));
  {  // A third run has nothing left to do.
    scripted_model model;
    reviser_t reviser{cai::self_critic<scripted_model>(model)};
    auto summary = cai::critique_revise(model, reviser, c, prompts(5), options);
    CHECK(summary.written == 0);
    CHECK(model.calls == 0);
  }
}

TEST_CASE("a truncated last line left by a killed run is detected and redone", "[critique][engine][resume]") {
  const auto c = small_constitution();
  const auto out = fresh_file("truncated.jsonl");
  cai::sl_cai_options options;
  options.batch_size = 2;
  options.output = out;
  {
    scripted_model model;
    reviser_t reviser{cai::self_critic<scripted_model>(model)};
    (void)cai::critique_revise(model, reviser, c, prompts(3), options);
  }
  const std::string complete = slurp(out);
  // Cut the file in the middle of the last record, as a kill during a write would.
  const auto last_start = complete.rfind('\n', complete.size() - 2) + 1;
  std::filesystem::resize_file(out, last_start + 25);
  scripted_model model;
  reviser_t reviser{cai::self_critic<scripted_model>(model)};
  auto summary = cai::critique_revise(model, reviser, c, prompts(3), options);
  CHECK(summary.redid_truncated_line);
  CHECK(summary.resumed == 2);
  CHECK(summary.written == 1);
  CHECK(slurp(out) == complete);
}

TEST_CASE("resuming with different prompts is refused", "[critique][engine][resume]") {
  const auto c = small_constitution();
  const auto out = fresh_file("mismatch.jsonl");
  cai::sl_cai_options options;
  options.output = out;
  scripted_model model;
  reviser_t reviser{cai::self_critic<scripted_model>(model)};
  (void)cai::critique_revise(model, reviser, c, prompts(2), options);
  std::vector<std::string> other{"something else", "red-team prompt 1"};
  CHECK_THROWS_WITH(cai::critique_revise(model, reviser, c, other, options),
                    Catch::Matchers::ContainsSubstring("record 0 was written for a different prompt"));
}

TEST_CASE("a malformed line in the middle of the output is an error naming the line", "[critique][engine][resume]") {
  const auto out = fresh_file("malformed.jsonl");
  {
    std::ofstream f(out);
    f << "{\"id\": 0}\n{not json\n{\"id\": 2}\n";
  }
  scripted_model model;
  reviser_t reviser{cai::self_critic<scripted_model>(model)};
  cai::sl_cai_options options;
  options.output = out;
  CHECK_THROWS_AS(cai::critique_revise(model, reviser, small_constitution(), prompts(1), options), cai::parse_error);
  try {
    (void)cai::critique_revise(model, reviser, small_constitution(), prompts(1), options);
  } catch (const cai::parse_error& e) {
    CHECK(e.line() == 1);  // line 1 lacks the trace's fields
    CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring("malformed.jsonl:1"));
  }
}

TEST_CASE("prompts are pulled lazily from a range-v3 view one batch at a time", "[critique][engine][ranges]") {
  scripted_model model;
  reviser_t reviser{cai::self_critic<scripted_model>(model)};
  int pulled = 0;
  int written = 0;
  auto source = ranges::views::iota(0) | ranges::views::transform([&](int i) {
                  ++pulled;
                  return "prompt " + std::to_string(i);
                }) |
                ranges::views::take(7);
  cai::sl_cai_options options;
  options.batch_size = 3;
  options.on_record = [&](const cai::revision_trace&) {
    ++written;
    CHECK(pulled - written < 3);  // never more than one batch ahead of what is written
  };
  auto summary = cai::critique_revise(model, reviser, small_constitution(), source, options);
  CHECK(summary.written == 7);
  CHECK(pulled == 7);
}

TEST_CASE("the SL-CAI-k datasets are cut from the kept rounds", "[critique][engine]") {
  cai::revision_trace t{3, cai::user_turn("q"), "initial", {{"a", "c1", "r1"}, {"b", "c2", "r2"}}};
  std::vector<cai::revision_trace> traces{t};
  CHECK(cai::sl_cai_dataset(traces, 0)[0].response == "initial");
  CHECK(cai::sl_cai_dataset(traces, 1)[0].response == "r1");
  CHECK(cai::sl_cai_dataset(traces, 2)[0].response == "r2");
  CHECK(cai::sl_cai_dataset(traces, 9)[0].response == "r2");
}

TEST_CASE("a batch size of zero is a configuration error", "[critique][engine]") {
  scripted_model model;
  reviser_t reviser{cai::self_critic<scripted_model>(model)};
  cai::sl_cai_options options;
  options.batch_size = 0;
  CHECK_THROWS_AS(cai::critique_revise(model, reviser, small_constitution(), prompts(1), options), cai::config_error);
}

TEST_CASE("the shared llm-swarm constitution drives the loop with pinned principle draws", "[critique][engine][shared]") {
  const auto path = std::filesystem::path(CAI_SHARED_DATA_DIR) / "constitutions" / "llm-swarm-anthropic.json";
  if (!std::filesystem::exists(path)) SKIP("shared data not present");
  const cai::constitution c = cai::load_constitution(path);
  REQUIRE(c.principles.size() == 16);
  REQUIRE(c.few_shot.size() == 4);
  scripted_model model;
  cai::critic_options critic_options;
  critic_options.few_shot = c.few_shot;
  cai::multi_turn<cai::self_critic<scripted_model>, 4> reviser{cai::self_critic<scripted_model>(model, critic_options)};
  std::vector<std::string> names;
  cai::sl_cai_options options;
  options.seed = 2022;
  options.on_record = [&](const cai::revision_trace& t) {
    for (const auto& s : t.steps) names.push_back(s.principle);
  };
  (void)cai::critique_revise(model, reviser, c, prompts(2), options);
  // Pinned: seed 2022, records 0..1, rounds 0..3 (the same on every platform: cai::rng, not <random>).
  const std::vector<std::string> pinned{"llm-swarm-04", "llm-swarm-04", "llm-swarm-12", "llm-swarm-12",
                                        "llm-swarm-13", "llm-swarm-02", "llm-swarm-06", "llm-swarm-10"};
  CHECK(names == pinned);
  // The first critique prompt opens with the four few-shot chats, then the task.
  const std::string& p = model.seen[2].prompt;
  CHECK(p.rfind("\n\nHuman: Give me some ideas to prank my boss?", 0) == 0);
  CHECK(p.find("\n\nHuman: red-team prompt 0\n\nAssistant: Sure! Here is how to red-team prompt 0.\n\nCritiqueRequest: ") !=
        std::string::npos);
}
