// test: calling a function constrained by language_model with a bad type names the concept
// expect-error: no matching function for call to [^ (]*use
// expect-error: (satisfaction of|does not satisfy) [^ ]*(cai::)?language_model
#include <span>
#include <string>
#include <vector>

#include <cai/concepts.hpp>

template <cai::language_model M>
void use(M&) {}

struct echo_model {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<std::string> generate(std::span<const cai::generation_request> requests);
#else
  std::vector<std::string> echo(std::span<const cai::generation_request> requests);
#endif
};

void call() {
  echo_model m;
  use(m);
}
