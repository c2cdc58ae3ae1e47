/// @file model/half.hpp
/// The 16-bit floating-point formats that model files store: IEEE 754 binary16 ("f16", "half") and
/// bfloat16 ("bf16", the upper half of a binary32). Only the widening to `float` is here, which is exact
/// for every input (subnormals, infinities, signed zeros and NaN payloads included), so values read from
/// a file compare bit for bit with NumPy's `astype(np.float32)` and with ggml's `GGML_FP16_TO_FP32`.
#pragma once

#include <bit>
#include <cstdint>

namespace cai {

/// The binary32 value of the IEEE 754 binary16 number whose bits are `h`. Exact for every input.
[[nodiscard]] constexpr float fp16_bits_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits = 0;
  if (exponent == 0x1fu) {  // infinity or NaN: keep the payload, as NumPy and ggml do
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {  // subnormal: mantissa * 2^-24, exact in binary32
    bits = sign | std::bit_cast<std::uint32_t>(static_cast<float>(mantissa) * 0x1p-24f);
  } else {  // signed zero
    bits = sign;
  }
  return std::bit_cast<float>(bits);
}

/// The binary32 value of the bfloat16 number whose bits are `b` (its bits shifted into the upper half).
[[nodiscard]] constexpr float bf16_bits_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

}  // namespace cai
