// test: self_critic over a type without generate is rejected with a message naming generate
// expect-error: static.assert(ion)? failed.*a language_model needs a member generate
#include <span>
#include <string>
#include <vector>

#include <cai/critique/critic.hpp>

struct not_a_model {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<std::string> generate(std::span<const cai::generation_request> requests);
#else
  std::vector<std::string> complete(std::span<const cai::generation_request> requests);
#endif
};

void make(not_a_model& m) { cai::self_critic<not_a_model> critic(m); (void)critic; }
