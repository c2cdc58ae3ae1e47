// Tests of cai/constitution/validate.hpp and of the errors and warnings that loading reports: JSON syntax
// errors with line and column, broken rules with principle index, name and field, unknown fields as
// warnings.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cai/constitution/io.hpp"
#include "cai/constitution/validate.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {

std::string fixture(const char* name) { return std::string(CAI_TEST_DATA_DIR) + "/constitutions/" + name; }

cai::constitutional_principle principle(std::string name, std::string critique, std::string revision,
                                        std::string question, double weight = 1.0) {
  cai::constitutional_principle p;
  p.name = std::move(name);
  p.critique_request = std::move(critique);
  p.revision_request = std::move(revision);
  p.comparison_question = std::move(question);
  p.weight = weight;
  return p;
}

cai::constitution valid_constitution() {
  return cai::constitution{"rules", "", {principle("care", "Critique.", "Revise.", "Which?")}, {}};
}

/// The position and message of the parse_error that `text` raises.
cai::parse_error parse_failure(const std::string& text) {
  try {
    (void)cai::parse_constitution(text, "inline.json");
  } catch (const cai::parse_error& e) {
    return e;
  }
  FAIL("no parse_error for: " << text);
  return cai::parse_error("", 0, 0, "");
}

}  // namespace

TEST_CASE("a JSON syntax error reports file line and column", "[constitution][validate]") {
  const std::string path = fixture("syntax_error.json");
  try {
    (void)cai::load_constitution(path);
    FAIL("no parse_error");
  } catch (const cai::parse_error& e) {
    REQUIRE(e.file() == path);
    REQUIRE(e.line() == 4);
    REQUIRE(e.column() == 61);  // the '}' after the trailing comma
    REQUIRE_THAT(e.what(), ContainsSubstring(path + ":4:61: invalid JSON"));
    REQUIRE_THAT(e.what(), ContainsSubstring("unexpected '}'"));
  }
}

TEST_CASE("line and column are computed from the byte offset", "[constitution][validate]") {
  auto e = parse_failure("{\n  \"a\": 1,\n  \"b\": [1, 2,]\n}");
  REQUIRE(e.line() == 3);
  REQUIRE(e.column() == 14);
  e = parse_failure("{\n \"name\": \"unterminated");
  REQUIRE(e.line() == 2);
  REQUIRE_THAT(e.what(), ContainsSubstring("missing closing quote"));
  e = parse_failure("");
  REQUIRE(e.line() == 1);
  REQUIRE(e.column() == 1);
  e = parse_failure("{\"principles\": [\n  {\"name\": \"a\", \"weight\": 1e999}]}");
  REQUIRE(e.line() == 2);
  REQUIRE(e.column() == 27);  // where the literal 1e999 starts
  REQUIRE_THAT(e.what(), ContainsSubstring("number overflow"));
}

TEST_CASE("an empty field names the file and the principle index and name", "[constitution][validate]") {
  const std::string path = fixture("missing_revision.json");
  REQUIRE_THROWS_AS(cai::load_constitution(path), cai::validation_error);
  REQUIRE_THROWS_WITH(cai::load_constitution(path),
                      ContainsSubstring(path + ": principle 3 ('honesty'): field 'revision_request' is empty"));
}

TEST_CASE("a missing name or a wrong type is reported with its location", "[constitution][validate]") {
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "a", "comparison_question": "Q"}, {"comparison_question": "Q"}]})",
                              "c.json"),
      ContainsSubstring("c.json: principle 1: field 'name' is missing"));
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "a", "comparison_question": "Q", "weight": "high"}]})", "c.json"),
      ContainsSubstring("c.json: principle 0 ('a'): field 'weight' must be a number, got string"));
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "a", "comparison_question": "Q", "tags": "harm"}]})", "c.json"),
      ContainsSubstring("c.json: principle 0 ('a'): field 'tags' must be a list of strings"));
  REQUIRE_THROWS_WITH(cai::parse_constitution(R"({"principles": {}})", "c.json"),
                      ContainsSubstring("c.json: field 'principles' must be a list"));
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "a", "comparison_question": "Q"}],
                                  "few_shot": [{"context": [{"role": "user", "content": "hi"}], "response": "r"}]})",
                              "c.json"),
      ContainsSubstring("c.json: few_shot 0: field 'critique_request' is missing"));
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "a", "comparison_question": "Q"}],
                                  "few_shot": [{"context": [{"role": "robot", "content": "hi"}]}]})",
                              "c.json"),
      ContainsSubstring("c.json: few_shot 0: context turn 0: unknown chat role 'robot'"));
}

TEST_CASE("a critique request without a revision request is an error and vice versa", "[constitution][validate]") {
  cai::constitution c = valid_constitution();
  c.principles[0].revision_request.clear();
  REQUIRE_THROWS_WITH(cai::validate_constitution(c, "c.json"),
                      ContainsSubstring("c.json: principle 0 ('care'): field 'revision_request' is empty"));
  c = valid_constitution();
  c.principles[0].critique_request.clear();
  REQUIRE_THROWS_WITH(cai::validate_constitution(c, "c.json"),
                      ContainsSubstring("c.json: principle 0 ('care'): field 'critique_request' is empty"));
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "x", "revision_request": "Rewrite it."}]})", "j.json"),
      ContainsSubstring("j.json: principle 0 ('x'): field 'critique_request' is empty"));
}

TEST_CASE("a principle with neither a critique pair nor a comparison question is an error", "[constitution][validate]") {
  cai::constitution c = valid_constitution();
  c.principles.push_back(principle("empty", "", "", ""));
  REQUIRE_THROWS_AS(cai::validate_constitution(c, "c.json"), cai::validation_error);
  REQUIRE_THROWS_WITH(cai::validate_constitution(c, "c.json"),
                      ContainsSubstring("c.json: principle 1 ('empty'): has neither a critique pair") &&
                          ContainsSubstring("nor a comparison_question"));
}

TEST_CASE("duplicate principle names are an error", "[constitution][validate]") {
  const std::string path = fixture("duplicate_names.json");
  REQUIRE_THROWS_WITH(cai::load_constitution(path),
                      ContainsSubstring(path + ": principle 2 ('care'): duplicate name: principle 0"));
}

TEST_CASE("weights must be finite and not negative", "[constitution][validate]") {
  for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    cai::constitution c = valid_constitution();
    c.principles.push_back(principle("w", "Critique.", "Revise.", "", bad));
    REQUIRE_THROWS_WITH(cai::validate_constitution(c, "c.json"),
                        ContainsSubstring("c.json: principle 1 ('w'): field 'weight' must be finite and >= 0"));
  }
  REQUIRE_THROWS_WITH(
      cai::parse_constitution(R"({"principles": [{"name": "a", "comparison_question": "Q", "weight": -0.5}]})", "n.json"),
      ContainsSubstring("n.json: principle 0 ('a'): field 'weight' must be finite and >= 0, got -0.5"));
  cai::constitution zero = valid_constitution();
  zero.principles.push_back(principle("off", "Critique.", "Revise.", "", 0.0));
  REQUIRE_NOTHROW(cai::validate_constitution(zero));
  zero.principles[0].weight = 0.0;
  REQUIRE_THROWS_WITH(cai::validate_constitution(zero), ContainsSubstring("no principle has a positive weight"));
}

TEST_CASE("an empty constitution and empty few-shot fields are errors", "[constitution][validate]") {
  REQUIRE_THROWS_WITH(cai::validate_constitution(cai::constitution{"none", "", {}, {}}),
                      ContainsSubstring("constitution 'none': the constitution has no principles"));
  cai::constitution c = valid_constitution();
  c.few_shot.push_back(cai::critique_example{cai::user_turn("hi"), "r", "cr", "", "rr", "rev"});
  REQUIRE_THROWS_WITH(cai::validate_constitution(c, "c.json"),
                      ContainsSubstring("c.json: few_shot 0: field 'critique' is empty"));
}

TEST_CASE("every problem is listed in one error", "[constitution][validate]") {
  cai::constitution c = valid_constitution();
  c.principles.push_back(principle("", "Critique.", "", "", -2.0));
  const std::vector<std::string> problems = cai::constitution_problems(c, "c.json");
  REQUIRE(problems.size() == 3);
  REQUIRE_THAT(problems[0], ContainsSubstring("principle 1: field 'name' is empty"));
  REQUIRE_THROWS_WITH(cai::validate_constitution(c, "c.json"),
                      ContainsSubstring("(2 more problems)") && ContainsSubstring("field 'weight'"));
  REQUIRE(cai::constitution_problems(valid_constitution()).empty());
}

TEST_CASE("unknown fields are warnings and not errors", "[constitution][validate]") {
  std::vector<std::string> warnings;
  cai::load_options options;
  options.on_warning = [&](const std::string& m) { warnings.push_back(m); };
  const std::string path = fixture("unknown_fields.json");
  const cai::constitution c = cai::load_constitution(path, options);
  REQUIRE(c.principles.size() == 1);
  REQUIRE(c.principles[0].weight == 1.0);  // the misspelt weight is ignored
  REQUIRE(warnings.size() == 2);
  REQUIRE_THAT(warnings[0], ContainsSubstring(path + ": unknown field 'version' is ignored"));
  REQUIRE_THAT(warnings[1], ContainsSubstring(path + ": principle 0 ('care'): unknown field 'wieght' is ignored") &&
                                ContainsSubstring("did you mean 'weight'?"));
}

TEST_CASE("warnings go to std::cerr by default and can be silenced", "[constitution][validate]") {
  std::ostringstream captured;
  std::streambuf* old = std::cerr.rdbuf(captured.rdbuf());
  try {
    (void)cai::load_constitution(fixture("unknown_fields.json"));
  } catch (...) {
    std::cerr.rdbuf(old);
    throw;
  }
  std::cerr.rdbuf(old);
  REQUIRE_THAT(captured.str(), ContainsSubstring("cai: warning: ") && ContainsSubstring("unknown field 'version'"));

  cai::load_options quiet;
  quiet.on_warning = nullptr;
  std::ostringstream silent;
  old = std::cerr.rdbuf(silent.rdbuf());
  (void)cai::load_constitution(fixture("unknown_fields.json"), quiet);
  std::cerr.rdbuf(old);
  REQUIRE(silent.str().empty());
}

TEST_CASE("transcript markers left in a request are a warning", "[constitution][validate]") {
  cai::constitution c = valid_constitution();
  c.principles[0].critique_request = "CritiqueRequest: Find the harm.";
  c.principles[0].revision_request = "Rewrite it.\n\nRevision:";
  std::vector<std::string> warnings;
  cai::validate_constitution(c, "m.json", [&](const std::string& m) { warnings.push_back(m); });
  REQUIRE(warnings.size() == 2);
  REQUIRE_THAT(warnings[0], ContainsSubstring("m.json: principle 0 ('care'): field 'critique_request' contains "
                                              "the transcript marker 'CritiqueRequest:'"));
  REQUIRE_THAT(warnings[1], ContainsSubstring("'Revision:'"));
}

TEST_CASE("validation can be switched off when loading", "[constitution][validate]") {
  cai::load_options options;
  options.validate = false;
  const cai::constitution c = cai::load_constitution(fixture("duplicate_names.json"), options);
  REQUIRE(c.principles.size() == 3);
  REQUIRE_FALSE(cai::constitution_problems(c).empty());
}
