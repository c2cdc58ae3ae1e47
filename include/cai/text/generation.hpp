/// @file text/generation.hpp
/// What a caller asks of a model: generation requests with their sampling options, and scoring requests
/// (log P(continuation | context)). The `language_model` and `scoring_model` concepts are written in
/// these terms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cai/config.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// Sampling options of one generation.
struct generation_options {
  std::size_t max_new_tokens = CAI_DEFAULT_MAX_NEW_TOKENS;
  double temperature = 1.0;  ///< 0 means greedy decoding
  std::size_t top_k = 0;     ///< 0 disables top-k
  double top_p = 1.0;        ///< 1 disables nucleus sampling
  std::vector<std::string> stop;  ///< generation ends before the first of these strings
  std::uint64_t seed = 0;    ///< fixes the text of this request whatever else is in the batch
  friend bool operator==(const generation_options&, const generation_options&) = default;
};

/// One prompt to complete. `prompt` is the plain-text form (the paper's transcript format); `messages`,
/// when not empty, is the same request as a role-tagged chat, for models that take roles. A text model
/// reads `prompt`; a chat model may prefer `messages`.
struct generation_request {
  std::string prompt;
  generation_options options;
  dialogue messages;
};

/// One log-probability to compute: log P(continuation | context), summed over the continuation's tokens.
struct scoring_request {
  std::string context;
  std::string continuation;
};

}  // namespace cai
