// test: an optimizer without a nested state is rejected with a message naming state
// expect-error: static.assert(ion)? failed.*an optimizer needs a nested .template <class Param> struct state.
#include <vector>

#include <cai/concepts.hpp>

// Updates parameters directly, with no per-parameter state created late.
struct stateless_optimizer {
#if CAI_COMPILE_FAIL_FIXED
  template <class Param>
  struct state {
    state(const stateless_optimizer&, const Param&) {}
    void update(Param&, const Param&) {}
  };
#else
  template <class Param>
  void update(Param& param, const Param& gradient);
#endif
};

CAI_ASSERT_OPTIMIZER(stateless_optimizer, std::vector<float>);
