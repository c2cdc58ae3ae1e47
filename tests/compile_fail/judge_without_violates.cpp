// test: a judge without violates is rejected with a message naming violates
// expect-error: static.assert(ion)? failed.*a judge needs a member violates
#include <span>
#include <string>
#include <vector>

#include <cai/concepts.hpp>

struct simple_principle {
  std::string name, critique_request, revision_request, comparison_question;
};

struct silent_judge {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<bool> violates(std::span<const cai::critique_task<simple_principle>> tasks);
#else
  std::vector<bool> complies(std::span<const cai::critique_task<simple_principle>> tasks);
#endif
};

CAI_ASSERT_JUDGE(silent_judge, simple_principle);
