/// @file prompts/chat.hpp
/// The prompts of Constitutional AI (Bai et al. 2022, arXiv:2212.08073) as role-tagged message lists,
/// for models that take chats instead of plain text (instruction-tuned models with a chat template,
/// OpenAI-compatible servers). The convention is llm-swarm's (Hugging Face's CAI recipe): a critique
/// request is a user turn and the critique the assistant's reply; a revision request is a user turn and
/// the revision the reply. A worked example is therefore six turns:
///
///     user: <prompt>   assistant: <response>   user: <critique request>
///     assistant: <critique>   user: <revision request>   assistant: <revision>
///
/// The texts are the same bare strings that `transcript.hpp` embeds after its markers; no marker appears
/// in a chat. The plain-text forms of the same requests are in `transcript.hpp` and `feedback.hpp`.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "cai/prompts/feedback.hpp"
#include "cai/text/types.hpp"

namespace cai::prompts {

/// The chat that asks a model to critique `x.response` under one principle:
///  1. the system messages that open `x.context`, if any (chat templates take a system message only at
///     the start, so they come before the examples);
///  2. each few-shot example as the six-turn pattern: its context (its own system messages left out,
///     since they cannot appear mid-chat), assistant response, user critique request, assistant
///     critique, user revision request, assistant revision;
///  3. the rest of `x.context`, then `x.response` as an assistant turn, then `critique_request` as a
///     user turn.
/// The model's reply is the critique. Without examples the list is `x.context` + assistant response +
/// user critique request.
[[nodiscard]] inline dialogue critique_messages(const exchange& x, std::string_view critique_request,
                                                std::span<const critique_example> few_shot = {}) {
  std::size_t lead = 0;
  while (lead < x.context.size() && x.context[lead].role == role::system) ++lead;
  dialogue out;
  out.reserve(x.context.size() + 2 + few_shot.size() * 8);
  out.insert(out.end(), x.context.begin(), x.context.begin() + static_cast<std::ptrdiff_t>(lead));
  for (const critique_example& e : few_shot) {
    for (const message& m : e.context)
      if (m.role != role::system) out.push_back(m);
    out.push_back(message{role::assistant, e.response});
    out.push_back(message{role::user, e.critique_request});
    out.push_back(message{role::assistant, e.critique});
    out.push_back(message{role::user, e.revision_request});
    out.push_back(message{role::assistant, e.revision});
  }
  out.insert(out.end(), x.context.begin() + static_cast<std::ptrdiff_t>(lead), x.context.end());
  out.push_back(message{role::assistant, x.response});
  out.push_back(message{role::user, std::string(critique_request)});
  return out;
}

/// The chat that asks for the revision: `critique_msgs` (as returned by `critique_messages`) with the
/// model's critique appended as an assistant turn and `revision_request` as a user turn. The model's
/// reply is the revision.
/// @param critique the cleaned critique
[[nodiscard]] inline dialogue revision_messages(dialogue critique_msgs, std::string_view critique,
                                                std::string_view revision_request) {
  critique_msgs.push_back(message{role::assistant, std::string(critique)});
  critique_msgs.push_back(message{role::user, std::string(revision_request)});
  return critique_msgs;
}

/// The feedback question for a chat model: one user message holding `feedback_question_body` (the
/// question without the closing "The answer is:" line, which a chat model does not need). Read the
/// reply with `parse_choice` (parse.hpp).
[[nodiscard]] inline dialogue feedback_messages(const comparison& c,
                                                std::string_view principle_question) {
  return dialogue{message{role::user, feedback_question_body(c, principle_question)}};
}

}  // namespace cai::prompts
