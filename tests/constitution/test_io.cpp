// Tests of cai/constitution/io.hpp: cai's own schema (load, parse, save, to_json), format detection,
// and the importers for llm-swarm's format and the paper authors' critique and feedback formats.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/constitution/io.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {

std::string fixture(const char* name) { return std::string(CAI_TEST_DATA_DIR) + "/constitutions/" + name; }

std::string llm_swarm_path() {
  return std::string(CAI_SHARED_DATA_DIR) + "/constitutions/llm-swarm-anthropic.json";
}

/// Collects warnings instead of printing them.
struct warnings {
  std::vector<std::string> messages;
  cai::load_options options() {
    cai::load_options o;
    o.on_warning = [this](const std::string& m) { messages.push_back(m); };
    return o;
  }
};

/// A fresh file path under the system's temporary folder.
std::filesystem::path temp_path(const char* name) {
  return std::filesystem::temp_directory_path() / ("cai_test_constitution_io_" + std::string(name));
}

}  // namespace

TEST_CASE("a constitution in cai's schema loads with every field", "[constitution][io]") {
  warnings w;
  const cai::constitution c = cai::load_constitution(fixture("valid.json"), w.options());
  REQUIRE(w.messages.empty());
  REQUIRE(c.name == "fixture");
  REQUIRE(c.description == "A small valid constitution in cai's schema, for tests.");
  REQUIRE(c.principles.size() == 3);
  const auto& kindness = c.principles[0];
  REQUIRE(kindness.name == "kindness");
  REQUIRE(kindness.critique_request == "Point out anything unkind in the response.");
  REQUIRE(kindness.revision_request == "Rewrite the response to be kinder.");
  REQUIRE(kindness.comparison_question == "Which response is kinder?");
  REQUIRE(kindness.tags == std::vector<std::string>{"tone", "respect"});
  REQUIRE(kindness.weight == 2.0);
  REQUIRE(c.principles[1].weight == 1.0);  // the default
  REQUIRE(c.principles[1].tags.empty());
  REQUIRE_FALSE(c.principles[1].has_comparison());
  REQUIRE_FALSE(c.principles[2].has_critique());
  REQUIRE(c.critique_count() == 2);
  REQUIRE(c.comparison_count() == 2);
  REQUIRE(c.few_shot.size() == 1);
  REQUIRE(c.few_shot[0].context == cai::user_turn("What is two plus two?"));
  REQUIRE(c.few_shot[0].revision == "Two plus two is four.");
}

TEST_CASE("a constitution without a name is named after its file", "[constitution][io]") {
  const cai::constitution c = cai::parse_constitution(
      R"({"principles": [{"name": "a", "comparison_question": "Which?"}]})", "configs/my-rules.json");
  REQUIRE(c.name == "my-rules");
}

TEST_CASE("save_constitution and load_constitution round-trip a constitution", "[constitution][io]") {
  const cai::constitution original = cai::load_constitution(fixture("valid.json"));
  const auto path = temp_path("roundtrip.json");
  cai::save_constitution(original, path);
  const cai::constitution loaded = cai::load_constitution(path);
  std::filesystem::remove(path);
  REQUIRE(loaded == original);
}

TEST_CASE("to_json writes cai's schema in the documented field order", "[constitution][io]") {
  const cai::constitution c = cai::load_constitution(fixture("valid.json"));
  const nlohmann::ordered_json j = cai::to_json(c);
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  REQUIRE(keys == std::vector<std::string>{"name", "description", "principles", "few_shot"});
  // Empty request fields are left out; tags and weight are always written.
  REQUIRE_FALSE(j["principles"][1].contains("comparison_question"));
  REQUIRE_FALSE(j["principles"][2].contains("critique_request"));
  REQUIRE(j["principles"][2]["weight"] == 0.5);
  REQUIRE(j["few_shot"][0]["context"][0]["role"] == "user");
  REQUIRE(cai::parse_constitution(j.dump(), "dumped") == c);
}

TEST_CASE("nlohmann json conversions read and write a constitution", "[constitution][io]") {
  const cai::constitution c = cai::load_constitution(fixture("valid.json"));
  const nlohmann::json j = c;
  REQUIRE(j.at("principles").size() == 3);
  REQUIRE(j.get<cai::constitution>() == c);
  const nlohmann::ordered_json o = c;
  REQUIRE(o.get<cai::constitution>() == c);
}

TEST_CASE("save_constitution refuses an invalid constitution and names a bad path", "[constitution][io]") {
  cai::constitution invalid{"bad", "", {cai::constitutional_principle{}}, {}};
  REQUIRE_THROWS_AS(cai::save_constitution(invalid, temp_path("never.json")), cai::validation_error);
  REQUIRE_FALSE(std::filesystem::exists(temp_path("never.json")));
  const cai::constitution c = cai::load_constitution(fixture("valid.json"));
  const auto nowhere = temp_path("no_such_dir") / "c.json";
  REQUIRE_THROWS_WITH(cai::save_constitution(c, nowhere), ContainsSubstring(nowhere.string()));
  REQUIRE_THROWS_AS(cai::save_constitution(c, nowhere), cai::io_error);
}

TEST_CASE("a missing file gives an io_error naming the path", "[constitution][io]") {
  const std::string path = fixture("does_not_exist.json");
  REQUIRE_THROWS_AS(cai::load_constitution(path), cai::io_error);
  REQUIRE_THROWS_WITH(cai::load_constitution(path),
                      ContainsSubstring(path) && ContainsSubstring("no such file"));
  try {
    (void)cai::load_constitution(path);
  } catch (const cai::io_error& e) {
    REQUIRE(e.path() == path);
  }
}

TEST_CASE("detect_format recognises the four formats", "[constitution][io]") {
  using nlohmann::ordered_json;
  using cai::constitution_format;
  REQUIRE(cai::detect_format(ordered_json::parse(R"({"principles": []})")) == constitution_format::cai);
  REQUIRE(cai::detect_format(ordered_json::parse(R"({"constitutions": []})")) == constitution_format::llm_swarm);
  REQUIRE(cai::detect_format(ordered_json::parse(R"({"harmful0": {"prompt": ["x"], "edit_request": "y"}})")) ==
          constitution_format::paper_critiques);
  REQUIRE(cai::detect_format(ordered_json::parse(R"(["Which is better?"])")) ==
          constitution_format::paper_feedback);
  REQUIRE_FALSE(cai::detect_format(ordered_json::parse(R"({"settings": 1})")).has_value());
  REQUIRE_FALSE(cai::detect_format(ordered_json::parse("[1, 2]")).has_value());
  REQUIRE(cai::to_string(constitution_format::paper_feedback) == "paper-feedback");
}

TEST_CASE("a document in no known format is rejected with the formats listed", "[constitution][io]") {
  const std::string path = fixture("not_a_constitution.json");
  REQUIRE_THROWS_AS(cai::load_constitution(path), cai::validation_error);
  REQUIRE_THROWS_WITH(cai::load_constitution(path),
                      ContainsSubstring(path) && ContainsSubstring("\"principles\"") &&
                          ContainsSubstring("llm-swarm") && ContainsSubstring("list of strings"));
}

TEST_CASE("a forced format that does not match the document is an error", "[constitution][io]") {
  cai::load_options o;
  o.format = cai::constitution_format::llm_swarm;
  REQUIRE_THROWS_WITH(cai::load_constitution(fixture("valid.json"), o),
                      ContainsSubstring("field 'constitutions' is missing"));
}

TEST_CASE("the llm-swarm constitution loads with 16 principles and 4 few-shot chats", "[constitution][io][import]") {
  warnings w;
  const cai::constitution c = cai::load_constitution(llm_swarm_path(), w.options());
  REQUIRE(w.messages.empty());
  REQUIRE(c.name == "llm-swarm-anthropic");
  REQUIRE(c.principles.size() == 16);
  REQUIRE(c.few_shot.size() == 4);
  REQUIRE(c.principles.front().name == "llm-swarm-00");
  REQUIRE(c.principles.back().name == "llm-swarm-15");
  REQUIRE(c.critique_count() == 16);
  REQUIRE(c.comparison_count() == 0);

  // The texts arrive unchanged: compare with the file read independently.
  std::ifstream in(llm_swarm_path());
  const nlohmann::json raw = nlohmann::json::parse(in);
  REQUIRE(c.principles[0].critique_request == raw["constitutions"][0]["critic"].get<std::string>());
  for (std::size_t i = 0; i < 16; ++i) {
    REQUIRE(c.principles[i].critique_request == raw["constitutions"][i]["critic"].get<std::string>());
    REQUIRE(c.principles[i].revision_request == raw["constitutions"][i]["revision"].get<std::string>());
  }
  // Each chat: [user prompt, assistant response, critique request, critique, revision request, revision].
  for (std::size_t k = 0; k < 4; ++k) {
    const auto& chat = raw["system_chat"][k];
    const cai::critique_example& x = c.few_shot[k];
    REQUIRE(x.context == cai::user_turn(chat[0]["content"].get<std::string>()));
    REQUIRE(x.response == chat[1]["content"].get<std::string>());
    REQUIRE(x.critique_request == chat[2]["content"].get<std::string>());
    REQUIRE(x.critique == chat[3]["content"].get<std::string>());
    REQUIRE(x.revision_request == chat[4]["content"].get<std::string>());
    REQUIRE(x.revision == chat[5]["content"].get<std::string>());
  }
}

TEST_CASE("llm-swarm chats with more leading turns keep them as context", "[constitution][io][import]") {
  const cai::constitution c = cai::import_llm_swarm(R"({
    "constitutions": [{"critic": "CritiqueRequest: Is it rude?", "revision": "RevisionRequest: Be polite.\n"}],
    "system_chat": [[
      {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
      {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
      {"role": "user", "content": "Critique it"}, {"role": "assistant", "content": "C"},
      {"role": "user", "content": "Revise it"}, {"role": "assistant", "content": "R"}
    ]]})", "chat.json");
  REQUIRE(c.principles[0].critique_request == "Is it rude?");
  REQUIRE(c.principles[0].revision_request == "Be polite.");
  REQUIRE(c.few_shot.size() == 1);
  const cai::dialogue expected{{cai::role::user, "Hi"}, {cai::role::assistant, "Hello"}, {cai::role::user, "Q"}};
  REQUIRE(c.few_shot[0].context == expected);
  REQUIRE(c.few_shot[0].response == "A");
  REQUIRE(c.few_shot[0].revision == "R");
}

TEST_CASE("an llm-swarm chat with turns in the wrong order is rejected", "[constitution][io][import]") {
  const char* text = R"({"constitutions": [{"critic": "c", "revision": "r"}],
    "system_chat": [[
      {"role": "user", "content": "Q"}, {"role": "user", "content": "A"},
      {"role": "user", "content": "Critique it"}, {"role": "assistant", "content": "C"},
      {"role": "user", "content": "Revise it"}, {"role": "assistant", "content": "R"}]]})";
  REQUIRE_THROWS_WITH(cai::import_llm_swarm(text, "swarm.json"),
                      ContainsSubstring("swarm.json: system_chat 0: turn 1 has role 'user', expected 'assistant'"));
  REQUIRE_THROWS_WITH(cai::import_llm_swarm(R"({"constitutions": [{"critic": "c"}]})", "swarm.json"),
                      ContainsSubstring("swarm.json: constitutions 0: field 'revision' is missing"));
}

TEST_CASE("the paper's critique format imports with markers stripped and keys as names",
          "[constitution][io][import]") {
  const cai::constitution c = cai::load_constitution(fixture("paper_critiques.json"));
  REQUIRE(c.name == "paper_critiques");
  REQUIRE(c.principles.size() == 3);
  REQUIRE(c.principles[0].name == "harmful0");
  REQUIRE(c.principles[2].name == "harmful2");
  REQUIRE(c.principles[0].critique_request ==
          "Point out every way in which the last response could lead to someone getting hurt.");
  REQUIRE(c.principles[0].revision_request ==
          "Please rewrite the response so that nobody could get hurt by following it.");
  REQUIRE(c.critique_count() == 3);
  REQUIRE(c.comparison_count() == 0);
}

TEST_CASE("the paper's critique entries keep their file order", "[constitution][io][import]") {
  const cai::constitution c = cai::import_paper_critiques(R"({
    "harmful2": {"prompt": ["CritiqueRequest: two\n\nCritique:"], "edit_request": "RevisionRequest: 2\n\nRevision:"},
    "harmful10": {"prompt": ["CritiqueRequest: ten\n\nCritique:"], "edit_request": "RevisionRequest: 10\n\nRevision:"},
    "harmful1": {"prompt": "CritiqueRequest: one\n\nCritique:", "edit_request": "RevisionRequest: 1\n\nRevision:"}
  })", "order.json");
  REQUIRE(c.principles.size() == 3);
  REQUIRE(c.principles[0].name == "harmful2");
  REQUIRE(c.principles[1].name == "harmful10");
  REQUIRE(c.principles[2].name == "harmful1");
  REQUIRE(c.principles[1].critique_request == "ten");
  REQUIRE(c.principles[2].revision_request == "1");
}

TEST_CASE("a paper critique entry with several prompts uses the first and warns", "[constitution][io][import]") {
  warnings w;
  const cai::constitution c = cai::import_paper_critiques(
      R"({"h": {"prompt": ["CritiqueRequest: first\n\nCritique:", "second"], "edit_request": "Fix it."}})",
      "multi.json", w.options());
  REQUIRE(c.principles[0].critique_request == "first");
  REQUIRE(w.messages.size() == 1);
  REQUIRE_THAT(w.messages[0], ContainsSubstring("multi.json: 'h': field 'prompt' holds 2 critique requests"));
  REQUIRE_THROWS_WITH(cai::import_paper_critiques(R"({"h": {"prompt": [], "edit_request": "x"}})", "e.json"),
                      ContainsSubstring("e.json: 'h': field 'prompt' must be a non-empty list of strings"));
  REQUIRE_THROWS_WITH(cai::import_paper_critiques(R"({"h": {"prompt": ["x"]}})", "e.json"),
                      ContainsSubstring("e.json: 'h': field 'edit_request' is missing"));
}

TEST_CASE("the paper's feedback format imports as comparison principles", "[constitution][io][import]") {
  const cai::constitution c = cai::load_constitution(fixture("paper_feedback.json"));
  REQUIRE(c.principles.size() == 3);
  REQUIRE(c.principles[0].name == "comparison-00");
  REQUIRE(c.principles[2].name == "comparison-02");
  REQUIRE(c.principles[1].comparison_question == "Which of these responses is more courteous toward the human?");
  REQUIRE(c.critique_count() == 0);
  REQUIRE(c.comparison_count() == 3);
  REQUIRE_THROWS_WITH(cai::import_paper_feedback(R"(["ok", 3])", "f.json"),
                      ContainsSubstring("f.json: feedback principle 1: expected a string"));
  REQUIRE_THROWS_WITH(cai::import_paper_feedback(R"(["ok", "  "])", "f.json"),
                      ContainsSubstring("f.json: feedback principle 1: the principle is empty"));
}

TEST_CASE("a critique file and a feedback file merge into one constitution", "[constitution][io][import]") {
  const cai::constitution c =
      cai::load_paper_constitution(fixture("paper_critiques.json"), fixture("paper_feedback.json"));
  REQUIRE(c.name == "paper_critiques+paper_feedback");
  REQUIRE(c.principles.size() == 6);
  REQUIRE(c.critique_count() == 3);
  REQUIRE(c.comparison_count() == 3);
  REQUIRE(c.principles[3].name == "comparison-00");
  cai::rng g(1);
  REQUIRE(c.draw_critique(g).has_critique());
  REQUIRE(c.draw_comparison(g).has_comparison());

  REQUIRE_THROWS_WITH(
      cai::import_paper(R"({"comparison-00": {"prompt": ["x"], "edit_request": "y"}})", R"(["Which?"])",
                        "c.json", "f.json"),
      ContainsSubstring("f.json: principle 0 ('comparison-00'): duplicate name"));
  REQUIRE_THROWS_AS(cai::load_paper_constitution(fixture("paper_critiques.json"), fixture("nope.json")),
                    cai::io_error);
}

TEST_CASE("strip_transcript_markers leaves the bare request", "[constitution][io]") {
  REQUIRE(cai::strip_transcript_markers("\n\nCritiqueRequest: Identify harm.\n\nCritique:") == "Identify harm.");
  REQUIRE(cai::strip_transcript_markers("\n\nRevisionRequest: Rewrite it.\n\nRevision:") == "Rewrite it.");
  REQUIRE(cai::strip_transcript_markers("  Plain request.  ") == "Plain request.");
  REQUIRE(cai::strip_transcript_markers("Mentions a Critique: in the middle.") ==
          "Mentions a Critique: in the middle.");
  REQUIRE(cai::strip_transcript_markers("").empty());
}
