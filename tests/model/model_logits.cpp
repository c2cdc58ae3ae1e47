// Prints the logits that cai's transformer computes for a token sequence, as JSON, for comparison with
// a reference implementation: model_logits MODEL_PATH ID [ID ...]  ->  {"vocab": V, "logits": [[...], ...]}
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/model/load.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: model_logits MODEL_PATH ID [ID ...]\n";
    return 2;
  }
  try {
    auto model = cai::load_model(argv[1]);
    std::vector<std::int32_t> ids;
    for (int i = 2; i < argc; ++i) ids.push_back(static_cast<std::int32_t>(std::atoi(argv[i])));
    const auto logits = model.forward(ids, 1, ids.size());
    const std::size_t V = model.config().vocab_size;
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t t = 0; t < ids.size(); ++t)
      rows.push_back(std::vector<float>(logits.begin() + static_cast<std::ptrdiff_t>(t * V),
                                        logits.begin() + static_cast<std::ptrdiff_t>((t + 1) * V)));
    std::cout << nlohmann::json{{"vocab", V}, {"logits", rows}}.dump() << "\n";
  } catch (const cai::error& e) {
    std::cerr << "model_logits: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
