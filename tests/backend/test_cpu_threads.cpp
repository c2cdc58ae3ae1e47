// The CPU kernels give the same bits on one thread and on two (each parallel loop writes disjoint
// outputs and sums in a fixed order). Runs only when cai is built with OpenMP.
#include <catch2/catch_test_macros.hpp>

#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/model/transformer.hpp"

#include "backend/with_threads.hpp"

namespace {
using cai_test::with_threads;
}  // namespace

TEST_CASE("a training step gives the same bits on one thread and on two", "[backend][cpu][threads]") {
#if !defined(_OPENMP)
  SKIP("built without OpenMP");
#endif
  auto config = cai::transformer_config::llama(97, 32, 32, 2, 4, 2, 48);
  std::vector<std::int32_t> ids(4 * 32), targets(4 * 32);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<std::int32_t>((i * 13) % 97);
    targets[i] = static_cast<std::int32_t>((i * 7 + 1) % 97);
  }
  auto step = [&] {
    cai::transformer<cai::cpu_t, float> model(config);
    model.init_random(1);
    model.zero_grad();
    const float loss = model.forward_loss(ids, targets, 4, 32);
    model.backward_loss();
    std::vector<float> out(model.grad(), model.grad() + model.num_parameters());
    out.push_back(loss);
    return out;
  };
  const auto one = with_threads(1, step);
  const auto two = with_threads(2, step);
  REQUIRE(one.size() == two.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < one.size(); ++i) differ += one[i] != two[i];
  CHECK(differ == 0);
}
