/// @file train/backend_ops.hpp
/// What the trainers of `train/` need from a backend beyond the model's kernels and the losses, for the
/// CPU (`cai::cpu`): the first non-finite element of a buffer, its squared L2 norm and an in-place scale
/// (the checks and the global-norm clipping of `optimizer_step`), and a vector head read at chosen rows
/// of the hidden states (the preference model's reward, PPO's value). Each takes the backend tag first,
/// as the kernels of backend/cpu.hpp do; backend/cuda_train.cuh defines the same functions for `cuda_t`.
/// (LoRA's `lora_merge` / `lora_backward` are in train/parameters.hpp, beside the adapters, as they need
/// Eigen on the CPU.)
///
/// Also `optimizer_state_for<Optimizer, Storage>`: the optimizer state that a trainer keeps for a
/// parameter buffer of type `Storage`. It is the optimizer's own `state<Storage>` (ensmallen's nested
/// state) unless a backend says otherwise: backend/cuda_train.cuh maps `adamw` on `device_vector<T>` to
/// `cuda_adamw_state<T>` and refuses other optimizers on the GPU with a `static_assert`.
#pragma once

#include <cmath>
#include <cstddef>
#include <optional>

#include "cai/backend/tags.hpp"

namespace cai {

/// The optimizer state kept for a parameter buffer of type `Storage` (see the file comment).
/// @tparam Optimizer an optimizer policy (`adamw`, `sgd`, ...). @tparam Storage a backend's storage.
template <class Optimizer, class Storage>
struct optimizer_state_for {
  using type = typename Optimizer::template state<Storage>;
};
template <class Optimizer, class Storage>
using optimizer_state_t = typename optimizer_state_for<Optimizer, Storage>::type;

/// The index of the first element of x that is NaN or infinite, or nothing.
/// @param x (n), backend memory.
template <class T>
[[nodiscard]] std::optional<std::size_t> first_non_finite(cpu_t, const T* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return std::nullopt;
}

/// Σ x[i]², accumulated in double in index order.
/// @param x (n), backend memory.
template <class T>
[[nodiscard]] double squared_norm(cpu_t, const T* x, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

/// x[i] *= factor.
/// @param x (n), backend memory.
template <class T>
void scale_in_place(cpu_t, T* x, T factor, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] *= factor;
}

/// A scalar head on chosen rows: out[b] = Σ_c head[c] · hidden[rows[b], c], summed in double.
/// @param out (B)   @param hidden (rows of C)   @param head (C)   @param rows (B) row indices.
template <class T>
void scalar_head_forward(cpu_t, T* out, const T* hidden, const T* head, const std::size_t* rows, std::size_t B,
                         std::size_t C) {
  for (std::size_t b = 0; b < B; ++b) {
    const T* h = hidden + rows[b] * C;
    double r = 0.0;
    for (std::size_t c = 0; c < C; ++c) r += static_cast<double>(head[c]) * h[c];
    out[b] = static_cast<T>(r);
  }
}

/// The gradients of `scalar_head_forward`: dhead[c] += Σ_b dout[b] · hidden[rows[b], c] (accumulated,
/// in b order) and dhidden[rows[b], c] = dout[b] · head[c] (written; the other rows are left as they are).
/// @param dhead (C)   @param dhidden (rows of C)   @param dout (B)   @param rows (B), distinct.
template <class T>
void scalar_head_backward(cpu_t, T* dhead, T* dhidden, const T* hidden, const T* head, const T* dout,
                          const std::size_t* rows, std::size_t B, std::size_t C) {
  for (std::size_t b = 0; b < B; ++b) {
    const T* h = hidden + rows[b] * C;
    T* dh = dhidden + rows[b] * C;
    for (std::size_t c = 0; c < C; ++c) {
      dhead[c] += dout[b] * h[c];
      dh[c] = dout[b] * head[c];
    }
  }
}

}  // namespace cai
