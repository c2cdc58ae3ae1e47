/// @file backend/tags.hpp
/// Backend tags (Thrust's habit): an empty type that selects the storage and the kernels. Free functions
/// take the tag first; templates default to `CAI_DEFAULT_BACKEND`. The CPU kernels live in
/// `backend/cpu.hpp` (Eigen), the GPU ones in `backend/cuda.cuh`.
#pragma once

#include <string_view>
#include <vector>

namespace cai {

/// The CPU backend: host memory, Eigen for the arithmetic.
struct cpu_t {
  static constexpr std::string_view name = "cpu";
  /// Contiguous host storage of `T`.
  template <class T>
  using storage = std::vector<T>;
};
inline constexpr cpu_t cpu{};

}  // namespace cai
