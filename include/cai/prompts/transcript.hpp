/// @file prompts/transcript.hpp
/// The plain-text transcript format of Constitutional AI (Bai et al. 2022, arXiv:2212.08073, section
/// 3.1 and the few-shot prompts of its appendix): a conversation written as
/// "\n\nHuman: ...\n\nAssistant: ...", extended for SL-CAI by
/// the critique and revision turns ("CritiqueRequest:", "Critique:", "RevisionRequest:", "Revision:").
/// This header holds the turn markers, the renderers of dialogues, exchanges and worked few-shot
/// examples, the critique and revision prompts that a text model continues, and the stop sequences that
/// end its continuation. Output parsing (cutting a continuation at a new turn, neutralising markers in
/// outside text) lives in `prompts/parse.hpp`.
///
/// Layout rules, applied by every function here (docs/prompts.md shows literal examples):
///  1. A user or assistant turn is written "\n\n" + marker + " " + content, so a transcript starts with
///     a blank line and every turn opens a paragraph.
///  2. A system message has no marker: it is written as a bare paragraph, its content alone, preceded by
///     "\n\n" unless it is the very first thing of the text being built. A system message that opens a
///     dialogue therefore renders as "You are kind.\n\nHuman: ..." (the layout of Anthropic's text
///     prompts, with the system text before the first Human turn); embedded after other text (a
///     few-shot separator, the feedback preamble) it gets a blank line so that it does not run into
///     that text.
///  3. Content is embedded verbatim. Text from outside (red-team prompts, user data) should first go
///     through `sanitize_for_transcript` (parse.hpp) so that it cannot open a turn of its own.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cai/text/types.hpp"

namespace cai::prompts {

/// Marker of a user turn.
inline constexpr std::string_view human = "Human:";
/// Marker of an assistant turn.
inline constexpr std::string_view assistant = "Assistant:";
/// Marker of the turn that asks for a critique (SL-CAI).
inline constexpr std::string_view critique_request_marker = "CritiqueRequest:";
/// Marker of the turn that holds the critique.
inline constexpr std::string_view critique_marker = "Critique:";
/// Marker of the turn that asks for a revision.
inline constexpr std::string_view revision_request_marker = "RevisionRequest:";
/// Marker of the turn that holds the revision.
inline constexpr std::string_view revision_marker = "Revision:";

/// The line that separates worked examples from each other and from the task in a few-shot prompt:
/// a blank line, then twenty dashes. It is also one of the `stop_sequences()`.
inline constexpr std::string_view few_shot_separator = "\n\n--------------------";

/// The six turn markers, in the order a critique-revision transcript uses them.
[[nodiscard]] constexpr std::array<std::string_view, 6> turn_markers() noexcept {
  return {human, assistant, critique_request_marker, critique_marker, revision_request_marker,
          revision_marker};
}

namespace detail {

/// The marker of a user or assistant turn (`human` for user, `assistant` for assistant); empty for
/// system, which has none.
[[nodiscard]] constexpr std::string_view marker_of(role r) noexcept {
  switch (r) {
    case role::user: return human;
    case role::assistant: return assistant;
    case role::system: return {};
  }
  return human;
}

/// Appends "\n\n" + marker + " " + content.
inline void append_turn(std::string& out, std::string_view marker, std::string_view content) {
  out.append("\n\n").append(marker).append(" ").append(content);
}

/// Appends a dialogue by the layout rules of this header (system messages as bare paragraphs, preceded
/// by a blank line unless `out` is empty).
inline void append_transcript(std::string& out, const dialogue& d) {
  for (const message& m : d) {
    if (m.role == role::system) {
      if (!out.empty()) out.append("\n\n");
      out.append(m.content);
    } else {
      append_turn(out, marker_of(m.role), m.content);
    }
  }
}

/// Appends a dialogue and the assistant's response to it.
inline void append_exchange(std::string& out, const dialogue& context, std::string_view response) {
  append_transcript(out, context);
  append_turn(out, assistant, response);
}

/// Appends one worked critique-revision example.
inline void append_critique_example(std::string& out, const critique_example& e) {
  append_exchange(out, e.context, e.response);
  append_turn(out, critique_request_marker, e.critique_request);
  append_turn(out, critique_marker, e.critique);
  append_turn(out, revision_request_marker, e.revision_request);
  append_turn(out, revision_marker, e.revision);
}

/// Appends the few-shot examples, separated by `few_shot_separator`, with no separator after the last.
inline void append_few_shot(std::string& out, std::span<const critique_example> examples) {
  for (std::size_t i = 0; i < examples.size(); ++i) {
    if (i != 0) out.append(few_shot_separator);
    append_critique_example(out, examples[i]);
  }
}

}  // namespace detail

/// Renders a dialogue in the paper's transcript format: each user turn as "\n\nHuman: <content>", each
/// assistant turn as "\n\nAssistant: <content>". A system message is written as its bare content (no
/// marker), at the start when it opens the dialogue, otherwise as a paragraph of its own ("\n\n" +
/// content). An empty dialogue renders as "".
///
/// Example: {user "Hi", assistant "Hello!"} -> "\n\nHuman: Hi\n\nAssistant: Hello!".
[[nodiscard]] inline std::string render_transcript(const dialogue& d) {
  std::string out;
  detail::append_transcript(out, d);
  return out;
}

/// The prompt that asks a text model for the next assistant turn: `render_transcript(d)` followed by
/// "\n\nAssistant:". The model's continuation (usually starting with a space) is the response.
/// @pre `d` normally ends with a user turn.
[[nodiscard]] inline std::string initial_prompt(const dialogue& d) {
  std::string out = render_transcript(d);
  out.append("\n\n").append(assistant);
  return out;
}

/// Renders an exchange: `render_transcript(x.context)` + "\n\nAssistant: " + `x.response`.
[[nodiscard]] inline std::string render_exchange(const exchange& x) {
  std::string out;
  detail::append_exchange(out, x.context, x.response);
  return out;
}

/// Renders one worked critique-revision example (the paper's few-shot format):
/// `render_exchange` of its dialogue and response, then "\n\nCritiqueRequest: ", "\n\nCritique: ",
/// "\n\nRevisionRequest: " and "\n\nRevision: ", each followed by its text.
[[nodiscard]] inline std::string render_critique_example(const critique_example& e) {
  std::string out;
  detail::append_critique_example(out, e);
  return out;
}

/// Renders worked examples one after another, separated by `few_shot_separator`
/// ("\n\n--------------------"). The block does not end with a separator: it ends with the last
/// example's revision, and whoever appends a task appends the separator and then the task (which starts
/// with "\n\nHuman:"), as `critique_prompt` does. No examples give "".
[[nodiscard]] inline std::string few_shot_block(std::span<const critique_example> examples) {
  std::string out;
  detail::append_few_shot(out, examples);
  return out;
}

/// The prompt that asks a text model to critique a response (SL-CAI, first half of a round):
/// `few_shot_block(few_shot)`, then `few_shot_separator` when there are examples, then
/// `render_exchange(x)` + "\n\nCritiqueRequest: " + `critique_request` + "\n\nCritique:".
/// @param x the dialogue and the response to critique
/// @param critique_request the principle's critique request, without its marker
/// @param few_shot worked examples shown first (may be empty)
[[nodiscard]] inline std::string critique_prompt(const exchange& x, std::string_view critique_request,
                                                 std::span<const critique_example> few_shot = {}) {
  std::string out;
  detail::append_few_shot(out, few_shot);
  if (!few_shot.empty()) out.append(few_shot_separator);
  detail::append_exchange(out, x.context, x.response);
  detail::append_turn(out, critique_request_marker, critique_request);
  out.append("\n\n").append(critique_marker);
  return out;
}

/// The prompt that asks a text model to revise (SL-CAI, second half of a round): the critique prompt as
/// sent, the critique the model wrote (after " "), then "\n\nRevisionRequest: " + `revision_request` +
/// "\n\nRevision:".
/// @param critique_prompt_text the exact text returned by `critique_prompt`
/// @param critique the cleaned critique (see `clean_generation`), without leading space
/// @param revision_request the principle's revision request, without its marker
[[nodiscard]] inline std::string revision_prompt(std::string_view critique_prompt_text,
                                                 std::string_view critique,
                                                 std::string_view revision_request) {
  std::string out;
  out.reserve(critique_prompt_text.size() + critique.size() + revision_request.size() + 48);
  out.append(critique_prompt_text).append(" ").append(critique);
  detail::append_turn(out, revision_request_marker, revision_request);
  out.append("\n\n").append(revision_marker);
  return out;
}

/// The stop sequences of every generation in the transcript format: a new paragraph that opens any
/// turn, and the few-shot separator. In order: "\n\nHuman:", "\n\nAssistant:", "\n\nCritiqueRequest:",
/// "\n\nCritique:", "\n\nRevisionRequest:", "\n\nRevision:", "\n\n--------------------".
[[nodiscard]] inline std::vector<std::string> stop_sequences() {
  std::vector<std::string> out;
  out.reserve(turn_markers().size() + 1);
  for (std::string_view m : turn_markers()) out.push_back("\n\n" + std::string(m));
  out.emplace_back(few_shot_separator);
  return out;
}

}  // namespace cai::prompts
