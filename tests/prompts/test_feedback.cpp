// Tests of cai/prompts/feedback.hpp: the multiple-choice questions of AI feedback and their
// chain-of-thought variant, byte for byte (Bai et al. 2022, arXiv:2212.08073, section 4.1).
#include <catch2/catch_test_macros.hpp>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/prompts/feedback.hpp"
#include "cai/prompts/parse.hpp"

namespace p = cai::prompts;
using cai::dialogue;
using cai::role;

namespace {

const std::string harmless_question = "Which of these assistant responses is less harmful?";

cai::comparison wifi_pair() {
  return cai::comparison{cai::user_turn("Can you help me hack into my neighbor's wifi?"),
                         "Sure, use VeryEasyHack.",
                         "I can't help with that; it would invade your neighbor's privacy."};
}

}  // namespace

TEST_CASE("feedback_question lays out the paper's multiple-choice question", "[prompts][feedback]") {
  REQUIRE(p::feedback_question(wifi_pair(), harmless_question) ==
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Can you help me hack into my neighbor's wifi?"
          "\n\nWhich of these assistant responses is less harmful?"
          "\nOptions:"
          "\n(A) Sure, use VeryEasyHack."
          "\n(B) I can't help with that; it would invade your neighbor's privacy."
          "\nThe answer is:");
}

TEST_CASE("feedback_question renders a multi-turn conversation before the question", "[prompts][feedback]") {
  const cai::comparison c{dialogue{{role::user, "Hi"}, {role::assistant, "Hello!"}, {role::user, "Insult me."}},
                          "You are dull.", "I'd rather not."};
  REQUIRE(p::feedback_question(c, "Which response is kinder?") ==
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Insult me."
          "\n\nWhich response is kinder?\nOptions:\n(A) You are dull.\n(B) I'd rather not.\nThe answer is:");
}

TEST_CASE("feedback_question sets a system message apart from the preamble", "[prompts][feedback]") {
  const cai::comparison c{dialogue{{role::system, "Be kind."}, {role::user, "Hi"}}, "Hey.", "Go away."};
  REQUIRE(p::feedback_question(c, "Which is kinder?") ==
          "Consider the following conversation between a human and an assistant:"
          "\n\nBe kind.\n\nHuman: Hi\n\nWhich is kinder?\nOptions:\n(A) Hey.\n(B) Go away.\nThe answer is:");
}

TEST_CASE("option_continuations are the two options with a leading space", "[prompts][feedback]") {
  REQUIRE(p::option_continuations() == std::pair<std::string, std::string>{" (A)", " (B)"});
}

TEST_CASE("feedback_question_body is the question without its closing cue", "[prompts][feedback]") {
  const auto c = wifi_pair();
  REQUIRE(p::feedback_question_body(c, harmless_question) + "\nThe answer is:" ==
          p::feedback_question(c, harmless_question));
  REQUIRE(p::feedback_question_body(c, harmless_question).ends_with(
      "\n(B) I can't help with that; it would invade your neighbor's privacy."));
}

TEST_CASE("few-shot feedback questions prefix labelled examples each with its answer", "[prompts][feedback]") {
  const std::vector<p::feedback_example> shots{
      {cai::comparison{cai::user_turn("Q1"), "a1", "b1"}, "Which is better?", 'B'},
      {cai::comparison{cai::user_turn("Q2"), "a2", "b2"}, "Which is safer?", 'A'}};
  const cai::comparison task{cai::user_turn("Q3"), "a3", "b3"};
  REQUIRE(p::feedback_question(task, "Which is kinder?", shots) ==
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Q1\n\nWhich is better?\nOptions:\n(A) a1\n(B) b1\nThe answer is: (B)"
          "\n\n"
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Q2\n\nWhich is safer?\nOptions:\n(A) a2\n(B) b2\nThe answer is: (A)"
          "\n\n"
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Q3\n\nWhich is kinder?\nOptions:\n(A) a3\n(B) b3\nThe answer is:");
  REQUIRE(p::feedback_question(task, "Which is kinder?", std::span<const p::feedback_example>{}) ==
          p::feedback_question(task, "Which is kinder?"));
}

TEST_CASE("a few-shot feedback example with an answer other than A or B is rejected", "[prompts][feedback]") {
  const std::vector<p::feedback_example> shots{
      {cai::comparison{cai::user_turn("Q1"), "a1", "b1"}, "Which is better?", 'C'}};
  const cai::comparison task{cai::user_turn("Q2"), "a2", "b2"};
  REQUIRE_THROWS_AS(p::feedback_question(task, "Which?", shots), cai::validation_error);
  REQUIRE_THROWS_AS(p::feedback_question(task, "Which?", shots), cai::error);
}

TEST_CASE("cot_feedback_prompt asks for step-by-step reasoning", "[prompts][feedback]") {
  REQUIRE(p::cot_feedback_prompt(wifi_pair(), harmless_question) ==
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Can you help me hack into my neighbor's wifi?"
          "\n\nWhich of these assistant responses is less harmful?"
          "\nOptions:"
          "\n(A) Sure, use VeryEasyHack."
          "\n(B) I can't help with that; it would invade your neighbor's privacy."
          "\nLet's think step-by-step:");
}

TEST_CASE("cot_answer_prompt appends the reasoning and the answer cue", "[prompts][feedback]") {
  const std::string cot = p::cot_feedback_prompt(wifi_pair(), harmless_question);
  const std::string generated =
      " Response (A) helps with an illegal intrusion, while (B) declines politely.\nThe answer is: (B)";
  const std::string reasoning = p::clean_generation(generated, p::cot_stop_sequences());
  REQUIRE(reasoning == "Response (A) helps with an illegal intrusion, while (B) declines politely.");
  REQUIRE(p::cot_answer_prompt(cot, reasoning) ==
          "Consider the following conversation between a human and an assistant:"
          "\n\nHuman: Can you help me hack into my neighbor's wifi?"
          "\n\nWhich of these assistant responses is less harmful?"
          "\nOptions:"
          "\n(A) Sure, use VeryEasyHack."
          "\n(B) I can't help with that; it would invade your neighbor's privacy."
          "\nLet's think step-by-step: Response (A) helps with an illegal intrusion, while (B) declines "
          "politely."
          "\nThe answer is:");
}

TEST_CASE("cot_stop_sequences end the reasoning at the answer or a new turn", "[prompts][feedback]") {
  REQUIRE(p::cot_stop_sequences() ==
          std::vector<std::string>{"\nThe answer is", "\n\nHuman:", "\n\nAssistant:"});
  REQUIRE(p::clean_generation(" Both are fine.\n\nHuman: next", p::cot_stop_sequences()) == "Both are fine.");
}
