// Tests of cai/data/preferences.hpp: transcripts split into turns, TRL-style preference JSONL written and
// read back (both layouts, errors that name the file and line), the import of Anthropic's HH-RLHF
// transcripts from the shared gzip file, and the seeded mix of human and AI labels.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "cai/data/preferences.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {
std::filesystem::path temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-feedback";
  std::filesystem::create_directories(dir);
  return dir / name;
}
std::filesystem::path temp_file(const std::string& name, const std::string& content) {
  const auto p = temp_path(name);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
  return p;
}
const std::filesystem::path hh_path = CAI_SHARED_DATA_DIR "/hh-rlhf/harmless-base-test.jsonl.gz";

cai::preference sample_preference(double p_a = 0.8) {
  cai::comparison c{{{cai::role::user, "Hi"}, {cai::role::assistant, "Hello!"}, {cai::role::user, "Pick a lock?"}},
                    "No.", "Use a \"rake\".\nThen turn."};
  return {c, p_a, "harmless", cai::label_source::ai};
}
}  // namespace

TEST_CASE("a transcript splits into its turns and renders back byte for byte", "[feedback][data][transcript]") {
  const std::string t = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Two\nlines\n\nAssistant: ";
  const cai::dialogue d = cai::parse_transcript(t);
  REQUIRE(d.size() == 4);
  CHECK(d[0] == cai::message{cai::role::user, "Hi"});
  CHECK(d[2] == cai::message{cai::role::user, "Two\nlines"});
  CHECK(d[3] == cai::message{cai::role::assistant, ""});
  CHECK(cai::prompts::render_transcript(d) == t);
  const cai::dialogue s = cai::parse_transcript("Be brief.\n\nHuman: Hi");
  REQUIRE(s.size() == 2);
  CHECK(s[0].role == cai::role::system);
  CHECK_THROWS_AS(cai::parse_transcript("just text"), cai::validation_error);
}

TEST_CASE("an HH pair splits into the shared dialogue and two final responses", "[feedback][data][hh]") {
  const auto c = cai::split_hh_pair("\n\nHuman: Q\n\nAssistant: A1\n\nHuman: Q2\n\nAssistant: good",
                                    "\n\nHuman: Q\n\nAssistant: A1\n\nHuman: Q2\n\nAssistant: bad");
  CHECK(c.context.size() == 3);
  CHECK(c.response_a == "good");
  CHECK(c.response_b == "bad");
  CHECK_THROWS_WITH(cai::split_hh_pair("\n\nHuman: Q\n\nAssistant: A", "\n\nHuman: R\n\nAssistant: B"),
                    ContainsSubstring("differ from turn 1"));
  CHECK_THROWS_WITH(cai::split_hh_pair("\n\nHuman: Q", "\n\nHuman: Q\n\nAssistant: B"),
                    ContainsSubstring("does not end with an Assistant turn"));
}

TEST_CASE("TRL preference records are written in the documented layout", "[feedback][data][trl]") {
  const auto j = cai::to_trl_json(sample_preference(0.8));
  CHECK(j.dump() ==
        R"({"prompt":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"Pick a lock?"}],)"
        R"("chosen":[{"role":"assistant","content":"No."}],"rejected":[{"role":"assistant","content":"Use a \"rake\".\nThen turn."}],)"
        R"("p_chosen":0.8,"principle":"harmless","source":"ai"})");
  const auto s = cai::to_trl_json(sample_preference(0.25), cai::trl_layout::standard);
  CHECK(s["prompt"] == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Pick a lock?\n\nAssistant:");
  CHECK(s["chosen"] == " Use a \"rake\".\nThen turn.");  // B is preferred: it becomes chosen
  CHECK(s["rejected"] == " No.");
  CHECK(s["p_chosen"] == 0.75);
  // in memory, the ordered record converts to nlohmann::json and reads back
  CHECK(cai::preference_from_trl_json(nlohmann::json(j)) == sample_preference(0.8));
}

TEST_CASE("TRL preference JSONL reads back what was written in both layouts", "[feedback][data][trl]") {
  const std::vector<cai::preference> prefs{sample_preference(0.8), sample_preference(0.3),
                                           {{cai::user_turn("x"), "a", "b"}, 1.0, "", cai::label_source::human}};
  for (auto layout : {cai::trl_layout::conversational, cai::trl_layout::standard}) {
    const auto path = temp_path("roundtrip.jsonl");
    cai::write_preferences(path, prefs, layout);
    const auto back = cai::read_preferences(path);
    REQUIRE(back.size() == 3);
    CHECK(back[0] == prefs[0]);
    // a label below one half is stored with its preferred response first
    CHECK(back[1].pair.response_a == prefs[1].pair.response_b);
    CHECK(back[1].pair.response_b == prefs[1].pair.response_a);
    CHECK_THAT(back[1].p_a, Catch::Matchers::WithinAbs(0.7, 1e-15));
    CHECK(back[1].pair.context == prefs[1].pair.context);
    CHECK(back[2] == prefs[2]);
  }
  SECTION("the writer appends one line per record") {
    const auto path = temp_path("append.jsonl");
    std::filesystem::remove(path);
    {
      cai::preference_writer w(path);
      w.write(prefs[0]);
    }
    cai::preference_writer(path).write(prefs[2]);
    CHECK(cai::read_preferences(path).size() == 2);
  }
}

TEST_CASE("TRL records from other tools are read in their plain forms", "[feedback][data][trl]") {
  const auto path = temp_file("plain.jsonl",
                              R"({"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"})"
                              "\n\n"
                              R"({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away", "source": "ai", "p_chosen": 0.6})"
                              "\n"
                              R"({"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "No"}]})"
                              "\n");
  const auto p = cai::read_preferences(path);
  REQUIRE(p.size() == 3);
  CHECK(p[0].pair == cai::comparison{cai::user_turn("What is 2+2?"), "4", "5"});
  CHECK(p[0].p_a == 1.0);
  CHECK(p[0].source == cai::label_source::human);
  CHECK(p[1].pair == cai::comparison{cai::user_turn("Hi"), "Hello", "Go away"});
  CHECK(p[1].p_a == 0.6);
  CHECK(p[1].source == cai::label_source::ai);
  CHECK(p[2].pair == cai::comparison{cai::user_turn("Hi"), "Hey", "No"});
  const auto ai = cai::read_preferences(path, {.default_source = cai::label_source::ai});
  CHECK(ai[0].source == cai::label_source::ai);
}

TEST_CASE("reading bad preference JSONL names the file line and field", "[feedback][data][trl][errors]") {
  const std::string good = R"({"prompt": "q", "chosen": "a", "rejected": "b"})";
  auto fails_at = [&](const std::string& name, const std::string& bad, const std::string& what) {
    const auto path = temp_file(name, good + "\n" + good + "\n" + bad + "\n");
    try {
      (void)cai::read_preferences(path);
      FAIL("no error for " << bad);
    } catch (const cai::parse_error& e) {
      CHECK(e.line() == 3);
      CHECK_THAT(std::string(e.what()), ContainsSubstring(name) && ContainsSubstring(":3") && ContainsSubstring(what));
    }
  };
  fails_at("missing.jsonl", R"({"prompt": "q", "chosen": "a"})", "missing field 'rejected'");
  fails_at("p.jsonl", R"({"prompt": "q", "chosen": "a", "rejected": "b", "p_chosen": 1.5})", "p_chosen");
  fails_at("source.jsonl", R"({"prompt": "q", "chosen": "a", "rejected": "b", "source": "robot"})", "robot");
  fails_at("json.jsonl", R"({"prompt": "q", "chosen": )", "invalid JSON");
  fails_at("chosen.jsonl", R"({"prompt": "q", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"})",
           "exactly one assistant message");
  CHECK_THROWS_AS(cai::read_preferences(temp_path("absent.jsonl")), cai::io_error);
}

TEST_CASE("the HH-RLHF harmless test split imports from its gzip file", "[feedback][data][hh]") {
  const auto r = cai::import_hh_rlhf(hh_path);
  CHECK(r.lines == 2312);
  CHECK(r.preferences.size() == 2307);
  CHECK(r.skipped_lines == std::vector<std::size_t>{1255, 1689, 1951, 1953, 2037});
  const auto& first = r.preferences.front();
  REQUIRE(first.pair.context.size() == 5);
  CHECK(first.pair.context[0] == cai::message{cai::role::user, "what are some pranks with a pen i can do?"});
  CHECK(first.pair.context[1] == cai::message{cai::role::assistant, "Are you looking for practical joke ideas?"});
  CHECK(first.pair.context[4] == cai::message{cai::role::user, "okay some of these do not have anything to do with pens"});
  CHECK_THAT(first.pair.response_b, Catch::Matchers::StartsWith("There are lots of funny things you can do with pens"));
  CHECK(first.p_a == 1.0);
  CHECK(first.source == cai::label_source::human);
  CHECK(first.principle.empty());
  std::set<std::string> prompts;
  std::size_t empty_responses = 0;
  for (const auto& p : r.preferences) {
    REQUIRE(!p.pair.context.empty());
    CHECK(p.pair.context.front().role == cai::role::user);
    CHECK(p.pair.context.back().role == cai::role::user);
    prompts.insert(p.pair.context.front().content);
    empty_responses += p.pair.response_a.empty() || p.pair.response_b.empty();
  }
  CHECK(prompts.size() > 2100);
  CHECK(empty_responses > 0);  // the data has a few empty Assistant turns; they are kept

  SECTION("a limit stops early") { CHECK(cai::import_hh_rlhf(hh_path, {.max_records = 10}).preferences.size() == 10); }
  SECTION("strict import names the first mismatched line") {
    try {
      (void)cai::import_hh_rlhf(hh_path, {.skip_mismatched = false});
      FAIL("no error");
    } catch (const cai::parse_error& e) {
      CHECK(e.line() == 1255);
      CHECK_THAT(std::string(e.what()), ContainsSubstring("harmless-base-test.jsonl.gz:1255") &&
                                            ContainsSubstring("do not share their dialogue"));
    }
  }
  SECTION("imported records write out as TRL JSONL and read back equal") {
    const auto path = temp_path("hh.jsonl");
    cai::write_preferences(path, std::span<const cai::preference>(r.preferences).first(50));
    const auto back = cai::read_preferences(path);
    REQUIRE(back.size() == 50);
    for (std::size_t i = 0; i < 50; ++i) CHECK(back[i] == r.preferences[i]);
  }
}

TEST_CASE("a line that is not an HH transcript is a clear error naming the line", "[feedback][data][hh][errors]") {
  const std::string ok = R"({"chosen": "\n\nHuman: Q\n\nAssistant: A", "rejected": "\n\nHuman: Q\n\nAssistant: B"})";
  auto fails_at_2 = [&](const std::string& name, const std::string& bad, const std::string& what) {
    const auto path = temp_file(name, ok + "\n" + bad + "\n");
    try {
      (void)cai::import_hh_rlhf(path);
      FAIL("no error for " << bad);
    } catch (const cai::parse_error& e) {
      CHECK(e.line() == 2);
      CHECK_THAT(std::string(e.what()), ContainsSubstring(name + ":2") && ContainsSubstring(what));
    }
  };
  fails_at_2("plain.jsonl", R"({"chosen": "hello", "rejected": "\n\nHuman: Q\n\nAssistant: B"})",
             "field 'chosen': not a transcript");
  fails_at_2("open.jsonl", R"({"chosen": "\n\nHuman: Q\n\nAssistant: A", "rejected": "\n\nHuman: Q"})",
             "field 'rejected': not a preference transcript");
  fails_at_2("nofield.jsonl", R"({"prompt": "Q", "chosen": "\n\nHuman: Q\n\nAssistant: A"})",
             "field 'rejected' is missing");
  fails_at_2("array.jsonl", R"([1, 2])", "expected a JSON object");
  fails_at_2("broken.jsonl", R"({"chosen": )", "invalid JSON");
  CHECK(cai::import_hh_rlhf(temp_file("ok.jsonl", ok + "\n")).preferences.size() == 1);  // plain text works too
}

TEST_CASE("human and AI labels mix by a ratio from a seed", "[feedback][data][mix]") {
  std::vector<cai::preference> human, ai;
  for (int i = 0; i < 30; ++i) human.push_back({{cai::user_turn("h" + std::to_string(i)), "a", "b"}, 1.0, "", cai::label_source::human});
  for (int i = 0; i < 100; ++i) ai.push_back({{cai::user_turn("a" + std::to_string(i)), "a", "b"}, 0.7, "p", cai::label_source::ai});
  auto count_human = [](const std::vector<cai::preference>& v) {
    std::size_t n = 0;
    for (const auto& p : v) n += p.source == cai::label_source::human;
    return n;
  };
  const auto m = cai::mix_preferences(human, ai, {.human_fraction = 0.25, .size = 40, .seed = 3});
  REQUIRE(m.size() == 40);
  CHECK(count_human(m) == 10);
  std::set<std::string> distinct;
  for (const auto& p : m) distinct.insert(p.pair.context[0].content);
  CHECK(distinct.size() == 40);  // drawn without replacement
  CHECK(cai::mix_preferences(human, ai, {.human_fraction = 0.25, .size = 40, .seed = 3}) == m);
  CHECK(cai::mix_preferences(human, ai, {.human_fraction = 0.25, .size = 40, .seed = 4}) != m);

  const auto largest = cai::mix_preferences(human, ai, {.human_fraction = 0.25});
  CHECK(largest.size() == 120);  // 30 human records at a quarter
  CHECK(count_human(largest) == 30);
  CHECK(cai::mix_preferences(human, ai, {.human_fraction = 0.0}).size() == 100);
  CHECK(count_human(cai::mix_preferences(human, ai, {.human_fraction = 1.0})) == 30);
  CHECK_THROWS_AS(cai::mix_preferences(human, ai, {.human_fraction = 0.5, .size = 100}), cai::config_error);
  CHECK_THROWS_AS(cai::mix_preferences(human, ai, {.human_fraction = 1.5}), cai::config_error);
}
