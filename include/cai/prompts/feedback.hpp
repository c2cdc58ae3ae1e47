/// @file prompts/feedback.hpp
/// The multiple-choice questions of AI feedback (RLAIF; Bai et al. 2022, arXiv:2212.08073, section 4.1):
/// a conversation, a comparison principle, two candidate responses as options (A) and (B), and the cue
/// "The answer is:" after which a scoring model's log-probabilities of " (A)" and " (B)" give the soft
/// preference label. Also the chain-of-thought variant (section 4.1, "Let's think step-by-step"), and
/// few-shot prompts made of labelled examples.
///
/// The question, exactly as the paper lays it out:
///
///     Consider the following conversation between a human and an assistant:
///     [HUMAN/ASSISTANT CONVERSATION]
///     [PRINCIPLE FOR MULTIPLE CHOICE EVALUATION]
///     Options:
///     (A) [RESPONSE A]
///     (B) [RESPONSE B]
///     The answer is:
///
/// where the conversation is rendered by `render_transcript` (so it starts with "\n\nHuman: ") and is
/// followed by a blank line. Responses and the question are embedded verbatim.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/error.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/text/types.hpp"

namespace cai::prompts {

/// The sentence that opens every feedback question.
inline constexpr std::string_view feedback_preamble =
    "Consider the following conversation between a human and an assistant:";
/// The line that closes a feedback question; the scoring model continues after it.
inline constexpr std::string_view answer_cue = "\nThe answer is:";
/// The line that closes a chain-of-thought feedback prompt; the model writes its reasoning after it.
inline constexpr std::string_view step_by_step_cue = "\nLet's think step-by-step:";

/// A labelled comparison shown to the feedback model before its own question (few-shot prompting).
struct feedback_example {
  comparison pair;
  std::string principle_question;
  char answer = 'A';  ///< 'A' or 'B': the option that the example marks as better
  friend bool operator==(const feedback_example&, const feedback_example&) = default;
};

namespace detail {

/// Appends the question up to, and without, its closing cue.
inline void append_feedback_body(std::string& out, const comparison& c,
                                 std::string_view principle_question) {
  out.append(feedback_preamble);
  append_transcript(out, c.context);
  out.append("\n\n").append(principle_question);
  out.append("\nOptions:\n(A) ").append(c.response_a);
  out.append("\n(B) ").append(c.response_b);
}

}  // namespace detail

/// The feedback question without its closing cue: the preamble, the conversation, a blank line, the
/// principle's question, and the two options, ending with the text of option (B). What chat models are
/// sent (`feedback_messages`), and what `feedback_question` and `cot_feedback_prompt` extend.
[[nodiscard]] inline std::string feedback_question_body(const comparison& c,
                                                        std::string_view principle_question) {
  std::string out;
  detail::append_feedback_body(out, c, principle_question);
  return out;
}

/// The multiple-choice question that asks which response is better under one principle (section 4.1):
/// "Consider the following conversation between a human and an assistant:" + `render_transcript`
/// of the context + "\n\n" + `principle_question` + "\nOptions:\n(A) " + response A + "\n(B) " +
/// response B + "\nThe answer is:".
/// @param c the context and the two responses
/// @param principle_question a comparison principle, e.g. "Which of these assistant responses is less
///        harmful?"
[[nodiscard]] inline std::string feedback_question(const comparison& c,
                                                   std::string_view principle_question) {
  std::string out;
  detail::append_feedback_body(out, c, principle_question);
  out.append(answer_cue);
  return out;
}

/// The continuations whose log-probabilities a scoring model compares after "The answer is:":
/// {" (A)", " (B)"}. Normalising the two probabilities gives P(A is better).
[[nodiscard]] inline std::pair<std::string, std::string> option_continuations() {
  return {" (A)", " (B)"};
}

/// The feedback question preceded by labelled examples: each example is its own `feedback_question`
/// followed by its answer (" (A)" or " (B)") and a blank line ("\n\n"); then the question for `c`.
/// With no examples this is `feedback_question(c, principle_question)`.
/// @throws validation_error when an example's answer is neither 'A' nor 'B'.
[[nodiscard]] inline std::string feedback_question(const comparison& c,
                                                   std::string_view principle_question,
                                                   std::span<const feedback_example> few_shot) {
  const auto [cont_a, cont_b] = option_continuations();
  std::string out;
  for (std::size_t i = 0; i < few_shot.size(); ++i) {
    const feedback_example& e = few_shot[i];
    if (e.answer != 'A' && e.answer != 'B')
      throw validation_error("feedback few-shot example " + std::to_string(i) + " has answer '" +
                             std::string(1, e.answer) + "': expected 'A' or 'B'");
    detail::append_feedback_body(out, e.pair, e.principle_question);
    out.append(answer_cue).append(e.answer == 'A' ? cont_a : cont_b).append("\n\n");
  }
  detail::append_feedback_body(out, c, principle_question);
  out.append(answer_cue);
  return out;
}

/// The chain-of-thought variant (section 4.1): the same question, closed by "\nLet's think
/// step-by-step:" instead of "\nThe answer is:". The model's continuation is its reasoning; clean it
/// with `clean_generation(text, cot_stop_sequences())` and pass it to `cot_answer_prompt`.
[[nodiscard]] inline std::string cot_feedback_prompt(const comparison& c,
                                                     std::string_view principle_question) {
  std::string out;
  detail::append_feedback_body(out, c, principle_question);
  out.append(step_by_step_cue);
  return out;
}

/// The prompt that asks for the answer after the reasoning: `cot_prompt_text` + " " + `reasoning` +
/// "\nThe answer is:". A scoring model then compares `option_continuations()` after it.
/// @param cot_prompt_text the exact text returned by `cot_feedback_prompt`
/// @param reasoning the cleaned reasoning, without leading space
[[nodiscard]] inline std::string cot_answer_prompt(std::string_view cot_prompt_text,
                                                   std::string_view reasoning) {
  std::string out;
  out.reserve(cot_prompt_text.size() + reasoning.size() + answer_cue.size() + 1);
  out.append(cot_prompt_text).append(" ").append(reasoning).append(answer_cue);
  return out;
}

/// Where chain-of-thought reasoning ends: when the model starts to give its answer
/// ("\nThe answer is"), or opens a new turn ("\n\nHuman:", "\n\nAssistant:").
[[nodiscard]] inline std::vector<std::string> cot_stop_sequences() {
  return {"\nThe answer is", "\n\nHuman:", "\n\nAssistant:"};
}

}  // namespace cai::prompts
