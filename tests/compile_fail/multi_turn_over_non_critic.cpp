// test: multi_turn over a type without critique is rejected with a message naming critique
// expect-error: static.assert(ion)? failed.*a critic needs a member critique
#include <cstdint>
#include <span>
#include <vector>

#include <cai/constitution/constitution.hpp>
#include <cai/critique/rounds.hpp>

struct not_a_critic {
#if CAI_COMPILE_FAIL_FIXED
  std::vector<cai::critique_step> critique(std::span<const cai::critique_task<cai::constitutional_principle>> tasks);
#else
  std::vector<cai::critique_step> critique_all(std::span<const cai::critique_task<cai::constitutional_principle>> tasks);
#endif
};

std::vector<std::vector<cai::critique_step>> run(not_a_critic c, const cai::constitution& k) {
  cai::multi_turn<not_a_critic, 2> reviser{c};
  std::vector<cai::exchange> xs;
  std::vector<std::uint64_t> seeds;
  return reviser.revise(std::span<const cai::exchange>(xs), std::span<const std::uint64_t>(seeds), k);
}
