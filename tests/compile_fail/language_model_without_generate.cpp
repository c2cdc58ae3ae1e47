// test: a language model without generate is rejected with a message naming generate
// expect-error: static.assert(ion)? failed.*a language_model needs a member generate
#include <span>
#include <string>
#include <vector>

#include <cai/concepts.hpp>

struct mute_model {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<std::string> generate(std::span<const cai::generation_request> requests);
#else
  std::vector<std::string> speak(std::span<const cai::generation_request> requests);
#endif
};

CAI_ASSERT_LANGUAGE_MODEL(mute_model);
