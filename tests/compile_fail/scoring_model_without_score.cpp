// test: a scoring model without score is rejected with a message naming score
// expect-error: static.assert(ion)? failed.*a scoring_model needs a member score
#include <span>
#include <string>
#include <vector>

#include <cai/concepts.hpp>

// Generates text (so it is a language_model) but cannot score a continuation.
struct generating_only_model {
  std::vector<std::string> generate(std::span<const cai::generation_request> requests);
#if CAI_COMPILE_FAIL_FIXED
  std::vector<double> score(std::span<const cai::scoring_request> requests);
#endif
};

CAI_ASSERT_SCORING_MODEL(generating_only_model);
