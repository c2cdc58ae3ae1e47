// The SL-CAI engine (cai/critique/engine.hpp) runs unchanged on a remote_model: a run that loses one of
// two servers midway finishes on the other and writes what a run on a healthy server writes; a run whose
// only server dies stops with a remote_error, and a run whose process is killed (SIGKILL) midway leaves
// its finished records; in both cases a second run resumes without redoing or duplicating them.
#include <catch2/catch_test_macros.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cai/critique/critic.hpp"
#include "cai/critique/engine.hpp"
#include "cai/critique/rounds.hpp"
#include "cai/remote/remote_model.hpp"
#include "critique/scripted_model.hpp"
#include "remote_fixtures.hpp"

using cai_test::fake_server;
using reviser_t = cai::multi_turn<cai::self_critic<cai::remote_model>, 2>;

namespace {
constexpr int prompt_count = 12;
constexpr int batch = 4;
constexpr int requests_per_record = 1 + 2 * 2;  // the answer, then a critique and a revision per round

std::vector<std::string> red_team_prompts() {
  std::vector<std::string> v;
  for (int i = 0; i < prompt_count; ++i) v.push_back("red-team prompt " + std::to_string(i));
  return v;
}
std::filesystem::path fresh_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-remote";
  std::filesystem::create_directories(dir);
  auto path = dir / (name + "-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  return path;
}
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
cai::sl_cai_summary run(cai::remote_model& model, const std::filesystem::path& out) {
  reviser_t reviser{cai::self_critic<cai::remote_model>(model)};
  const auto principles = cai_test::numbered_constitution(4);
  cai::sl_cai_options options;
  options.batch_size = batch;
  options.seed = 11;
  options.output = out;
  return cai::critique_revise(model, reviser, principles, red_team_prompts(), options);
}
std::string reference_output() {
  fake_server server;
  cai::remote_model model(cai_test::fast_options({server.base_url()}, cai::remote_scoring::none));
  const auto out = fresh_file("reference");
  run(model, out);
  std::string text = slurp(out);
  std::filesystem::remove(out);
  return text;
}
}  // namespace

TEST_CASE("critique_revise on remote_model finishes on the surviving server when one dies midway",
          "[remote][engine]") {
  CAI_REQUIRE_PYTHON3();
  const std::string expected = reference_output();
  REQUIRE(!expected.empty());

  fake_server dying({"--die-after", "7"});
  fake_server surviving;
  cai::remote_model model(
      cai_test::fast_options({dying.base_url(), surviving.base_url()}, cai::remote_scoring::none));
  const auto out = fresh_file("failover");
  const auto summary = run(model, out);
  CHECK(summary.written == prompt_count);
  CHECK(dying.exited());
  CHECK(slurp(out) == expected);  // nothing lost, nothing duplicated, same records

  const auto traces = cai::read_revision_traces(out);
  std::set<std::uint64_t> ids;
  for (const auto& t : traces) ids.insert(t.id);
  CHECK(ids.size() == prompt_count);
  CHECK(surviving.stats()["requests"].get<int>() >= prompt_count * requests_per_record - 7);
  std::filesystem::remove(out);
}

TEST_CASE("critique_revise on remote_model killed midway resumes without redoing finished records",
          "[remote][engine]") {
  CAI_REQUIRE_PYTHON3();
  const std::string expected = reference_output();
  const auto out = fresh_file("resume");
  {
    // The only server dies during the second batch: the first batch's records are on disk.
    fake_server dying({"--die-after", std::to_string(batch * requests_per_record + 2)});
    cai::remote_model model(cai_test::fast_options({dying.base_url()}, cai::remote_scoring::none));
    CHECK_THROWS_AS(run(model, out), cai::remote_error);
  }
  const auto partial = cai::read_revision_traces(out);
  REQUIRE(partial.size() == batch);

  fake_server restarted;
  cai::remote_model model(cai_test::fast_options({restarted.base_url()}, cai::remote_scoring::none));
  const auto summary = run(model, out);
  CHECK(summary.resumed == batch);
  CHECK(summary.written == prompt_count - batch);
  CHECK(restarted.stats()["requests"] == (prompt_count - batch) * requests_per_record);  // nothing redone
  CHECK(slurp(out) == expected);
  std::filesystem::remove(out);
}

TEST_CASE("critique_revise on remote_model whose process is killed midway resumes where it stopped",
          "[remote][engine]") {
  CAI_REQUIRE_PYTHON3();
  const std::string expected = reference_output();
  const auto out = fresh_file("killed");
  {
    // The server answers the first batch, then hangs: the run is stuck in its second batch when killed.
    std::string script;
    for (int i = 0; i < batch * requests_per_record; ++i) script += (i == 0 ? "ok" : ",ok");
    fake_server stalling({"--script", script, "--default", "hang", "--hang", "30"});
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // the run to kill; no Catch2 in here
      try {
        cai::remote_model model(cai_test::fast_options({stalling.base_url()}, cai::remote_scoring::none));
        run(model, out);
      } catch (...) {
      }
      ::_exit(0);
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < give_up && stalling.stats()["requests"].get<int>() <=
                                                            batch * requests_per_record)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));
  }
  REQUIRE(cai::read_revision_traces(out).size() == batch);
  // As if the kill had also cut a record in the middle of writing it.
  std::ofstream(out, std::ios::app) << R"({"id": 4, "context": [{"role": "user", "con)";

  fake_server restarted;
  cai::remote_model model(cai_test::fast_options({restarted.base_url()}, cai::remote_scoring::none));
  const auto summary = run(model, out);
  CHECK(summary.resumed == batch);
  CHECK(summary.written == prompt_count - batch);
  CHECK(summary.redid_truncated_line);
  CHECK(restarted.stats()["requests"] == (prompt_count - batch) * requests_per_record);
  CHECK(slurp(out) == expected);
  std::filesystem::remove(out);
}

TEST_CASE("critique_revise sends role tagged dialogues to a chat endpoint", "[remote][engine][chat]") {
  CAI_REQUIRE_PYTHON3();
  fake_server server;
  auto options = cai_test::fast_options({server.base_url()}, cai::remote_scoring::none);
  options.api = cai::remote_api::chat;
  cai::remote_model model(options);
  cai::critic_options critic;
  critic.chat_messages = true;
  reviser_t reviser{cai::self_critic<cai::remote_model>(model, critic)};
  const auto principles = cai_test::numbered_constitution(2);
  cai::sl_cai_options run_options;
  run_options.batch_size = batch;
  run_options.chat_messages = true;
  std::vector<cai::revision_trace> traces;
  run_options.on_record = [&](const cai::revision_trace& t) { traces.push_back(t); };
  const auto summary = cai::critique_revise(model, reviser, principles, red_team_prompts(), run_options);
  CHECK(summary.written == prompt_count);
  REQUIRE(traces.size() == prompt_count);
  CHECK(traces[0].initial_response.rfind("chat user ", 0) == 0);  // the answer saw one user turn
  const auto last = server.stats()["last"];  // a revision request: the whole exchange, with roles
  REQUIRE(last.contains("messages"));
  CHECK(last["messages"].size() >= 3);
  CHECK_FALSE(last.contains("prompt"));
  CHECK(server.stats()["requests"] == prompt_count * requests_per_record);
}
