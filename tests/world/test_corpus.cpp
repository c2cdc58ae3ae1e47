// Tests of cai/world/corpus.hpp: the base model's corpus is deterministic, keeps the held-out topics and
// phrasings out, uses the exact prompt formats of cai/prompts (round trip through the parsers), and its
// critiques, revisions and comparison answers agree with the world's ground truth.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/prompts/feedback.hpp"
#include "cai/prompts/parse.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/world.hpp"
#include "cai/world/oracle.hpp"

namespace w = cai::world;
namespace p = cai::prompts;

namespace {

w::corpus_options small_options(std::uint64_t seed = 5) {
  w::corpus_options o;
  o.seed = seed;
  o.dialogues = 600;
  o.critiques = 600;
  o.comparisons = 600;
  return o;
}

/// The text between `begin` and `end` in `s` (the first `begin`, then the first `end` after it).
std::string between(const std::string& s, std::string_view begin, std::string_view end) {
  const std::size_t b = s.find(begin);
  REQUIRE(b != std::string::npos);
  const std::size_t from = b + begin.size();
  const std::size_t e = end.empty() ? s.size() : s.find(end, from);
  REQUIRE(e != std::string::npos);
  return s.substr(from, e - from);
}

bool contains_words(const std::string& text, const std::string& words) {
  return (" " + w::detail::normalize(text) + " ").find(" " + w::detail::normalize(words) + " ") != std::string::npos;
}

}  // namespace

TEST_CASE("The same seed gives the same corpus", "[world][corpus][determinism]") {
  const w::assistant_world world;
  const auto a = w::generate_corpus(world, small_options(5));
  const auto b = w::generate_corpus(world, small_options(5));
  const auto c = w::generate_corpus(world, small_options(6));
  REQUIRE(w::corpus_documents(a) == w::corpus_documents(b));
  REQUIRE(w::corpus_documents(a) != w::corpus_documents(c));
}

TEST_CASE("A record does not depend on the sizes of the other record types", "[world][corpus][determinism]") {
  const w::assistant_world world;
  w::corpus_options small = small_options();
  small.shuffle = false;
  small.dialogues = 50;
  w::corpus_options large = small;
  large.dialogues = 200;
  large.comparisons = 10;
  const auto a = w::generate_corpus(world, small);
  const auto b = w::generate_corpus(world, large);
  for (std::size_t i = 0; i < 50; ++i) REQUIRE(a[i].text() == b[i].text());
  // The first critique record follows the dialogues in both.
  REQUIRE(a[50].type == w::record_type::critique_revision);
  REQUIRE(a[50].text() == b[200].text());
}

TEST_CASE("A fixed seed gives a known first document on every platform", "[world][corpus][determinism]") {
  const w::assistant_world world;
  w::corpus_options o;
  o.dialogues = 1;
  o.critiques = 0;
  o.comparisons = 0;
  const auto records = w::generate_corpus(world, o);
  REQUIRE(records.size() == 1);
  CHECK(records[0].text() ==
        "\n\nHuman: What is the best way to understand the fees on my credit card?"
        "\n\nAssistant: Here is how. Read the fee table and ask the provider about any charge you do not know.");
}

TEST_CASE("The corpus holds the requested numbers of each record type with balanced kinds", "[world][corpus]") {
  const w::assistant_world world;
  w::corpus_options o = small_options();
  o.dialogues = 300;
  o.critiques = 150;
  o.comparisons = 90;
  const auto records = w::generate_corpus(world, o);
  REQUIRE(records.size() == 540);
  std::array<std::array<std::size_t, 3>, 3> count{};
  for (const auto& r : records) ++count[static_cast<std::size_t>(r.type)][static_cast<std::size_t>(r.source.kind)];
  CHECK(count[0] == std::array<std::size_t, 3>{100, 100, 100});
  CHECK(count[1] == std::array<std::size_t, 3>{50, 50, 50});
  CHECK(count[2] == std::array<std::size_t, 3>{30, 30, 30});
  // Shuffled: the first records are not all dialogues.
  std::size_t dialogues_first = 0;
  for (std::size_t i = 0; i < 30; ++i) dialogues_first += records[i].type == w::record_type::dialogue ? 1 : 0;
  CHECK(dialogues_first < 30);
}

TEST_CASE("Held-out topics and phrasings never appear in the training corpus", "[world][corpus][split]") {
  const w::assistant_world world;
  const auto records = w::generate_corpus(world);  // the default sizes
  const auto docs = w::corpus_documents(records);
  std::vector<std::string> held_out;
  for (std::size_t t : world.topic_indices(w::split::eval)) held_out.push_back(world.topics()[t].name);
  for (std::size_t ph : world.phrasing_indices(w::split::eval)) {
    const std::string& frame = world.phrasings()[ph].frame;
    held_out.push_back(frame.substr(0, frame.find("{a}")));
  }
  REQUIRE(held_out.size() == 13);
  std::set<std::string> train_topics_seen;
  for (const std::string& doc : docs) {
    const std::string padded = " " + w::detail::normalize(doc) + " ";
    for (const std::string& h : held_out) {
      if (padded.find(" " + w::detail::normalize(h) + " ") != std::string::npos) FAIL("'" << h << "' in: " << doc);
    }
  }
  for (const auto& r : records) {
    REQUIRE(r.source.part == w::split::train);
    train_topics_seen.insert(world.topics()[r.source.topic].name);
  }
  CHECK(train_topics_seen.size() == 30);
}

TEST_CASE("Dialogue records are the transcript format with a helpful-only response", "[world][corpus][format]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  const auto stops = p::stop_sequences();
  for (const auto& r : w::generate_corpus(world, small_options())) {
    if (r.type != w::record_type::dialogue) continue;
    REQUIRE(r.prompt == p::initial_prompt(cai::user_turn(r.source.text)));
    REQUIRE(r.completion.starts_with(" "));
    const std::string response = p::clean_generation(r.completion, stops);
    REQUIRE(" " + response == r.completion);
    REQUIRE(p::render_exchange(cai::exchange{cai::user_turn(r.source.text), response}) == r.text());
    REQUIRE(r.style == w::response_style::harmful_compliance);
    REQUIRE(oracle.judge(r.source, response) == w::style_labels(r.source.kind, r.style));
    if (r.source.kind == w::request_kind::harmful) REQUIRE(oracle.judge(r.source, response).harmful);
  }
}

TEST_CASE("Critique records round-trip through the prompt builders and parsers", "[world][corpus][format]") {
  const w::assistant_world world;
  const cai::constitution c = w::world_constitution();
  const auto stops = p::stop_sequences();
  std::set<std::string> principles;
  std::size_t checked = 0;
  for (const auto& r : w::generate_corpus(world, small_options())) {
    if (r.type != w::record_type::critique_revision) continue;
    const cai::constitutional_principle* principle = c.find(r.principle);
    REQUIRE(principle != nullptr);
    principles.insert(r.principle);
    const std::string text = r.text();
    // Parse the round back, as a pipeline would read a model's continuations.
    const std::string response = p::clean_generation(between(text, "\n\nAssistant:", ""), stops);
    const std::string critique = p::clean_generation(r.completion, stops);
    const std::string revision = p::clean_generation(between(text, "\n\nRevision:", ""), stops);
    const cai::exchange x{cai::user_turn(r.source.text), response};
    REQUIRE(p::critique_prompt(x, principle->critique_request) == r.prompt);
    const std::string rev_prompt = p::revision_prompt(r.prompt, critique, principle->revision_request);
    REQUIRE(rev_prompt + " " + revision == text);
    const cai::critique_example e{x.context, response, principle->critique_request, critique,
                                  principle->revision_request, revision};
    REQUIRE(p::render_critique_example(e) == text);
    ++checked;
  }
  CHECK(checked == 600);
  CHECK(principles.size() == c.principles.size());
}

TEST_CASE("Critiques name the flaws of the critiqued response and revisions are harmless and helpful",
          "[world][corpus][critique]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  const auto stops = p::stop_sequences();
  std::array<std::size_t, 5> styles{};
  for (const auto& r : w::generate_corpus(world, small_options(8))) {
    if (r.type != w::record_type::critique_revision) continue;
    ++styles[static_cast<std::size_t>(r.style)];
    const std::string text = r.text();
    const std::string response = p::clean_generation(between(text, "\n\nAssistant:", ""), stops);
    const std::string critique = p::clean_generation(r.completion, stops);
    const std::string revision = p::clean_generation(between(text, "\n\nRevision:", ""), stops);
    const w::labels truth = w::style_labels(r.source.kind, r.style);
    INFO(text);
    REQUIRE(oracle.judge(r.source, response) == truth);
    REQUIRE(oracle.judge(r.source, revision) == w::labels{false, true, false, false});
    CHECK(contains_words(critique, "harmful") == truth.harmful);
    CHECK((contains_words(critique, "evasive") || contains_words(critique, "refuses")) == truth.evasive);
    CHECK((contains_words(critique, "condescending") || contains_words(critique, "talks down")) ==
          truth.disrespectful);
    const bool fine = !truth.harmful && !truth.evasive && !truth.disrespectful;
    CHECK((contains_words(critique, "no problems found") || contains_words(critique, "the response is fine")) == fine);
    if (truth.harmful && r.source.kind == w::request_kind::harmful)
      CHECK(critique.find(world.harmful_of(r.source).harm) != std::string::npos);
  }
  for (std::size_t n : styles) CHECK(n > 0);
  CHECK(styles[static_cast<std::size_t>(w::response_style::harmful_compliance)] > 200);
}

TEST_CASE("Comparison records are the paper's question with the better answer", "[world][corpus][format]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  const cai::constitution c = w::world_constitution();
  std::array<std::size_t, 2> answers{};
  for (const auto& r : w::generate_corpus(world, small_options(11))) {
    if (r.type != w::record_type::comparison) continue;
    const cai::constitutional_principle* principle = c.find(r.principle);
    REQUIRE(principle != nullptr);
    const std::string option_a = between(r.prompt, "\n(A) ", "\n(B) ");
    const std::string option_b = between(r.prompt, "\n(B) ", "\nThe answer is:");
    const cai::comparison pair{cai::user_turn(r.source.text), option_a, option_b};
    REQUIRE(p::feedback_question(pair, principle->comparison_question) == r.prompt);
    const std::optional<char> answer = p::parse_choice(r.completion);
    REQUIRE(answer.has_value());
    REQUIRE((r.completion == " (A)" || r.completion == " (B)"));
    ++answers[*answer == 'A' ? 0 : 1];
    REQUIRE(option_a != option_b);
    // The answer is the better option by the oracle: less harmful, else no worse anywhere and better somewhere.
    const w::labels a = oracle.judge(r.source, option_a);
    const w::labels b = oracle.judge(r.source, option_b);
    REQUIRE(a == w::style_labels(r.source.kind, r.style));
    REQUIRE(b == w::style_labels(r.source.kind, r.style_b));
    const w::labels& win = *answer == 'A' ? a : b;
    const w::labels& lose = *answer == 'A' ? b : a;
    INFO(r.text());
    if (win.harmful != lose.harmful) {
      CHECK_FALSE(win.harmful);
    } else {
      CHECK(win.helpful >= lose.helpful);
      CHECK(win.evasive <= lose.evasive);
      CHECK(win.disrespectful <= lose.disrespectful);
      CHECK(win != lose);
    }
  }
  // Both letters are used, about equally.
  CHECK(answers[0] > 200);
  CHECK(answers[1] > 200);
}

TEST_CASE("The corpus is small in vocabulary and length", "[world][corpus][statistics]") {
  const w::assistant_world world;
  const auto records = w::generate_corpus(world);
  const w::corpus_statistics s = w::statistics(records);
  CHECK(s.documents == 12000);
  CHECK(s.characters > 1000000);
  CHECK(s.distinct_words < 1200);
  std::size_t longest = 0;
  for (const auto& r : records) longest = std::max(longest, r.text().size());
  CHECK(longest < 1000);
  WARN("corpus: " << s.documents << " documents, " << s.characters << " characters, " << s.words << " words, "
                  << s.distinct_words << " distinct words; longest document " << longest << " characters");
}

TEST_CASE("The corpus accepts another constitution", "[world][corpus]") {
  const w::assistant_world world;
  cai::constitution c = w::world_constitution();
  c.principles.resize(1);
  const auto records = w::generate_corpus(world, small_options(), c);
  for (const auto& r : records)
    if (r.type != w::record_type::dialogue) REQUIRE(r.principle == c.principles[0].name);
  cai::constitution empty;
  empty.name = "empty";
  CHECK_THROWS_AS(w::generate_corpus(world, small_options(), empty), cai::validation_error);
}
