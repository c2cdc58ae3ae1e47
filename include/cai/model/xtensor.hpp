/// @file model/xtensor.hpp
/// xtensor as the exchange type of batch data on the public API: token ids, targets and masks go in as
/// `xt::xtensor<std::int32_t, 2>` of shape (B, T); logits and log-probabilities come out as xtensor
/// adaptors over the model's own buffers (row-major, no copy), valid until the model's next call. The
/// arithmetic stays in the backend's kernels (Eigen on the CPU). A separate header, so that code that
/// does not use xtensor does not pay for compiling it.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include "cai/error.hpp"
#include "cai/model/transformer.hpp"

namespace cai {

/// A (B, T) batch of token ids.
using token_batch = xt::xtensor<std::int32_t, 2>;

/// The logits of a batch, (B, T, V): a read-only view of the model's buffer.
template <class Backend, class T>
[[nodiscard]] auto forward(transformer<Backend, T>& model, const token_batch& ids) {
  const std::size_t B = ids.shape()[0], Tn = ids.shape()[1], V = model.config().vocab_size;
  const std::span<const T> logits = model.forward(std::span<const std::int32_t>(ids.data(), ids.size()), B, Tn);
  const std::array<std::size_t, 3> shape{B, Tn, V};
  return xt::adapt(logits.data(), logits.size(), xt::no_ownership(), shape);
}

/// The mean cross-entropy of predicting `targets` (B, T) from `ids` (B, T); -1 masks a target.
/// @throws config_error when the shapes differ.
template <class Backend, class T>
T forward_loss(transformer<Backend, T>& model, const token_batch& ids, const token_batch& targets) {
  if (ids.shape() != targets.shape())
    throw config_error("forward_loss: ids and targets differ in shape");
  return model.forward_loss(std::span<const std::int32_t>(ids.data(), ids.size()),
                            std::span<const std::int32_t>(targets.data(), targets.size()), ids.shape()[0],
                            ids.shape()[1]);
}

/// Log-softmax of the logits of a batch, (B, T, V), as a new tensor.
template <class Backend, class T>
[[nodiscard]] xt::xtensor<T, 3> log_probabilities(transformer<Backend, T>& model, const token_batch& ids) {
  const auto logits = forward(model, ids);
  xt::xtensor<T, 3> out = xt::xtensor<T, 3>::from_shape(logits.shape());
  const std::size_t V = logits.shape()[2], rows = logits.size() / (V == 0 ? 1 : V);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* x = logits.data() + r * V;
    T* o = out.data() + r * V;
    T m = x[0];
    for (std::size_t i = 1; i < V; ++i) m = std::max(m, x[i]);
    T sum = 0;
    for (std::size_t i = 0; i < V; ++i) sum += std::exp(x[i] - m);
    const T lse = m + std::log(sum);
    for (std::size_t i = 0; i < V; ++i) o[i] = x[i] - lse;
  }
  return out;
}

}  // namespace cai
