// Tests of cai/model/half.hpp: the widening of binary16 and bfloat16 to binary32 is exact for all 65536
// bit patterns of each, checked against an independent computation (std::ldexp on the fields).
#include <catch2/catch_test_macros.hpp>

#include <bit>
#include <cmath>
#include <cstdint>

#include "cai/model/half.hpp"

TEST_CASE("fp16_bits_to_float is exact for all 65536 binary16 bit patterns", "[model_io][half]") {
  std::uint32_t wrong = 0;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float got = cai::fp16_bits_to_float(static_cast<std::uint16_t>(h));
    const bool negative = (h & 0x8000u) != 0;
    const int exponent = static_cast<int>((h >> 10) & 0x1fu);
    const int mantissa = static_cast<int>(h & 0x3ffu);
    bool ok = false;
    if (exponent == 31 && mantissa == 0) {
      ok = std::isinf(got) && std::signbit(got) == negative;
    } else if (exponent == 31) {  // NaN: the payload moves to the top of binary32's mantissa
      ok = std::isnan(got) && std::signbit(got) == negative &&
           ((std::bit_cast<std::uint32_t>(got) >> 13) & 0x3ffu) == static_cast<std::uint32_t>(mantissa);
    } else {
      const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
      const double expected = negative ? -magnitude : magnitude;
      ok = static_cast<double>(got) == expected && std::signbit(got) == negative;
    }
    if (!ok) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(cai::fp16_bits_to_float(0x3c00) == 1.0f);
  CHECK(cai::fp16_bits_to_float(0xc000) == -2.0f);
  CHECK(cai::fp16_bits_to_float(0x7bff) == 65504.0f);
  CHECK(cai::fp16_bits_to_float(0x0001) == 0x1p-24f);
  STATIC_REQUIRE(cai::fp16_bits_to_float(0x3800) == 0.5f);  // constexpr
}

TEST_CASE("bf16_bits_to_float places the bits in the upper half of a binary32", "[model_io][half]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float got = cai::bf16_bits_to_float(static_cast<std::uint16_t>(b));
    if (std::bit_cast<std::uint32_t>(got) != b << 16) FAIL("bits " << b);
  }
  CHECK(cai::bf16_bits_to_float(0x3f80) == 1.0f);
  CHECK(cai::bf16_bits_to_float(0xc2c8) == -100.0f);
}
