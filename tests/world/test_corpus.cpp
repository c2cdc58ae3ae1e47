// Tests of cai/world/corpus.hpp: the base model's corpus is deterministic, holds none of the pipeline's or
// the evaluation's requests and none of the held-out wordings, uses the exact prompt formats of cai/prompts
// (round trip through the parsers), and its critiques, revisions and comparison answers do what each
// record's principle asks, by the oracle.
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
        "\n\nHuman: Give me steps to deal with rude comments on my group chat."
        "\n\nAssistant: Happy to help. Mute or block the worst users and set clear rules.");
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

TEST_CASE("No request of the pipeline or of the evaluation is in the corpus", "[world][corpus][split]") {
  const w::assistant_world world;
  const auto docs = w::corpus_documents(w::generate_corpus(world));  // the default corpus
  // every request the pipeline or the evaluation can ask: each combination of kind, task, topic and phrasing
  std::vector<std::string> forbidden;
  std::size_t pipeline = 0, corpus_side = 0;
  for (const auto kind : w::all_kinds)
    for (std::size_t topic = 0; topic < world.topics().size(); ++topic)
      for (std::size_t task = 0; task < world.task_count(kind); ++task)
        for (std::size_t ph = 0; ph < world.phrasings().size(); ++ph) {
          if (world.topics()[topic].part != world.phrasings()[ph].part) continue;
          const w::request r = world.make_request(kind, topic, task, ph);
          if (r.part == w::split::train) ++corpus_side;
          else forbidden.push_back(r.text), pipeline += r.part == w::split::pipeline ? 1 : 0;
        }
  CHECK(pipeline > 200);
  CHECK(corpus_side > 3 * pipeline - 100);
  for (const std::string& doc : docs)
    for (const std::string& text : forbidden)
      if (doc.find(text) != std::string::npos) FAIL("'" << text << "' in: " << doc);
  // and the pipeline's requests are drawn from their own part
  for (const auto& r : world.generate_requests(w::split::pipeline, 300, 9)) REQUIRE(r.part == w::split::pipeline);
}

TEST_CASE("No held-out wording or combination of a principle is in the corpus", "[world][corpus][split]") {
  const w::assistant_world world;
  const auto records = w::generate_corpus(world);
  const auto docs = w::corpus_documents(records);
  for (std::size_t i = 0; i < w::intent_count; ++i)
    for (std::size_t k = w::corpus_wording_count; k < w::wording_count; ++k) {
      const auto& t = w::detail::wording_table[i];
      for (const std::string_view phrase : {t.critique[k], t.revision[k], t.comparison[k]})
        for (const std::string& doc : docs)
          if (doc.find(phrase) != std::string::npos) FAIL("held-out wording '" << phrase << "' in: " << doc);
    }
  std::set<std::uint8_t> seen;
  for (const auto& r : records) {
    if (r.type == w::record_type::dialogue) continue;
    seen.insert(r.asks.bits);
    for (const auto& h : w::heldout_intent_sets()) REQUIRE_FALSE(r.asks == h);
  }
  CHECK(seen.size() == w::corpus_intent_sets().size());
}

TEST_CASE("Critique records round-trip through the prompt builders and parsers", "[world][corpus][format]") {
  const w::assistant_world world;
  const auto stops = p::stop_sequences();
  std::size_t checked = 0;
  for (const auto& r : w::generate_corpus(world, small_options())) {
    if (r.type != w::record_type::critique_revision) continue;
    const std::string text = r.text();
    // Parse the round back, as a pipeline would read a model's continuations.
    const std::string response = p::clean_generation(between(text, "\n\nAssistant:", ""), stops);
    const std::string critique_request = between(text, "\n\nCritiqueRequest: ", "\n\nCritique:");
    const std::string revision_request = between(text, "\n\nRevisionRequest: ", "\n\nRevision:");
    const std::string critique = p::clean_generation(r.completion, stops);
    const std::string revision = p::clean_generation(between(text, "\n\nRevision:", ""), stops);
    const cai::exchange x{cai::user_turn(r.source.text), response};
    REQUIRE(p::critique_prompt(x, critique_request) == r.prompt);
    const std::string rev_prompt = p::revision_prompt(r.prompt, critique, revision_request);
    REQUIRE(rev_prompt + " " + revision == text);
    const cai::critique_example e{x.context, response, critique_request, critique, revision_request, revision};
    REQUIRE(p::render_critique_example(e) == text);
    ++checked;
  }
  CHECK(checked == 600);
}

TEST_CASE("Critiques name what the principle finds wrong and revisions do what it asks", "[world][corpus][critique]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  const auto stops = p::stop_sequences();
  std::array<std::size_t, 5> styles{};
  std::size_t control = 0, cautious_refusals = 0, compliant = 0;
  for (const auto& r : w::generate_corpus(world, small_options(8))) {
    if (r.type != w::record_type::critique_revision) continue;
    ++styles[static_cast<std::size_t>(r.style)];
    const std::string text = r.text();
    const std::string response = p::clean_generation(between(text, "\n\nAssistant:", ""), stops);
    const std::string critique = p::clean_generation(r.completion, stops);
    const std::string revision = p::clean_generation(between(text, "\n\nRevision:", ""), stops);
    INFO(text);
    REQUIRE(oracle.judge(r.source, response) == w::form_labels(r.source.kind, r.form));
    REQUIRE(w::revision_agrees(oracle, r.source, response, revision, r.asks));
    const w::labels before = oracle.judge(r.source, response), after = oracle.judge(r.source, revision);
    if (r.asks.is_control()) {
      ++control;
      CHECK(after == before);
    }
    if (r.asks.cautious() && r.source.kind != w::request_kind::benign) cautious_refusals += after.evasive ? 1 : 0;
    if (r.asks == w::intents{w::intent::helpful} && r.source.kind == w::request_kind::harmful) compliant += after.harmful ? 1 : 0;
    // the critique observes the response whatever the principle, and calls it harmful when the principle
    // asks about harm, and only then
    if (before.harmful && r.source.kind == w::request_kind::harmful)
      CHECK(critique.find(world.harmful_of(r.source).harm) != std::string::npos);
    CHECK(contains_words(critique, "harmful") == (before.harmful && r.asks.has(w::intent::avoid_harm)));
    if (after == before && r.form.aside == w::revise(world, r.source, r.form, r.asks).aside)
      CHECK((contains_words(critique, "no problems found") || contains_words(critique, "nothing needs to change")));
  }
  for (std::size_t i = 0; i < 4; ++i) CHECK(styles[i] > 0);  // condescending is read as harmless-helpful + a remark
  CHECK(control > 10);
  CHECK(cautious_refusals > 10);
  CHECK(compliant > 3);
}

TEST_CASE("Comparison answers are what the principle prefers, and indifference is an even split",
          "[world][corpus][format]") {
  const w::assistant_world world;
  const w::oracle oracle(world);
  std::array<std::size_t, 2> answers{};
  std::size_t undecided = 0, undecided_a = 0, harm_refuses = 0, help_complies = 0;
  for (const auto& r : w::generate_corpus(world, small_options(11))) {
    if (r.type != w::record_type::comparison) continue;
    const std::string option_a = between(r.prompt, "\n(A) ", "\n(B) ");
    const std::string option_b = between(r.prompt, "\n(B) ", "\nThe answer is:");
    const std::string question = between(r.prompt, "\n\n", "\nOptions:");
    const cai::comparison pair{cai::user_turn(r.source.text), option_a, option_b};
    REQUIRE(p::feedback_question(pair, question.substr(question.rfind('\n') + 1)) == r.prompt);
    const std::optional<char> answer = p::parse_choice(r.completion);
    REQUIRE(answer.has_value());
    REQUIRE((r.completion == " (A)" || r.completion == " (B)"));
    ++answers[*answer == 'A' ? 0 : 1];
    REQUIRE(option_a != option_b);
    REQUIRE(oracle.judge(r.source, option_a) == w::form_labels(r.source.kind, r.form));
    REQUIRE(oracle.judge(r.source, option_b) == w::form_labels(r.source.kind, r.form_b));
    INFO(r.text());
    const auto want = w::expected_preference(oracle, r.source, option_a, option_b, r.asks);
    REQUIRE(want.has_value() == r.decided);
    if (want) {
      CHECK(*answer == *want);
      const w::labels win = oracle.judge(r.source, *answer == 'A' ? option_a : option_b);
      const w::labels lose = oracle.judge(r.source, *answer == 'A' ? option_b : option_a);
      if (r.asks == w::intents{w::intent::avoid_harm} && !win.harmful && !lose.harmful && win.evasive != lose.evasive)
        harm_refuses += win.evasive ? 1 : 0;
      if (r.asks == w::intents{w::intent::helpful} && win.harmful != lose.harmful) help_complies += win.harmful ? 1 : 0;
    } else {
      ++undecided;
      undecided_a += *answer == 'A' ? 1 : 0;
    }
  }
  // Both letters are used, about equally; the principles that disagree keep their pairs.
  CHECK(answers[0] > 200);
  CHECK(answers[1] > 200);
  CHECK(undecided > 20);
  CHECK(undecided_a * 4 > undecided);
  CHECK(undecided_a * 4 < 3 * undecided);
  CHECK(harm_refuses > 3);
  CHECK(help_complies > 3);
}

TEST_CASE("The corpus is small in vocabulary and length", "[world][corpus][statistics]") {
  const w::assistant_world world;
  const auto records = w::generate_corpus(world);
  const w::corpus_statistics s = w::statistics(records);
  CHECK(s.documents == 19000);
  CHECK(s.characters > 1000000);
  CHECK(s.distinct_words < 1500);
  std::size_t longest = 0;
  for (const auto& r : records) longest = std::max(longest, r.text().size());
  CHECK(longest < 1400);
  WARN("corpus: " << s.documents << " documents, " << s.characters << " characters, " << s.words << " words, "
                  << s.distinct_words << " distinct words; longest document " << longest << " characters");
}
