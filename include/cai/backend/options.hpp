/// @file backend/options.hpp
/// Small enumerations that select a variant of a kernel, shared by every backend and by the model
/// configuration (which must not pull in a backend's headers to name them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cai {

/// Which dimensions rotary position embedding (Su et al. 2021) rotates together.
enum class rope_style : std::uint8_t {
  half,         ///< (i, i + D/2): Hugging Face Llama ("rotate_half", GPT-NeoX)
  interleaved,  ///< (2i, 2i + 1): GPT-J, llama.cpp's normal mode
};

/// How a backward kernel treats its input-gradient buffer: `accumulate` (+=, the default and the contract
/// of every backward kernel) or `overwrite` (=, for a fresh buffer: no zero-fill beforehand). Parameter
/// gradients always accumulate.
enum class grad_mode { accumulate, overwrite };

/// Row strides, in elements, of the (B * T) rows of attention's operands: lets q, k and v (and their
/// gradients) be read and written in place inside a fused (B, T, q + k + v) projection.
struct attention_strides {
  std::size_t out, q, k, v;
};

}  // namespace cai
