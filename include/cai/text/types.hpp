/// @file text/types.hpp
/// The vocabulary types that flow between the stages of Constitutional AI (Bai et al. 2022,
/// arXiv:2212.08073): messages and dialogues, an exchange (a dialogue and the response under judgement),
/// the steps of a critique-revision trace, comparisons of two responses, and preference labels.
/// Plain aggregates with value semantics; JSON forms live in `text/json.hpp`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cai/error.hpp"

namespace cai {

/// Who speaks a message.
enum class role : std::uint8_t { system, user, assistant };

/// The name of a role in chat formats: "system", "user", "assistant".
[[nodiscard]] constexpr std::string_view to_string(role r) noexcept {
  switch (r) {
    case role::system: return "system";
    case role::user: return "user";
    case role::assistant: return "assistant";
  }
  return "user";
}

/// Parses a chat role name. "human" is accepted for "user" (the paper's transcripts say Human).
/// @throws validation_error for any other name.
[[nodiscard]] inline role role_from_string(std::string_view name) {
  if (name == "user" || name == "human") return role::user;
  if (name == "assistant") return role::assistant;
  if (name == "system") return role::system;
  throw validation_error("unknown chat role '" + std::string(name) +
                         "': expected \"system\", \"user\" (or \"human\") or \"assistant\"");
}

/// One turn of a conversation.
struct message {
  cai::role role = role::user;
  std::string content;
  friend bool operator==(const message&, const message&) = default;
};

/// A conversation, oldest turn first.
using dialogue = std::vector<message>;

/// A single-turn dialogue holding one user message: what a red-team prompt becomes.
[[nodiscard]] inline dialogue user_turn(std::string content) {
  return dialogue{message{role::user, std::move(content)}};
}

/// A dialogue and the assistant's response to it: the thing that a critic judges and revises.
struct exchange {
  dialogue context;
  std::string response;
  friend bool operator==(const exchange&, const exchange&) = default;
};

/// One round of SL-CAI: which principle was drawn, what the critique said, and the revised response.
struct critique_step {
  std::string principle;  ///< name of the principle drawn for this round
  std::string critique;
  std::string revision;
  friend bool operator==(const critique_step&, const critique_step&) = default;
};

/// The whole history of one prompt through SL-CAI: the initial response and every round, so that the
/// SL-CAI-1..N datasets of the paper can be cut from it (`response_after(k)`).
struct revision_trace {
  std::uint64_t id = 0;  ///< position of the prompt in the input; the key for resuming
  dialogue context;
  std::string initial_response;
  std::vector<critique_step> steps;

  /// The response after `rounds` revisions (0: the initial response). Past the last round, the last.
  [[nodiscard]] const std::string& response_after(std::size_t rounds) const noexcept {
    if (rounds == 0 || steps.empty()) return initial_response;
    return steps[(rounds < steps.size() ? rounds : steps.size()) - 1].revision;
  }
  /// The final revision (the initial response when no round ran).
  [[nodiscard]] const std::string& final_response() const noexcept { return response_after(steps.size()); }

  friend bool operator==(const revision_trace&, const revision_trace&) = default;
};

/// A worked critique-revision round shown to a model before its own task (few-shot prompting): a
/// dialogue, the response, the critique request and the critique, the revision request and the revision.
struct critique_example {
  dialogue context;
  std::string response;
  std::string critique_request;
  std::string critique;
  std::string revision_request;
  std::string revision;
  friend bool operator==(const critique_example&, const critique_example&) = default;
};

/// Two candidate responses to one dialogue, to be judged against each other.
struct comparison {
  dialogue context;
  std::string response_a;
  std::string response_b;
  friend bool operator==(const comparison&, const comparison&) = default;
};

/// Who produced a preference label.
enum class label_source : std::uint8_t { ai, human };

[[nodiscard]] constexpr std::string_view to_string(label_source s) noexcept {
  return s == label_source::ai ? "ai" : "human";
}

/// @throws validation_error for a name other than "ai" or "human".
[[nodiscard]] inline label_source label_source_from_string(std::string_view name) {
  if (name == "ai") return label_source::ai;
  if (name == "human") return label_source::human;
  throw validation_error("unknown label source '" + std::string(name) + "': expected \"ai\" or \"human\"");
}

/// A soft preference label: the probability that response A is the better one, the principle it was
/// judged against (empty for human labels), and who labelled it.
struct preference {
  cai::comparison pair;
  double p_a = 0.5;  ///< P(A is better), in [0, 1]
  std::string principle;
  label_source source = label_source::ai;
  friend bool operator==(const preference&, const preference&) = default;
};

}  // namespace cai
