// Shared helpers of the tokenizer tests: the GPT-2 tokenizer from the shared files (loaded once), the
// SmolLM2 tokenizer.json written next to the GGUF model by tests/data/tokenizer/gen_expected.py, and the
// committed expected-ids fixtures.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cai/model/tokenizer.hpp"

namespace tok_test {

inline std::filesystem::path data_dir() { return std::filesystem::path(CAI_TEST_DATA_DIR) / "tokenizer"; }
inline std::filesystem::path gpt2_dir() { return std::filesystem::path(CAI_SHARED_DATA_DIR) / "gpt2-bpe"; }

inline nlohmann::json load_json(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

inline const cai::bpe_tokenizer& gpt2() {
  static const cai::bpe_tokenizer tok =
      cai::bpe_tokenizer::from_gpt2_files(gpt2_dir() / "encoder.json", gpt2_dir() / "vocab.bpe");
  return tok;
}

/// ${CAI_MODEL_CACHE:-${CAI_CACHE:-$HOME/.cache/cai}}
inline std::filesystem::path model_cache() {
  if (const char* c = std::getenv("CAI_MODEL_CACHE"); c && *c) return c;
  if (const char* c = std::getenv("CAI_CACHE"); c && *c) return c;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : ".") / ".cache" / "cai";
}

inline std::filesystem::path smollm2_json() { return model_cache() / "SmolLM2-135M-Instruct.tokenizer.json"; }

/// A temporary folder for this test run.
inline std::filesystem::path temp_dir() {
  auto d = std::filesystem::temp_directory_path() / "cai-test-tokenizer";
  std::filesystem::create_directories(d);
  return d;
}

inline std::filesystem::path write_file(const std::string& name, const std::string& content) {
  auto p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

}  // namespace tok_test
