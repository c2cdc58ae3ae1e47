/// @file backend/options.hpp
/// Small enumerations that select a variant of a kernel, shared by every backend and by the model
/// configuration (which must not pull in a backend's headers to name them).
#pragma once

#include <cstdint>

namespace cai {

/// Which dimensions rotary position embedding (Su et al. 2021) rotates together.
enum class rope_style : std::uint8_t {
  half,         ///< (i, i + D/2): Hugging Face Llama ("rotate_half", GPT-NeoX)
  interleaved,  ///< (2i, 2i + 1): GPT-J, llama.cpp's normal mode
};

}  // namespace cai
