/// @file random.hpp
/// A seeded random number generator whose sequence is the same on every platform and standard library.
///
/// The standard distributions (`std::uniform_int_distribution` and friends) are implementation-defined, so
/// the same seed draws different principles under libstdc++ and libc++. cai draws with its own arithmetic
/// instead: xoshiro256** (Blackman and Vigna 2018) seeded through splitmix64, unbiased bounded integers by
/// rejection, and doubles from the top 53 bits. `derive_seed` gives independent streams keyed by
/// (seed, record, step), so that a draw depends only on where it happens, never on batching or resuming.
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "cai/error.hpp"

namespace cai {

/// One step of splitmix64: a bijective 64-bit mixer, used for seeding and for deriving stream seeds.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// The seed of an independent stream named by `keys` under `seed`: the same keys give the same stream on
/// every platform. Typical keys are a record index and a round number.
[[nodiscard]] constexpr std::uint64_t derive_seed(std::uint64_t seed,
                                                  std::initializer_list<std::uint64_t> keys) noexcept {
  std::uint64_t state = seed;
  std::uint64_t h = splitmix64(state);
  for (std::uint64_t k : keys) {
    state = h ^ (k + 0x632BE59BD9B4E019ULL);
    h = splitmix64(state);
  }
  return h;
}

/// xoshiro256**: small, fast, and identical everywhere. Models `std::uniform_random_bit_generator`.
class rng {
 public:
  using result_type = std::uint64_t;

  /// @param seed any value; equal seeds give equal sequences.
  constexpr explicit rng(std::uint64_t seed = 0) noexcept { reseed(seed); }

  constexpr void reseed(std::uint64_t seed) noexcept {
    std::uint64_t state = seed;
    for (auto& word : s_) word = splitmix64(state);
  }

  /// The generator's four words of state, for checkpoints: `set_state(state())` continues the sequence
  /// exactly where it was.
  [[nodiscard]] constexpr std::array<std::uint64_t, 4> state() const noexcept { return {s_[0], s_[1], s_[2], s_[3]}; }
  /// Restores a state returned by `state()`.
  constexpr void set_state(const std::array<std::uint64_t, 4>& words) noexcept {
    for (std::size_t i = 0; i < 4; ++i) s_[i] = words[i];
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~result_type{0}; }

  constexpr result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// A uniform integer in [0, n), without modulo bias.
  /// @pre n > 0
  constexpr std::uint64_t uniform_index(std::uint64_t n) {
    if (n == 0) throw config_error("cai::rng::uniform_index: the range is empty (n == 0)");
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n: values below it would bias the result
    for (;;) {
      const std::uint64_t x = (*this)();
      if (x >= threshold) return x % n;
    }
  }

  /// A uniform double in [0, 1) with 53 random bits.
  constexpr double uniform_real() noexcept {
    return static_cast<double>((*this)() >> 11) * 0x1.0p-53;
  }

  /// An index drawn with probability proportional to `weights[i]`.
  /// @pre weights is not empty, every weight is finite and >= 0, and at least one is > 0.

  std::size_t weighted_index(std::span<const double> weights) {
    double total = 0.0;
    for (double w : weights) {
      if (!(w >= 0.0) || w > 1e300)
        throw config_error("cai::rng::weighted_index: weights must be finite and non-negative");
      total += w;
    }
    if (weights.empty() || !(total > 0.0))
      throw config_error("cai::rng::weighted_index: the weights are empty or all zero");
    const double u = uniform_real() * total;
    double cumulative = 0.0;
    std::size_t last_positive = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (weights[i] <= 0.0) continue;
      cumulative += weights[i];
      last_positive = i;
      if (u < cumulative) return i;
    }
    return last_positive;  // rounding at the top end
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4]{};
};

}  // namespace cai
