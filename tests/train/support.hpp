// Shared helpers of the trainer tests: tiny models and a scratch directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

#include "cai/model/transformer.hpp"
#include "cai/random.hpp"

namespace cai_test {

/// A GPT-2 of 2 layers, width 32, 2 heads, vocabulary 32, context 32, with seeded random weights.
inline cai::transformer<cai::cpu_t, float> tiny_gpt2(std::uint64_t seed = 7, std::size_t vocab = 32) {
  cai::transformer<cai::cpu_t, float> m(cai::transformer_config::gpt2(vocab, 32, 32, 2, 2));
  m.init_random(seed);
  return m;
}

/// A Llama of 2 layers, width 32, 4 heads (2 key/value heads), vocabulary 32, context 32.
inline cai::transformer<cai::cpu_t, float> tiny_llama(std::uint64_t seed = 7) {
  cai::transformer<cai::cpu_t, float> m(cai::transformer_config::llama(32, 32, 32, 2, 4, 2, 64));
  m.init_random(seed);
  return m;
}

/// A fresh empty directory under the system's temporary directory, removed by the destructor.
struct scratch_dir {
  std::filesystem::path path;
  explicit scratch_dir(const std::string& name) {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("cai-test-" + name + "-" + std::to_string(rd()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

}  // namespace cai_test
