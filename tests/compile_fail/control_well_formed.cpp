// Positive control: well-formed types, and the library's own policies, pass the same CAI_ASSERT macros
// and concepts that the compile_fail cases break. Built by the test "compile_fail: the well-formed control
// and the fixed variants of every case compile".
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cai/backend/tags.hpp>
#include <cai/concepts.hpp>
#include <cai/train/sgd.hpp>

namespace {

struct model {
  std::vector<std::string> generate(std::span<const cai::generation_request> requests);
  std::vector<double> score(std::span<const cai::scoring_request> requests);
};
struct principle {
  std::string name, critique_request, revision_request, comparison_question;
};
struct critic {
  std::vector<cai::critique_step> critique(std::span<const cai::critique_task<principle>> tasks);
};
struct judge {
  std::vector<bool> violates(std::span<const cai::critique_task<principle>> tasks);
};
struct ranker {
  std::vector<double> rank(std::span<const cai::ranking_task<principle>> tasks);
};

CAI_ASSERT_LANGUAGE_MODEL(model);
CAI_ASSERT_SCORING_MODEL(model);
CAI_ASSERT_PRINCIPLE(principle);
CAI_ASSERT_CRITIC(critic, principle);
CAI_ASSERT_JUDGE(judge, principle);
CAI_ASSERT_RANKER(ranker, principle);
CAI_ASSERT_OPTIMIZER(cai::sgd, std::vector<float>);
CAI_ASSERT_OPTIMIZER(cai::sgd, std::vector<double>);
CAI_ASSERT_BACKEND(cai::cpu_t);

static_assert(cai::scoring_model<model>);
static_assert(cai::critic<critic, principle>);
static_assert(cai::judge<judge, principle>);
static_assert(cai::ranker<ranker, principle>);
static_assert(cai::optimizer<cai::sgd, std::vector<float>>);
static_assert(cai::backend<cai::cpu_t>);

template <cai::language_model M>
void use(M&) {}

}  // namespace

void call() {
  model m;
  use(m);
}
