// Writes the safetensors file that check_safetensors_with_python.py reads with the reference implementation (the
// PyPI `safetensors` package): `write_safetensors_for_python <output path>`. The tensors and their values are spelled
// out in both files; keep them in step.
#include <cmath>
#include <exception>
#include <iostream>
#include <limits>
#include <vector>

#include "cai/model/safetensors.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_safetensors_for_python <output.safetensors>\n";
    return 2;
  }
  try {
    // 1. The values: alpha (3, 5) = (i - 7) * 0.375; beta (3,) = inf, -0, -65504.25; gamma () = 1e-40
    //    (subnormal); delta (0, 4) empty.
    std::vector<float> alpha(15);
    for (int i = 0; i < 15; ++i) alpha[static_cast<std::size_t>(i)] = static_cast<float>(i - 7) * 0.375f;
    const std::vector<float> beta = {std::numeric_limits<float>::infinity(), -0.0f, -65504.25f};
    const std::vector<float> gamma = {1e-40f};
    // 2. Written out of name order, with one metadata entry.
    const std::vector<cai::named_tensor> tensors = {
        {"gamma", {}, gamma}, {"alpha", {3, 5}, alpha}, {"delta", {0, 4}, {}}, {"beta", {3}, beta}};
    cai::save_safetensors(argv[1], tensors, {{"written_by", "cai"}});
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
