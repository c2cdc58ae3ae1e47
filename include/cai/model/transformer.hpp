/// @file model/transformer.hpp
/// `transformer<Backend, T>`: a decoder-only transformer of the GPT-2 or Llama family, as a template over
/// the backend tag, built from the backend's forward/backward kernels (`backend/cpu.hpp` for `cai::cpu`).
///
/// - Parameters live in one flat buffer, with a table of named tensors that uses the Hugging Face names
///   of each family (`h.0.attn.c_attn.weight`, `model.layers.0.self_attn.q_proj.weight`, ...). Every
///   weight is stored as `nn.Linear` stores it, (out, in); GPT-2's Conv1D tensors are transposed by the
///   loaders and savers. Gradients live in a second flat buffer of the same layout, so an optimizer
///   updates the whole model as one tensor.
/// - `forward(ids)` computes logits for a (B, T) batch and keeps the activations; `backward(dlogits)`
///   accumulates the gradient of every parameter. `forward_loss` / `backward_loss` do the same for the
///   mean token cross-entropy with masked targets.
/// - `forward_cached(cache, segments)` is the inference path: it appends tokens to sequences held in a
///   `kv_cache` (prefill and decode are the same call) and returns the logits of the appended tokens.
/// - The template touches its buffers only through backend functions (the kernels and `fill`, `copy`,
///   `copy_from_host`, `copy_to_host`), so `transformer<cuda_t>` instantiates from it too (include
///   `backend/cuda.cuh` first, in a .cu file). Token ids and targets are host spans; the logits, hidden
///   states and gradients it returns or takes (`forward`, `backward`, `data()`, `grad()`) are the
///   backend's memory (device memory for `cuda_t`). `load_parameters` / `host_parameters` /
///   `host_gradients` copy the flat parameter and gradient buffers from and to the host.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cai/backend/cpu.hpp"
#include "cai/backend/cpu_q8.hpp"
#include "cai/concepts.hpp"
#include "cai/config.hpp"
#include "cai/error.hpp"
#include "cai/model/transformer_config.hpp"
#include "cai/random.hpp"

namespace cai {

/// One named tensor of a model's flat parameter buffer.
struct parameter_info {
  std::string name;
  std::vector<std::size_t> shape;
  std::size_t offset = 0;  ///< in elements, into the flat buffer
  std::size_t size = 0;    ///< number of elements
};

/// The keys and values of every layer for a number of sequences ("slots"), for KV-cached decoding.
template <class Backend = CAI_DEFAULT_BACKEND, class T = float>
class kv_cache {
 public:
  /// @param slots how many sequences it holds. @param max_len the longest sequence.
  kv_cache(const transformer_config& config, std::size_t slots, std::size_t max_len)
      : layers_(config.n_layers), slots_(slots), max_len_(max_len),
        width_(config.n_kv_heads * config.head_dim()),
        keys_(config.n_layers * slots * max_len * width_), values_(keys_.size()), lengths_(slots, 0) {
    if (max_len > config.context_length)
      throw config_error("kv_cache: max_len " + std::to_string(max_len) + " exceeds the model's context length " +
                         std::to_string(config.context_length));
    if constexpr (std::is_same_v<Backend, cpu_t>) {  // a decode step reads the cache from memory
      prefer_huge_pages(cpu, keys_.data(), keys_.size() * sizeof(T));
      prefer_huge_pages(cpu, values_.data(), values_.size() * sizeof(T));
    }
  }

  [[nodiscard]] std::size_t slots() const noexcept { return slots_; }
  [[nodiscard]] std::size_t max_len() const noexcept { return max_len_; }
  /// Tokens held for sequence `slot`.
  [[nodiscard]] std::size_t length(std::size_t slot) const { return lengths_.at(slot); }
  /// Forgets sequence `slot`.
  void clear(std::size_t slot) { lengths_.at(slot) = 0; }
  /// Makes `to` a copy of `from` (shared-prefix scoring: run a context once, fork it per continuation).
  void copy_slot(std::size_t from, std::size_t to) {
    const std::size_t n = lengths_.at(from) * width_;
    for (std::size_t l = 0; l < layers_; ++l) {
      copy(Backend{}, keys_.data() + offset(l, to), keys_.data() + offset(l, from), n);
      copy(Backend{}, values_.data() + offset(l, to), values_.data() + offset(l, from), n);
    }
    lengths_.at(to) = lengths_.at(from);
  }

  // keys of layer l: (slots, max_len, n_kv_heads, head_dim)
  [[nodiscard]] T* keys(std::size_t layer) noexcept { return keys_.data() + offset(layer, 0); }
  [[nodiscard]] T* values(std::size_t layer) noexcept { return values_.data() + offset(layer, 0); }
  void set_length(std::size_t slot, std::size_t len) { lengths_.at(slot) = len; }

 private:
  [[nodiscard]] std::size_t offset(std::size_t layer, std::size_t slot) const noexcept {
    return (layer * slots_ + slot) * max_len_ * width_;
  }
  std::size_t layers_, slots_, max_len_, width_;
  typename Backend::template storage<T> keys_, values_;
  std::vector<std::size_t> lengths_;
};

/// Tokens to append to one sequence of a `kv_cache`.
struct cache_segment {
  std::size_t slot = 0;
  std::span<const std::int32_t> tokens;
};

/// Which logits `transformer::forward_cached` returns: those of every appended token, or only those of
/// each segment's last token (what generation needs after a prefill: the output head, a (V, C) product
/// per row, then runs on one row per segment).
enum class cached_logits { all, last };

/// A decoder-only transformer. See the file comment.
/// @tparam Backend models `backend` and provides the kernels. @tparam T the compute type (float).
template <class Backend = CAI_DEFAULT_BACKEND, class T = float>
class transformer {
  CAI_ASSERT_BACKEND(Backend);

 public:
  using backend_type = Backend;
  using value_type = T;

  /// A model of shape `config` with all parameters zero (call `init_random` or load weights).
  explicit transformer(transformer_config config) : config_(std::move(config)) {
    config_.validate();
    build_parameter_table();
    params_ = storage(num_parameters());
    grads_ = storage(num_parameters());
    // a decode step streams every weight from memory: huge pages spare it a page walk every 4 KiB
    if constexpr (std::is_same_v<Backend, cpu_t>) prefer_huge_pages(cpu, params_.data(), params_.size() * sizeof(T));
    bind_pointers();
  }

  [[nodiscard]] const transformer_config& config() const noexcept { return config_; }
  [[nodiscard]] const std::vector<parameter_info>& parameters() const noexcept { return table_; }
  [[nodiscard]] std::size_t num_parameters() const noexcept {
    return table_.empty() ? 0 : table_.back().offset + table_.back().size;
  }
  /// The named tensor, or throws validation_error naming it.
  [[nodiscard]] const parameter_info& parameter(std::string_view name) const {
    for (const auto& p : table_)
      if (p.name == name) return p;
    throw validation_error("transformer: no parameter named '" + std::string(name) + "' in a " +
                           std::string(to_string(config_.family)) + " model");
  }
  [[nodiscard]] T* data() noexcept { return params_.data(); }
  [[nodiscard]] const T* data() const noexcept { return params_.data(); }
  [[nodiscard]] T* grad() noexcept { return grads_.data(); }
  [[nodiscard]] const T* grad() const noexcept { return grads_.data(); }
  [[nodiscard]] T* data(const parameter_info& p) noexcept { return params_.data() + p.offset; }
  [[nodiscard]] T* grad(const parameter_info& p) noexcept { return grads_.data() + p.offset; }
  [[nodiscard]] typename Backend::template storage<T>& parameter_storage() noexcept { return params_; }
  [[nodiscard]] typename Backend::template storage<T>& gradient_storage() noexcept { return grads_; }
  void zero_grad() { fill(Backend{}, grads_.data(), T(0), grads_.size()); }

  /// Replaces every parameter by `values` (host memory, the flat layout of `parameters()`): how a model
  /// on another backend receives the weights of a CPU model (`load_parameters(cpu_model.parameter_storage())`).
  /// @throws config_error when the sizes differ.
  void load_parameters(std::span<const T> values) {
    if (values.size() != num_parameters())
      throw config_error("transformer::load_parameters: " + std::to_string(values.size()) + " values for a model of " +
                         std::to_string(num_parameters()) + " parameters");
    copy_from_host(Backend{}, params_.data(), values.data(), values.size());
  }
  /// A host copy of the parameters (flat layout of `parameters()`).
  [[nodiscard]] std::vector<T> host_parameters() const { return to_host(params_); }
  /// A host copy of the gradients (flat layout of `parameters()`).
  [[nodiscard]] std::vector<T> host_gradients() const { return to_host(grads_); }

  /// GPT-2's initialisation: normal(0, 0.02) weights, residual projections scaled by 1/sqrt(2 n_layers),
  /// zero biases, unit norm weights. Normal draws use cai::rng (Box-Muller), the same on every platform.
  void init_random(std::uint64_t seed) {
    rng g(seed);
    auto normal = [&g]() {
      const double u1 = 1.0 - g.uniform_real(), u2 = g.uniform_real();
      return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    };
    const double residual_scale = 1.0 / std::sqrt(2.0 * static_cast<double>(config_.n_layers));
    std::vector<T> host(num_parameters());  // drawn on the host, then copied into the backend's storage
    for (const auto& p : table_) {
      T* w = host.data() + p.offset;
      const bool is_norm = p.name.find("ln_") != std::string::npos || p.name.find("norm") != std::string::npos;
      const bool is_bias = p.name.ends_with(".bias");
      if (is_bias) {
        std::fill_n(w, p.size, T(0));
      } else if (is_norm) {
        std::fill_n(w, p.size, T(1));
      } else {
        const bool residual = p.name.find("c_proj") != std::string::npos || p.name.find("o_proj") != std::string::npos ||
                              p.name.find("down_proj") != std::string::npos;
        const double sd = 0.02 * (residual ? residual_scale : 1.0);
        for (std::size_t i = 0; i < p.size; ++i) w[i] = static_cast<T>(sd * normal());
      }
    }
    copy_from_host(Backend{}, params_.data(), host.data(), host.size());
  }

  // -------------------------------------------------------------------------------------------------
  // Training path

  /// Logits for a batch of B sequences of T tokens; keeps the activations for `backward`.
  /// @param ids (B, T) token ids, row-major. @return (B, T, V) logits, valid until the next forward.
  /// @throws config_error when T exceeds the context length; validation_error for an id out of range.
  std::span<const T> forward(std::span<const std::int32_t> ids, std::size_t B, std::size_t Tn) {
    prepare_forward(ids, B, Tn, "forward");
    run_forward(B, Tn, /*logits=*/true);
    acts_.logits_valid = true;
    return {acts_.logits.data(), acts_.logits.size()};
  }

  /// Accumulates the gradient of every parameter given d(loss)/d(logits) of the last `forward`.
  /// @param dlogits (B, T, V).
  void backward(std::span<const T> dlogits) { backward(dlogits, {}); }

  /// The final hidden states, after the final norm: (B, T, d_model) for a (B, T) batch, without the
  /// output head (the input of a scalar head: a preference model's reward, PPO's value). Kept for
  /// `backward`; valid until the next forward.
  std::span<const T> forward_hidden(std::span<const std::int32_t> ids, std::size_t B, std::size_t Tn) {
    prepare_forward(ids, B, Tn, "forward_hidden");
    run_forward(B, Tn, /*logits=*/false);
    acts_.logits_valid = false;
    return hidden();
  }

  /// The final hidden states of the last `forward` or `forward_hidden`: (B, T, d_model).
  [[nodiscard]] std::span<const T> hidden() const noexcept { return {acts_.hf.data(), acts_.hf.size()}; }

  /// Accumulates the gradient of every parameter given the gradients of a loss with respect to the
  /// logits and/or the final hidden states of the last forward; either may be empty (not used).
  /// @param dlogits (B, T, V) or empty; needs the last forward to be `forward`, not `forward_hidden`.
  /// @param dhidden (B, T, d_model) or empty.
  void backward(std::span<const T> dlogits, std::span<const T> dhidden) {
    if (!dlogits.empty() && (!acts_.logits_valid || dlogits.size() != acts_.logits.size()))
      throw config_error("transformer::backward: dlogits has " + std::to_string(dlogits.size()) +
                         " elements; the last forward produced " +
                         std::to_string(acts_.logits_valid ? acts_.logits.size() : 0) + " logits");
    if (!dhidden.empty() && dhidden.size() != acts_.hf.size())
      throw config_error("transformer::backward: dhidden has " + std::to_string(dhidden.size()) +
                         " elements; the last forward produced " + std::to_string(acts_.hf.size()) +
                         " hidden values");
    if (dlogits.empty() && dhidden.empty()) return;
    run_backward(dlogits.empty() ? nullptr : dlogits.data(), dhidden.empty() ? nullptr : dhidden.data());
  }

  /// Mean cross-entropy of predicting `targets` (B, T) (-1 masks a position) from `ids` (B, T).
  /// @return the mean over unmasked positions (0 when all are masked).
  T forward_loss(std::span<const std::int32_t> ids, std::span<const std::int32_t> targets, std::size_t B, std::size_t Tn) {
    if (targets.size() != B * Tn) throw config_error("transformer::forward_loss: targets and ids differ in size");
    (void)forward(ids, B, Tn);
    const std::size_t N = B * Tn, V = config_.vocab_size;
    acts_.targets.resize(N);
    copy_from_host(Backend{}, acts_.targets.data(), targets.data(), N);
    acts_.losses.resize(N);
    acts_.lse.resize(N);
    crossentropy_forward(Backend{}, acts_.losses.data(), acts_.lse.data(), acts_.logits.data(), acts_.targets.data(), N, V);
    acts_.counted = static_cast<std::size_t>(std::count_if(targets.begin(), targets.end(), [](auto t) { return t >= 0; }));
    T total = 0;
    for (T l : to_host(acts_.losses)) total += l;
    return acts_.counted == 0 ? T(0) : total / static_cast<T>(acts_.counted);
  }

  /// Accumulates the gradient of the mean loss of the last `forward_loss`, scaled by `scale`.
  void backward_loss(T scale = T(1)) {
    const std::size_t N = acts_.losses.size(), V = config_.vocab_size;
    storage& dlosses = bw_.dlosses;  // (N)
    if (dlosses.size() != N) dlosses = storage(N);
    fill(Backend{}, dlosses.data(), acts_.counted == 0 ? T(0) : scale / static_cast<T>(acts_.counted), N);
    storage& dlogits = bw_.dlogits;  // (N, V), kept between steps: it is the largest buffer of a step
    if (dlogits.size() != N * V) dlogits = storage(N * V);
    crossentropy_backward(Backend{}, dlogits.data(), dlosses.data(), acts_.logits.data(), acts_.lse.data(),
                          acts_.targets.data(), N, V, grad_mode::overwrite);
    run_backward(dlogits.data(), nullptr);
  }

  // -------------------------------------------------------------------------------------------------
  // Inference path

  /// Appends each segment's tokens to its sequence in `cache` and returns the logits of every appended
  /// token, segment after segment: (sum of segment lengths, V); with `cached_logits::last`, those of each
  /// segment's last token only: (segments, V). Prefill and decode are the same call.
  /// @throws config_error when a sequence would outgrow the cache.
  std::span<const T> forward_cached(kv_cache<Backend, T>& cache, std::span<const cache_segment> segments,
                                    cached_logits which = cached_logits::all) {
    std::size_t N = 0;
    for (const auto& s : segments) N += s.tokens.size();
    if (N == 0) return {};
    const std::size_t C = config_.d_model, H = config_.n_heads, KVH = config_.n_kv_heads, D = config_.head_dim();
    const std::size_t qw = H * D, kvw = KVH * D, F = config_.d_ff, V = config_.vocab_size;
    infer_.resize(N, C, qw, kvw, F, V, config_.family);
    std::size_t row = 0;
    for (const auto& s : segments) {
      if (s.slot >= cache.slots()) throw config_error("forward_cached: slot " + std::to_string(s.slot) + " does not exist");
      const std::size_t start = cache.length(s.slot);
      if (start + s.tokens.size() > cache.max_len())
        throw config_error("forward_cached: sequence in slot " + std::to_string(s.slot) + " would reach " +
                           std::to_string(start + s.tokens.size()) + " tokens; the cache holds " +
                           std::to_string(cache.max_len()));
      for (std::size_t i = 0; i < s.tokens.size(); ++i, ++row) {
        infer_.host_ids[row] = s.tokens[i];
        infer_.host_slots[row] = static_cast<std::int32_t>(s.slot);
        infer_.host_positions[row] = static_cast<std::int32_t>(start + i);
      }
    }
    const Backend be{};
    const q8_scope decode_in_8_bits(*this, !q8_.empty() && N <= q8_0_max_rows);
    copy_from_host(be, infer_.ids.data(), infer_.host_ids.data(), N);
    copy_from_host(be, infer_.slots.data(), infer_.host_slots.data(), N);
    copy_from_host(be, infer_.positions.data(), infer_.host_positions.data(), N);
    embed(infer_.x.data(), infer_.ids.data(), infer_.positions.data(), N);
    const std::size_t max_len = cache.max_len();
    for (std::size_t l = 0; l < config_.n_layers; ++l) {
      const layer_params& p = layers_[l];
      normalize(infer_.h.data(), infer_.stat_a.data(), infer_.stat_b.data(), infer_.x.data(), p.norm1_w, p.norm1_b, N);
      project_qkv(infer_.q.data(), infer_.k.data(), infer_.v.data(), infer_.qkv.data(), infer_.h.data(), p, N);
      if (config_.family == model_family::llama) {
        rope_forward(be, infer_.q.data(), infer_.positions.data(), N, H, D, config_.rope_theta, config_.rope);
        rope_forward(be, infer_.k.data(), infer_.positions.data(), N, KVH, D, config_.rope_theta, config_.rope);
      }
      T* kc = cache.keys(l);
      T* vc = cache.values(l);
      // a segment's rows go to consecutive positions of its slot: one copy per segment
      std::size_t first = 0;
      for (const auto& s : segments) {
        const std::size_t at = (s.slot * max_len + cache.length(s.slot)) * kvw, len = s.tokens.size() * kvw;
        copy(be, kc + at, infer_.k.data() + first * kvw, len);
        copy(be, vc + at, infer_.v.data() + first * kvw, len);
        first += s.tokens.size();
      }
      attention_cached_forward(be, infer_.a.data(), infer_.q.data(), kc, vc, infer_.slots.data(), infer_.positions.data(),
                               N, max_len, H, KVH, D);
      linear(infer_.o.data(), infer_.a.data(), p.o_w, p.o_b, N, qw, C);
      accumulate(be, infer_.x.data(), infer_.o.data(), N * C);
      normalize(infer_.h.data(), infer_.stat_a.data(), infer_.stat_b.data(), infer_.x.data(), p.norm2_w, p.norm2_b, N);
      mlp_forward(infer_.o.data(), infer_.f1.data(), infer_.f2.data(), infer_.f3.data(), infer_.h.data(), p, N);
      accumulate(be, infer_.x.data(), infer_.o.data(), N * C);
    }
    // the output head over every row, or over the last row of each segment (gathered first)
    const T* last = infer_.x.data();
    std::size_t rows = N;
    if (which == cached_logits::last && segments.size() < N) {
      rows = 0;
      std::size_t end = 0;
      for (const auto& s : segments) {
        end += s.tokens.size();
        if (!s.tokens.empty()) copy(be, infer_.o.data() + rows++ * C, infer_.x.data() + (end - 1) * C, C);
      }
      last = infer_.o.data();
    }
    normalize(infer_.h.data(), infer_.stat_a.data(), infer_.stat_b.data(), last, final_w_, final_b_, rows);
    linear(infer_.logits.data(), infer_.h.data(), out_w_, nullptr, rows, C, V);
    for (const auto& s : segments) cache.set_length(s.slot, cache.length(s.slot) + s.tokens.size());
    return {infer_.logits.data(), rows * V};
  }

  /// At most this many new rows make `forward_cached` a decode step that uses the 8-bit weights.
  static constexpr std::size_t q8_0_max_rows = 16;

  /// Quantises, for decoding on the CPU, every matrix a decode step multiplies by: the attention and MLP
  /// projections and the output head, into `q8_0_matrix` blocks (backend/cpu_q8.hpp: 32 int8 values and a
  /// float scale each; a matrix whose input width is not a multiple of 32 stays in float). From then on a
  /// `forward_cached` call of at most `q8_0_max_rows` new rows (a decode step) multiplies by these, reading
  /// 3.8 times fewer bytes; longer calls (prefill, scoring) and training keep the float weights.
  /// A snapshot: the float parameters stay as they are, a later change to them (training, loading) is not
  /// seen until this is called again, and a copy of the model does not carry it. Costs 1.06 bytes per
  /// quantised weight; called again, it reuses its buffers. `native_model` makes the snapshot at the start
  /// of a `generate` call and drops it at the end when asked to (`native_model_options::decode`).
  void quantize_for_decoding()
    requires(std::is_same_v<Backend, cpu_t> && std::is_same_v<T, float>)
  {
    const std::size_t C = config_.d_model, F = config_.d_ff, qw = config_.n_heads * config_.head_dim(),
                      kvw = config_.n_kv_heads * config_.head_dim();
    auto add = [&](const T* w, std::size_t rows, std::size_t cols) {
      if (w == nullptr || !q8_0_matrix::fits(cols)) return;
      q8_[static_cast<std::size_t>(w - params_.data())].assign(w, rows, cols);  // buffers reused on a refresh
    };
    for (const auto& p : layers_) {
      if (config_.family == model_family::gpt2) {
        add(p.qkv_w, qw + 2 * kvw, C);
        add(p.fc_w, F, C);
        add(p.proj_w, C, F);
      } else {
        add(p.q_w, qw, C);
        add(p.k_w, kvw, C);
        add(p.v_w, kvw, C);
        add(p.gate_w, F, C);
        add(p.up_w, F, C);
        add(p.down_w, C, F);
      }
      add(p.o_w, C, qw);
    }
    add(out_w_, config_.vocab_size, C);
  }
  /// Drops the 8-bit decoding weights; decode steps use the float weights again.
  void drop_decoding_weights() noexcept { q8_.clear(); }
  /// Whether decode steps use 8-bit weights (`quantize_for_decoding`).
  [[nodiscard]] bool has_decoding_weights() const noexcept { return !q8_.empty(); }

 private:
  using storage = typename Backend::template storage<T>;
  using index_storage = typename Backend::template storage<std::int32_t>;  // token ids, positions, slots

  /// A host copy of a backend buffer.
  template <class Buffer>
  static auto to_host(const Buffer& s) {
    std::vector<std::remove_cvref_t<decltype(*s.data())>> host(s.size());
    copy_to_host(Backend{}, host.data(), s.data(), s.size());
    return host;
  }

  struct layer_params {
    const T *norm1_w = nullptr, *norm1_b = nullptr, *qkv_w = nullptr, *qkv_b = nullptr;  // GPT-2: fused qkv
    const T *q_w = nullptr, *k_w = nullptr, *v_w = nullptr;                              // Llama: separate
    const T *o_w = nullptr, *o_b = nullptr, *norm2_w = nullptr, *norm2_b = nullptr;
    const T *fc_w = nullptr, *fc_b = nullptr, *proj_w = nullptr, *proj_b = nullptr;     // GPT-2 MLP
    const T *gate_w = nullptr, *up_w = nullptr, *down_w = nullptr;                       // Llama MLP
    std::size_t index = 0;  // first entry of this layer in the table
  };

  void prepare_forward(std::span<const std::int32_t> ids, std::size_t B, std::size_t Tn, const char* who) {
    if (ids.size() != B * Tn)
      throw config_error(std::string("transformer::") + who + ": " + std::to_string(ids.size()) + " ids for a (" +
                         std::to_string(B) + ", " + std::to_string(Tn) + ") batch");
    if (Tn == 0 || Tn > config_.context_length)
      throw config_error(std::string("transformer::") + who + ": sequence length " + std::to_string(Tn) +
                         " is outside 1.." + std::to_string(config_.context_length));
    resize_activations(B, Tn);
    copy_from_host(Backend{}, acts_.ids.data(), ids.data(), B * Tn);
    std::vector<std::int32_t> positions(B * Tn);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < Tn; ++t) positions[b * Tn + t] = static_cast<std::int32_t>(t);
    copy_from_host(Backend{}, acts_.positions.data(), positions.data(), B * Tn);
  }

  // --- parameter table ---------------------------------------------------------------------------
  void add_param(std::string name, std::vector<std::size_t> shape) {
    std::size_t size = 1;
    for (auto d : shape) size *= d;
    const std::size_t offset = table_.empty() ? 0 : table_.back().offset + table_.back().size;
    table_.push_back({std::move(name), std::move(shape), offset, size});
  }

  void build_parameter_table() {
    const std::size_t V = config_.vocab_size, C = config_.d_model, F = config_.d_ff;
    const std::size_t qw = config_.n_heads * config_.head_dim(), kvw = config_.n_kv_heads * config_.head_dim();
    if (config_.family == model_family::gpt2) {
      add_param("wte.weight", {V, C});
      add_param("wpe.weight", {config_.context_length, C});
      for (std::size_t l = 0; l < config_.n_layers; ++l) {
        const std::string p = "h." + std::to_string(l) + ".";
        add_param(p + "ln_1.weight", {C});
        add_param(p + "ln_1.bias", {C});
        add_param(p + "attn.c_attn.weight", {3 * C, C});
        add_param(p + "attn.c_attn.bias", {3 * C});
        add_param(p + "attn.c_proj.weight", {C, C});
        add_param(p + "attn.c_proj.bias", {C});
        add_param(p + "ln_2.weight", {C});
        add_param(p + "ln_2.bias", {C});
        add_param(p + "mlp.c_fc.weight", {F, C});
        add_param(p + "mlp.c_fc.bias", {F});
        add_param(p + "mlp.c_proj.weight", {C, F});
        add_param(p + "mlp.c_proj.bias", {C});
      }
      add_param("ln_f.weight", {C});
      add_param("ln_f.bias", {C});
    } else {
      add_param("model.embed_tokens.weight", {V, C});
      for (std::size_t l = 0; l < config_.n_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add_param(p + "input_layernorm.weight", {C});
        add_param(p + "self_attn.q_proj.weight", {qw, C});
        add_param(p + "self_attn.k_proj.weight", {kvw, C});
        add_param(p + "self_attn.v_proj.weight", {kvw, C});
        add_param(p + "self_attn.o_proj.weight", {C, qw});
        add_param(p + "post_attention_layernorm.weight", {C});
        add_param(p + "mlp.gate_proj.weight", {F, C});
        add_param(p + "mlp.up_proj.weight", {F, C});
        add_param(p + "mlp.down_proj.weight", {C, F});
      }
      add_param("model.norm.weight", {C});
      if (!config_.tied_embeddings) add_param("lm_head.weight", {V, C});
    }
  }

  /// Resolves the parameter pointers (after allocation; the buffer never moves afterwards).
  void bind_pointers() {
    const T* base = params_.data();
    auto at = [&](std::size_t i) { return base + table_[i].offset; };
    layers_.assign(config_.n_layers, {});
    if (config_.family == model_family::gpt2) {
      wte_ = at(0);
      wpe_ = at(1);
      for (std::size_t l = 0; l < config_.n_layers; ++l) {
        const std::size_t i = 2 + l * 12;
        auto& p = layers_[l];
        p.index = i;
        p.norm1_w = at(i), p.norm1_b = at(i + 1), p.qkv_w = at(i + 2), p.qkv_b = at(i + 3);
        p.o_w = at(i + 4), p.o_b = at(i + 5), p.norm2_w = at(i + 6), p.norm2_b = at(i + 7);
        p.fc_w = at(i + 8), p.fc_b = at(i + 9), p.proj_w = at(i + 10), p.proj_b = at(i + 11);
      }
      const std::size_t f = 2 + config_.n_layers * 12;
      final_w_ = at(f), final_b_ = at(f + 1);
      out_w_ = wte_;
    } else {
      wte_ = at(0);
      wpe_ = nullptr;
      for (std::size_t l = 0; l < config_.n_layers; ++l) {
        const std::size_t i = 1 + l * 9;
        auto& p = layers_[l];
        p.index = i;
        p.norm1_w = at(i), p.q_w = at(i + 1), p.k_w = at(i + 2), p.v_w = at(i + 3), p.o_w = at(i + 4);
        p.norm2_w = at(i + 5), p.gate_w = at(i + 6), p.up_w = at(i + 7), p.down_w = at(i + 8);
      }
      const std::size_t f = 1 + config_.n_layers * 9;
      final_w_ = at(f), final_b_ = nullptr;
      out_w_ = config_.tied_embeddings ? wte_ : at(f + 1);
    }
  }

  /// The gradient pointer matching a parameter pointer.
  T* g(const T* p) noexcept { return p == nullptr ? nullptr : grads_.data() + (p - params_.data()); }

  // --- building blocks shared by both paths ---------------------------------------------------------
  void embed(T* x, const std::int32_t* ids, const std::int32_t* positions, std::size_t N) {
    const Backend be{};
    const std::size_t C = config_.d_model;
    embedding_forward(be, x, ids, wte_, N, C, config_.vocab_size);
    if (config_.family == model_family::gpt2) {
      scratch_.resize(N * C);
      embedding_forward(be, scratch_.data(), positions, wpe_, N, C, config_.context_length);
      accumulate(be, x, scratch_.data(), N * C);
    }
  }

  void normalize(T* out, T* stat_a, T* stat_b, const T* in, const T* w, const T* b, std::size_t N) {
    const Backend be{};
    if (config_.family == model_family::gpt2)
      layernorm_forward(be, out, stat_a, stat_b, in, w, b, N, config_.d_model, static_cast<T>(config_.norm_eps));
    else
      rmsnorm_forward(be, out, stat_b, in, w, N, config_.d_model, static_cast<T>(config_.norm_eps));
  }

  void normalize_backward(T* din, const T* dout, const T* in, const T* w, const T* b, const T* stat_a,
                          const T* stat_b, std::size_t N) {
    const Backend be{};
    if (config_.family == model_family::gpt2)
      layernorm_backward(be, din, g(w), g(b), dout, in, w, stat_a, stat_b, N, config_.d_model);
    else
      rmsnorm_backward(be, din, g(w), dout, in, w, stat_b, N, config_.d_model);
  }

  /// out = in @ w^T + b: in 8 bits during a decode step with decoding weights (quantize_for_decoding),
  /// else the backend's float product.
  void linear(T* out, const T* in, const T* w, const T* b, std::size_t N, std::size_t C, std::size_t OC) {
    if constexpr (std::is_same_v<Backend, cpu_t> && std::is_same_v<T, float>) {
      if (decode_in_8_bits_) {
        const auto it = q8_.find(static_cast<std::size_t>(w - params_.data()));
        if (it != q8_.end()) {
          matmul_forward_q8_0(cpu, out, in, it->second, b, N);
          return;
        }
      }
    }
    matmul_forward<T>(Backend{}, out, in, w, b, N, C, OC);
  }

  /// Turns the 8-bit path on for one forward_cached call, and off again however it ends.
  struct q8_scope {
    transformer& m;
    q8_scope(transformer& model, bool on) : m(model) { m.decode_in_8_bits_ = on; }
    q8_scope(const q8_scope&) = delete;
    q8_scope& operator=(const q8_scope&) = delete;
    ~q8_scope() { m.decode_in_8_bits_ = false; }
  };

  void project_qkv(T* q, T* k, T* v, T* qkv, const T* h, const layer_params& p, std::size_t N) {
    const Backend be{};
    const std::size_t C = config_.d_model, qw = config_.n_heads * config_.head_dim(),
                      kvw = config_.n_kv_heads * config_.head_dim();
    if (config_.family == model_family::gpt2) {
      linear(qkv, h, p.qkv_w, p.qkv_b, N, C, 3 * C);
      split_columns(be, q, k, v, qkv, N, qw, kvw);
    } else {
      linear(q, h, p.q_w, nullptr, N, C, qw);
      linear(k, h, p.k_w, nullptr, N, C, kvw);
      linear(v, h, p.v_w, nullptr, N, C, kvw);
    }
  }

  /// out = MLP(h); f1, f2, f3 receive the intermediate activations (GPT-2: pre-GELU, post-GELU;
  /// Llama: gate, up, silu(gate) * up).
  void mlp_forward(T* out, T* f1, T* f2, T* f3, const T* h, const layer_params& p, std::size_t N) {
    const Backend be{};
    const std::size_t C = config_.d_model, F = config_.d_ff;
    if (config_.family == model_family::gpt2) {
      linear(f1, h, p.fc_w, p.fc_b, N, C, F);
      gelu_forward(be, f2, f1, N * F);
      linear(out, f2, p.proj_w, p.proj_b, N, F, C);
    } else {
      linear(f1, h, p.gate_w, nullptr, N, C, F);
      linear(f2, h, p.up_w, nullptr, N, C, F);
      swiglu_forward(be, f3, f1, f2, N * F);
      linear(out, f3, p.down_w, nullptr, N, F, C);
    }
  }

  // --- training activations ------------------------------------------------------------------------
  struct layer_acts {
    // GPT-2 keeps the fused projection qkv (N, qw + 2 kvw) and attention reads q, k, v inside it; Llama
    // keeps q (N, qw), k and v (N, kvw) apart (RoPE rotates q and k).
    storage x_in, h1, mean1, rstd1, qkv, q, k, v, att, a, x_mid, h2, mean2, rstd2, f1, f2, f3;
  };
  struct activations {
    std::size_t B = 0, Tn = 0, attention_saved = 0;
    index_storage ids, positions, targets;
    std::vector<layer_acts> layers;
    storage x_out, hf, meanf, rstdf, logits, o, losses, lse;
    std::size_t counted = 0;
    bool logits_valid = false;
  };

  void resize_activations(std::size_t B, std::size_t Tn) {
    const std::size_t N = B * Tn, C = config_.d_model, H = config_.n_heads, F = config_.d_ff;
    const std::size_t qw = H * config_.head_dim(), kvw = config_.n_kv_heads * config_.head_dim();
    // what attention saves for its backward is the backend's choice (and, on cuda_t, the math mode's)
    const std::size_t saved = attention_saved_size<T>(Backend{}, B, Tn, H, config_.head_dim());
    if (acts_.B == B && acts_.Tn == Tn && acts_.attention_saved == saved && !acts_.layers.empty()) return;
    acts_.B = B, acts_.Tn = Tn, acts_.attention_saved = saved;
    acts_.ids.resize(N);
    acts_.positions.resize(N);
    acts_.layers.resize(config_.n_layers);
    for (auto& la : acts_.layers) {
      la.x_in = storage(N * C), la.h1 = storage(N * C), la.mean1 = storage(N), la.rstd1 = storage(N);
      if (config_.family == model_family::gpt2)
        la.qkv = storage(N * (qw + 2 * kvw));
      else
        la.q = storage(N * qw), la.k = storage(N * kvw), la.v = storage(N * kvw);
      la.att = storage(saved);
      la.a = storage(N * qw), la.x_mid = storage(N * C), la.h2 = storage(N * C), la.mean2 = storage(N),
      la.rstd2 = storage(N);
      la.f1 = storage(N * F), la.f2 = storage(N * F);
      la.f3 = storage(config_.family == model_family::llama ? N * F : 0);
    }
    acts_.x_out = storage(N * C), acts_.hf = storage(N * C), acts_.meanf = storage(N), acts_.rstdf = storage(N);
    acts_.logits = storage(N * config_.vocab_size);
    acts_.o = storage(N * C);
  }

  void run_forward(std::size_t B, std::size_t Tn, bool with_logits) {
    const Backend be{};
    const std::size_t N = B * Tn, C = config_.d_model, H = config_.n_heads, KVH = config_.n_kv_heads,
                      D = config_.head_dim(), qw = H * D, kvw = KVH * D;
    embed(acts_.layers[0].x_in.data(), acts_.ids.data(), acts_.positions.data(), N);
    for (std::size_t l = 0; l < config_.n_layers; ++l) {
      auto& la = acts_.layers[l];
      const auto& p = layers_[l];
      normalize(la.h1.data(), la.mean1.data(), la.rstd1.data(), la.x_in.data(), p.norm1_w, p.norm1_b, N);
      if (config_.family == model_family::gpt2) {
        // q, k and v are read in place from the fused projection (N, qw + 2 kvw)
        const std::size_t W = qw + 2 * kvw;
        matmul_forward(be, la.qkv.data(), la.h1.data(), p.qkv_w, p.qkv_b, N, C, W);
        attention_forward(be, la.a.data(), la.att.data(), la.qkv.data(), la.qkv.data() + qw, la.qkv.data() + qw + kvw,
                          B, Tn, H, KVH, D, attention_strides{qw, W, W, W});
      } else {
        project_qkv(la.q.data(), la.k.data(), la.v.data(), nullptr, la.h1.data(), p, N);
        rope_forward(be, la.q.data(), acts_.positions.data(), N, H, D, config_.rope_theta, config_.rope);
        rope_forward(be, la.k.data(), acts_.positions.data(), N, KVH, D, config_.rope_theta, config_.rope);
        attention_forward(be, la.a.data(), la.att.data(), la.q.data(), la.k.data(), la.v.data(), B, Tn, H, KVH, D);
      }
      matmul_forward(be, acts_.o.data(), la.a.data(), p.o_w, p.o_b, N, qw, C);
      add_forward(be, la.x_mid.data(), la.x_in.data(), acts_.o.data(), N * C);
      normalize(la.h2.data(), la.mean2.data(), la.rstd2.data(), la.x_mid.data(), p.norm2_w, p.norm2_b, N);
      mlp_forward(acts_.o.data(), la.f1.data(), la.f2.data(), la.f3.data(), la.h2.data(), p, N);
      T* next = l + 1 < config_.n_layers ? acts_.layers[l + 1].x_in.data() : acts_.x_out.data();
      add_forward(be, next, la.x_mid.data(), acts_.o.data(), N * C);
    }
    normalize(acts_.hf.data(), acts_.meanf.data(), acts_.rstdf.data(), acts_.x_out.data(), final_w_, final_b_, N);
    if (with_logits) matmul_forward<T>(be, acts_.logits.data(), acts_.hf.data(), out_w_, nullptr, N, C, config_.vocab_size);
  }

  // dlogits: (N, V) or null; dhidden: (N, C) or null (added to the gradient of the final hidden states)
  void run_backward(const T* dlogits, const T* dhidden) {
    const Backend be{};
    const std::size_t B = acts_.B, Tn = acts_.Tn, N = B * Tn, C = config_.d_model, H = config_.n_heads,
                      KVH = config_.n_kv_heads, D = config_.head_dim(), qw = H * D, kvw = KVH * D, F = config_.d_ff;
    auto zeros = [&be](storage& s, std::size_t n) {
      if (s.size() != n) s = storage(n);
      fill(be, s.data(), T(0), s.size());
    };
    storage& dx = bw_.dx;       // gradient of the residual stream: (N, C)
    storage& dh = bw_.dh;       // (N, C)
    storage& da = bw_.da;       // (N, qw)
    // fresh buffers are written (grad_mode::overwrite) rather than zero-filled and accumulated into
    auto fit = [](storage& s, std::size_t n) {
      if (s.size() != n) s = storage(n);
    };
    fit(dh, N * C);
    if (dlogits != nullptr) {
      matmul_backward<T>(be, dh.data(), g(out_w_), nullptr, dlogits, acts_.hf.data(), out_w_, N, C, config_.vocab_size,
                         grad_mode::overwrite);
      if (dhidden != nullptr) accumulate(be, dh.data(), dhidden, N * C);
    } else {
      copy(be, dh.data(), dhidden, N * C);
    }
    zeros(dx, N * C);
    normalize_backward(dx.data(), dh.data(), acts_.x_out.data(), final_w_, final_b_, acts_.meanf.data(),
                       acts_.rstdf.data(), N);
    for (std::size_t l = config_.n_layers; l-- > 0;) {
      auto& la = acts_.layers[l];
      const auto& p = layers_[l];
      // MLP: x_out = x_mid + mlp(norm2(x_mid)); dx holds d(x_out) and becomes d(x_mid).
      constexpr auto write = grad_mode::overwrite;
      fit(bw_.df1, N * F);
      fit(bw_.df2, N * F);
      if (config_.family == model_family::gpt2) {
        matmul_backward(be, bw_.df2.data(), g(p.proj_w), g(p.proj_b), dx.data(), la.f2.data(), p.proj_w, N, F, C, write);
        gelu_backward(be, bw_.df1.data(), la.f1.data(), bw_.df2.data(), N * F, write);
        matmul_backward(be, dh.data(), g(p.fc_w), g(p.fc_b), bw_.df1.data(), la.h2.data(), p.fc_w, N, C, F, write);
      } else {
        fit(bw_.df3, N * F);
        zeros(bw_.df1, N * F);
        zeros(bw_.df2, N * F);
        matmul_backward<T>(be, bw_.df3.data(), g(p.down_w), nullptr, dx.data(), la.f3.data(), p.down_w, N, F, C, write);
        swiglu_backward(be, bw_.df1.data(), bw_.df2.data(), la.f1.data(), la.f2.data(), bw_.df3.data(), N * F);
        matmul_backward<T>(be, dh.data(), g(p.gate_w), nullptr, bw_.df1.data(), la.h2.data(), p.gate_w, N, C, F, write);
        matmul_backward<T>(be, dh.data(), g(p.up_w), nullptr, bw_.df2.data(), la.h2.data(), p.up_w, N, C, F);
      }
      normalize_backward(dx.data(), dh.data(), la.x_mid.data(), p.norm2_w, p.norm2_b, la.mean2.data(),
                         la.rstd2.data(), N);
      // Attention: x_mid = x_in + o_proj(attention(qkv(norm1(x_in)))); dx becomes d(x_in).
      fit(da, N * qw);
      matmul_backward(be, da.data(), g(p.o_w), g(p.o_b), dx.data(), la.a.data(), p.o_w, N, qw, C, write);
      if (config_.family == model_family::gpt2) {
        // dq, dk and dv are accumulated in place in the fused gradient (N, qw + 2 kvw)
        const std::size_t W = qw + 2 * kvw;
        zeros(bw_.dqkv, N * W);
        T* dqkv = bw_.dqkv.data();
        const T* qkv = la.qkv.data();
        attention_backward(be, dqkv, dqkv + qw, dqkv + qw + kvw, da.data(), qkv, qkv + qw, qkv + qw + kvw,
                           la.att.data(), B, Tn, H, KVH, D, attention_strides{qw, W, W, W});
        matmul_backward(be, dh.data(), g(p.qkv_w), g(p.qkv_b), dqkv, la.h1.data(), p.qkv_w, N, C, W, write);
      } else {
        zeros(bw_.dq, N * qw);
        zeros(bw_.dk, N * kvw);
        zeros(bw_.dv, N * kvw);
        attention_backward(be, bw_.dq.data(), bw_.dk.data(), bw_.dv.data(), da.data(), la.q.data(), la.k.data(),
                           la.v.data(), la.att.data(), B, Tn, H, KVH, D);
        rope_backward(be, bw_.dq.data(), acts_.positions.data(), N, H, D, config_.rope_theta, config_.rope);
        rope_backward(be, bw_.dk.data(), acts_.positions.data(), N, KVH, D, config_.rope_theta, config_.rope);
        matmul_backward<T>(be, dh.data(), g(p.q_w), nullptr, bw_.dq.data(), la.h1.data(), p.q_w, N, C, qw, write);
        matmul_backward<T>(be, dh.data(), g(p.k_w), nullptr, bw_.dk.data(), la.h1.data(), p.k_w, N, C, kvw);
        matmul_backward<T>(be, dh.data(), g(p.v_w), nullptr, bw_.dv.data(), la.h1.data(), p.v_w, N, C, kvw);
      }
      normalize_backward(dx.data(), dh.data(), la.x_in.data(), p.norm1_w, p.norm1_b, la.mean1.data(),
                         la.rstd1.data(), N);
    }
    embedding_backward(be, g(wte_), dx.data(), acts_.ids.data(), N, C);
    if (config_.family == model_family::gpt2) embedding_backward(be, g(wpe_), dx.data(), acts_.positions.data(), N, C);
  }

  // --- inference buffers ---------------------------------------------------------------------------
  struct inference_buffers {
    std::vector<std::int32_t> host_ids, host_slots, host_positions;
    index_storage ids, slots, positions;
    storage x, h, stat_a, stat_b, qkv, q, k, v, a, o, f1, f2, f3, logits;
    void resize(std::size_t N, std::size_t C, std::size_t qw, std::size_t kvw, std::size_t F, std::size_t V,
                model_family family) {
      host_ids.resize(N), host_slots.resize(N), host_positions.resize(N);
      if (ids.size() < N) ids = index_storage(N), slots = index_storage(N), positions = index_storage(N);
      auto fit = [](storage& s, std::size_t n) {
        if (s.size() < n) s = storage(n);
      };
      fit(x, N * C), fit(h, N * C), fit(stat_a, N), fit(stat_b, N);
      if (family == model_family::gpt2) fit(qkv, N * (qw + 2 * kvw));
      fit(q, N * qw), fit(k, N * kvw), fit(v, N * kvw), fit(a, N * qw), fit(o, N * C);
      fit(f1, N * F), fit(f2, N * F);
      if (family == model_family::llama) fit(f3, N * F);
      fit(logits, N * V);
    }
  };

  struct backward_buffers {
    storage dx, dh, da, dq, dk, dv, dqkv, df1, df2, df3, dlogits, dlosses;
  };

  transformer_config config_;
  std::vector<parameter_info> table_;
  storage params_, grads_;
  std::vector<layer_params> layers_;
  const T *wte_ = nullptr, *wpe_ = nullptr, *final_w_ = nullptr, *final_b_ = nullptr, *out_w_ = nullptr;
  activations acts_;
  backward_buffers bw_;
  inference_buffers infer_;
  storage scratch_;
  std::unordered_map<std::size_t, q8_0_matrix> q8_;  // decoding weights by parameter offset
  bool decode_in_8_bits_ = false;

 public:
  // Copying would leave the bound pointers aimed at the source's buffers: rebind after a copy.
  transformer(const transformer& other)
      : config_(other.config_), table_(other.table_), params_(other.params_), grads_(other.grads_) {
    bind_pointers();
  }
  transformer& operator=(const transformer& other) {
    if (this != &other) {
      config_ = other.config_;
      table_ = other.table_;
      params_ = other.params_;
      grads_ = other.grads_;
      acts_ = {};
      bind_pointers();
    }
    return *this;
  }
  transformer(transformer&&) noexcept = default;  // vector moves keep their buffers
  transformer& operator=(transformer&&) noexcept = default;
};

}  // namespace cai
