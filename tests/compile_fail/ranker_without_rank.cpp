// test: a ranker without rank is rejected with a message naming rank
// expect-error: static.assert(ion)? failed.*a ranker needs a member rank
#include <span>
#include <string>
#include <vector>

#include <cai/concepts.hpp>

struct simple_principle {
  std::string name, critique_request, revision_request, comparison_question;
};

struct undecided_ranker {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<double> rank(std::span<const cai::ranking_task<simple_principle>> tasks);
#else
  std::vector<double> order(std::span<const cai::ranking_task<simple_principle>> tasks);
#endif
};

CAI_ASSERT_RANKER(undecided_ranker, simple_principle);
