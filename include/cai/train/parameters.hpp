/// @file train/parameters.hpp
/// What a trainer trains: every weight of a transformer (`full_parameters`) or low-rank adapters on some
/// of its projections with the base frozen (`lora_adapters`, Hu et al. 2021, arXiv:2106.09685). Both
/// model the `trainable_parameters` concept below, so every trainer of `train/` runs with either.
///
/// A trainer drives a parameter set through one step as follows:
///
///     params.zero_grad();
///     params.before_forward();            // LoRA: writes W0 + (alpha / r) B A into the model
///     ... model.forward(...); model.backward(...) ...
///     params.after_backward();            // LoRA: reduces the model's dW into dA and dB
///     optimizer_state.update(params.values(), params.gradients());
///
/// LoRA here keeps the frozen base W0 of each adapted weight aside and materialises the effective weight
/// W = W0 + s B A (s = alpha / rank) before each forward; the gradients of A and B follow from the
/// model's gradient of W by the chain rule: dA = s B^T dW, dB = s dW A^T. That is exactly the gradient of
/// the usual factored form (x W0^T + s x A^T B^T), costs one (out x rank x in) product per adapted matrix
/// and step (small beside the batch's products), and needs no change to the model's kernels, on any
/// backend: `lora_merge` and `lora_backward` are defined here for `cpu_t` (Eigen) and in
/// backend/cuda_train.cuh for `cuda_t` (cuBLAS), and the adapters and the frozen base live in the
/// backend's memory. Adapters are saved in the PEFT layout (`adapter_model.safetensors` + `adapter_config.json`,
/// names `base_model.model.<module>.lora_A.weight`) so that Hugging Face PEFT loads them, and `merge()`
/// leaves W0 + s B A in the model for good.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "cai/error.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/model/transformer.hpp"
#include "cai/random.hpp"

namespace cai {

/// A set of trainable parameters: one flat buffer of values and one of gradients, with the hooks a
/// trainer calls around the model's forward and backward passes.
///
/// Requirements, for `p` a `P&`:
///  1. `typename P::storage_type`: the buffer type; `p.values()` and `p.gradients()` return `storage_type&`
///     of equal size, what an optimizer's `state<storage_type>` updates;
///  2. `p.model()` returns the `transformer` the parameters belong to;
///  3. `p.zero_grad()`, `p.before_forward()`, `p.after_backward()` (see the file comment);
///  4. `p.tensor_name(i)` names the tensor that holds element `i` of `values()` (error messages).
///
/// Modelled by: `full_parameters<Backend>`, `lora_adapters<Backend>`.
template <class P>
concept trainable_parameters = requires(P& p, std::size_t i) {
  typename P::storage_type;
  { p.values() } -> std::same_as<typename P::storage_type&>;
  { p.gradients() } -> std::same_as<typename P::storage_type&>;
  p.model();
  p.zero_grad();
  p.before_forward();
  p.after_backward();
  { p.tensor_name(i) } -> std::convertible_to<std::string>;
};

/// Every weight of `model`: full fine-tuning. The values and gradients are the model's own buffers (device
/// memory for `cuda_t`: the trainers update them in place there).
template <class Backend = CAI_DEFAULT_BACKEND>
class full_parameters {
 public:
  using backend_type = Backend;
  using model_type = transformer<Backend, float>;
  using storage_type = typename Backend::template storage<float>;

  /// @pre `model` outlives this object.
  explicit full_parameters(model_type& model) : model_(&model) {}

  [[nodiscard]] model_type& model() noexcept { return *model_; }
  [[nodiscard]] const model_type& model() const noexcept { return *model_; }
  [[nodiscard]] storage_type& values() noexcept { return model_->parameter_storage(); }
  [[nodiscard]] storage_type& gradients() noexcept { return model_->gradient_storage(); }
  void zero_grad() { model_->zero_grad(); }
  void before_forward() noexcept {}
  void after_backward() noexcept {}
  [[nodiscard]] std::string tensor_name(std::size_t element) const {
    for (const auto& p : model_->parameters())
      if (element >= p.offset && element < p.offset + p.size) return p.name;
    return "parameter element " + std::to_string(element);
  }

 private:
  model_type* model_;
};

/// The effective weight of a LoRA adapter: w = w0 + scale · b a.
/// @param w (out, in) written   @param w0 (out, in)   @param a (r, in)   @param b (out, r); backend memory.
template <class T>
void lora_merge(cpu_t, T* w, const T* w0, const T* a, const T* b, T scale, std::size_t out, std::size_t in,
                std::size_t r) {
  const auto O = static_cast<Eigen::Index>(out), I = static_cast<Eigen::Index>(in), R = static_cast<Eigen::Index>(r);
  detail::matrix_map<T> W(w, O, I);
  detail::const_matrix_map<T> W0(w0, O, I);
  detail::const_matrix_map<T> A(a, R, I);
  detail::const_matrix_map<T> B(b, O, R);
  W.noalias() = W0;
  W.noalias() += scale * (B * A);
}

/// The gradients of a LoRA adapter from the gradient of its effective weight (chain rule of `lora_merge`):
/// da += scale · bᵀ dw, db += scale · dw aᵀ (accumulated).
/// @param da (r, in)   @param db (out, r)   @param dw (out, in)   @param a (r, in)   @param b (out, r).
template <class T>
void lora_backward(cpu_t, T* da, T* db, const T* dw, const T* a, const T* b, T scale, std::size_t out,
                   std::size_t in, std::size_t r) {
  const auto O = static_cast<Eigen::Index>(out), I = static_cast<Eigen::Index>(in), R = static_cast<Eigen::Index>(r);
  detail::const_matrix_map<T> DW(dw, O, I);
  detail::const_matrix_map<T> A(a, R, I);
  detail::const_matrix_map<T> B(b, O, R);
  detail::matrix_map<T> DA(da, R, I);
  detail::matrix_map<T> DB(db, O, R);
  DA.noalias() += scale * (B.transpose() * DW);
  DB.noalias() += scale * (DW * A.transpose());
}

/// Which projections get adapters, and their shape.
struct lora_options {
  /// r, the rank of each adapter; >= 1 and at most the smaller side of each adapted matrix.
  std::size_t rank = 8;
  /// alpha; the update is scaled by alpha / rank (PEFT's `lora_alpha`).
  double alpha = 16.0;
  /// Names of the adapted modules, matched against the end of the weight's module name: "q_proj",
  /// "v_proj" (Llama), "c_attn" (GPT-2's fused q, k, v), "mlp.c_fc", "down_proj", ... Empty: the
  /// attention's query and value projections of either family ("q_proj", "v_proj", "c_attn").
  std::vector<std::string> targets;
  /// Seed of the initialisation of A (B starts at zero, so the adapted model starts equal to the base).
  std::uint64_t seed = 0;

  void validate() const {
    if (rank == 0) throw config_error("lora_options: rank = 0 is invalid: it must be >= 1 (typical: 4 to 64)");
    if (!(std::isfinite(alpha) && alpha > 0.0))
      throw config_error("lora_options: alpha = " + std::to_string(alpha) + " is invalid: it must be > 0 (typical: 2 x rank)");
  }
};

/// Low-rank adapters on some of a transformer's weight matrices, the rest frozen. See the file comment.
template <class Backend = CAI_DEFAULT_BACKEND>
class lora_adapters {
 public:
  using backend_type = Backend;
  using model_type = transformer<Backend, float>;
  using storage_type = typename Backend::template storage<float>;

  /// One adapted weight: W (out, in) = W0 + scale B A, A: (rank, in), B: (out, rank).
  struct adapter {
    std::string weight;   ///< the model's parameter name, e.g. "model.layers.0.self_attn.q_proj.weight"
    std::size_t out = 0, in = 0;
    std::size_t a_offset = 0, b_offset = 0;  ///< into values() / gradients()
    storage_type base;                       ///< W0: (out, in), backend memory
  };

  /// Adapters on every weight of `model` whose module name ends with one of `options.targets`.
  /// @throws config_error when no weight matches or the rank exceeds a matched matrix's sides.
  /// @pre `model` outlives this object; until `merge()`, its adapted weights are owned by the adapters.
  lora_adapters(model_type& model, lora_options options) : model_(&model), options_(std::move(options)) {
    options_.validate();
    if (options_.targets.empty()) options_.targets = {"q_proj", "v_proj", "c_attn"};
    scale_ = static_cast<float>(options_.alpha / static_cast<double>(options_.rank));
    const std::size_t r = options_.rank;
    std::size_t offset = 0;
    for (const auto& p : model.parameters()) {
      if (p.shape.size() != 2 || !p.name.ends_with(".weight")) continue;
      const std::string module = p.name.substr(0, p.name.size() - 7);
      bool match = false;
      for (const auto& t : options_.targets) match = match || module == t || module.ends_with("." + t);
      if (!match) continue;
      adapter a{p.name, p.shape[0], p.shape[1], 0, 0, {}};
      if (r > std::min(a.out, a.in))
        throw config_error("lora_adapters: rank " + std::to_string(r) + " exceeds the sides of " + p.name + " (" +
                           std::to_string(a.out) + " x " + std::to_string(a.in) + ")");
      a.a_offset = offset;
      offset += r * a.in;
      a.b_offset = offset;
      offset += a.out * r;
      a.base = storage_type(p.size);
      copy(Backend{}, a.base.data(), model.data() + p.offset, p.size);
      adapters_.push_back(std::move(a));
    }
    if (adapters_.empty()) {
      std::string names;
      for (const auto& t : options_.targets) names += (names.empty() ? "" : ", ") + t;
      throw config_error("lora_adapters: no weight of this " + std::string(to_string(model.config().family)) +
                         " model matches the targets (" + names + ")");
    }
    std::vector<float> host(offset, 0.0f);  // drawn on the host, then copied into the backend's storage
    // PEFT's initialisation: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0.
    rng g(options_.seed);
    for (const auto& a : adapters_) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(a.in));
      for (std::size_t i = 0; i < r * a.in; ++i)
        host[a.a_offset + i] = static_cast<float>((2.0 * g.uniform_real() - 1.0) * bound);
    }
    values_ = storage_type(offset);
    gradients_ = storage_type(offset);
    copy_from_host(Backend{}, values_.data(), host.data(), offset);
  }

  [[nodiscard]] model_type& model() noexcept { return *model_; }
  [[nodiscard]] const model_type& model() const noexcept { return *model_; }
  [[nodiscard]] storage_type& values() noexcept { return values_; }
  [[nodiscard]] storage_type& gradients() noexcept { return gradients_; }
  [[nodiscard]] const std::vector<adapter>& adapters() const noexcept { return adapters_; }
  [[nodiscard]] const lora_options& options() const noexcept { return options_; }
  /// alpha / rank.
  [[nodiscard]] float scale() const noexcept { return scale_; }

  void zero_grad() {
    fill(Backend{}, gradients_.data(), 0.0f, gradients_.size());
    model_->zero_grad();
  }

  /// Writes W = W0 + scale B A into every adapted weight of the model (`lora_merge` on the backend).
  void before_forward() {
    for (const auto& a : adapters_)
      lora_merge(Backend{}, model_->data(model_->parameter(a.weight)), a.base.data(), values_.data() + a.a_offset,
                 values_.data() + a.b_offset, scale_, a.out, a.in, options_.rank);
  }

  /// dA += scale B^T dW, dB += scale dW A^T from the model's gradient of each adapted weight
  /// (`lora_backward` on the backend).
  void after_backward() {
    for (const auto& a : adapters_)
      lora_backward(Backend{}, gradients_.data() + a.a_offset, gradients_.data() + a.b_offset,
                    model_->grad(model_->parameter(a.weight)), values_.data() + a.a_offset,
                    values_.data() + a.b_offset, scale_, a.out, a.in, options_.rank);
  }

  [[nodiscard]] std::string tensor_name(std::size_t element) const {
    for (const auto& a : adapters_) {
      const std::string module = a.weight.substr(0, a.weight.size() - 7);
      if (element >= a.a_offset && element < a.b_offset) return module + ".lora_A.weight";
      if (element >= a.b_offset && element < a.b_offset + a.out * options_.rank) return module + ".lora_B.weight";
    }
    return "adapter element " + std::to_string(element);
  }

  /// Leaves W0 + scale B A in the model's weights for good; the adapters then have no effect on it
  /// (do not call `before_forward` again).
  void merge() { before_forward(); }

  /// Writes the adapters as Hugging Face PEFT does: `adapter_model.safetensors` (tensors
  /// `base_model.model.<module>.lora_A.weight` (rank, in) and `.lora_B.weight` (out, rank)) and
  /// `adapter_config.json`. GPT-2's Conv1D modules are stored in cai's (out, in) orientation; PEFT's
  /// `fan_in_fan_out` is then false.
  void save(const std::filesystem::path& dir) const {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw io_error(dir.string(), "cannot create the directory: " + ec.message());
    std::vector<named_tensor> tensors;
    const auto r = static_cast<std::int64_t>(options_.rank);
    std::vector<float> host(values_.size());
    copy_to_host(Backend{}, host.data(), values_.data(), values_.size());
    for (const auto& a : adapters_) {
      const std::string module = "base_model.model." + a.weight.substr(0, a.weight.size() - 7);
      tensors.push_back({module + ".lora_A.weight", {r, static_cast<std::int64_t>(a.in)},
                         std::span<const float>(host.data() + a.a_offset, options_.rank * a.in)});
      tensors.push_back({module + ".lora_B.weight", {static_cast<std::int64_t>(a.out), r},
                         std::span<const float>(host.data() + a.b_offset, a.out * options_.rank)});
    }
    save_safetensors(dir / "adapter_model.safetensors", tensors, {{"format", "pt"}});
    nlohmann::json targets = nlohmann::json::array();
    for (const auto& t : options_.targets) targets.push_back(t);
    const nlohmann::json config = {{"peft_type", "LORA"},      {"task_type", "CAUSAL_LM"},
                                   {"r", options_.rank},       {"lora_alpha", options_.alpha},
                                   {"lora_dropout", 0.0},      {"target_modules", targets},
                                   {"bias", "none"},           {"fan_in_fan_out", false},
                                   {"inference_mode", true}};
    std::ofstream out(dir / "adapter_config.json", std::ios::binary | std::ios::trunc);
    out << config.dump(2) << '\n';
    if (!out) throw io_error((dir / "adapter_config.json").string(), "write failed");
  }

  /// Reads adapters written by `save` (the same targets and rank) into `values()`.
  /// @throws io_error / validation_error naming the file and the tensor that is missing or misshapen.
  void load(const std::filesystem::path& dir) {
    const auto file = safetensors_file::open(dir / "adapter_model.safetensors");
    std::vector<float> host(values_.size());
    copy_to_host(Backend{}, host.data(), values_.data(), values_.size());
    for (const auto& a : adapters_) {
      const std::string module = "base_model.model." + a.weight.substr(0, a.weight.size() - 7);
      file.read_f32(module + ".lora_A.weight", std::span<float>(host.data() + a.a_offset, options_.rank * a.in));
      file.read_f32(module + ".lora_B.weight", std::span<float>(host.data() + a.b_offset, a.out * options_.rank));
    }
    copy_from_host(Backend{}, values_.data(), host.data(), host.size());
  }

 private:
  model_type* model_;
  lora_options options_;
  float scale_ = 1.0f;
  std::vector<adapter> adapters_;
  storage_type values_, gradients_;
};

}  // namespace cai
