// test: a principle without comparison_question is rejected with a message naming comparison_question
// expect-error: static.assert(ion)? failed.*a principle needs a data member 'comparison_question'
#include <string>

#include <cai/concepts.hpp>

struct critique_only_principle {
  std::string name;
  std::string critique_request;
  std::string revision_request;
#if CAI_COMPILE_FAIL_FIXED
  std::string comparison_question;
#endif
};

CAI_ASSERT_PRINCIPLE(critique_only_principle);
