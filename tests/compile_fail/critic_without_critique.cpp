// test: a critic without critique is rejected with a message naming critique
// expect-error: static.assert(ion)? failed.*a critic needs a member critique
#include <span>
#include <string>
#include <vector>

#include <cai/concepts.hpp>

struct simple_principle {
  std::string name, critique_request, revision_request, comparison_question;
};

struct lazy_critic {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<cai::critique_step> critique(std::span<const cai::critique_task<simple_principle>> tasks);
#else
  std::vector<cai::critique_step> review(std::span<const cai::critique_task<simple_principle>> tasks);
#endif
};

CAI_ASSERT_PRINCIPLE(simple_principle);
CAI_ASSERT_CRITIC(lazy_critic, simple_principle);
