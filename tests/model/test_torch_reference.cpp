// Tests of cai's transformer against Hugging Face transformers on PyTorch, the fp32 reference: tiny random
// GPT-2 and Llama models saved by save_pretrained, with the logits, loss and every parameter gradient
// that PyTorch computes on one fixed batch (tests/model/torch_reference/make_fixtures.py writes them).
// Tolerances (fp32): logits and loss 1e-5 relative (norm of the difference over norm of the reference),
// every gradient 1e-4 relative per tensor; KV-cached decoding and scoring within 1e-5 of the full forward.
// The fixtures are read from tests/data/model/torch, or from $CAI_TORCH_FIXTURES when it is set (the live
// check of tests/model/torch_reference/live.cmake regenerates them there with the installed torch).
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "cai/model/load.hpp"
#include "cai/model/safetensors.hpp"

namespace {

std::filesystem::path fixture_root() {
  if (const char* env = std::getenv("CAI_TORCH_FIXTURES"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(CAI_TEST_DATA_DIR) / "model" / "torch";
}

/// Every fixture directory (one holding expected.safetensors) under the root, sorted.
std::vector<std::filesystem::path> fixture_dirs() {
  std::vector<std::filesystem::path> dirs;
  const auto root = fixture_root();
  if (std::filesystem::is_directory(root))
    for (const auto& e : std::filesystem::directory_iterator(root))
      if (std::filesystem::exists(e.path() / "expected.safetensors")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

/// What PyTorch computed for one fixture (see make_fixtures.py for the layout).
struct reference {
  cai::safetensors_file file;
  std::size_t B = 0, T = 0;
  std::vector<std::int32_t> ids, targets;

  explicit reference(const std::filesystem::path& dir) : file(cai::safetensors_file::open(dir / "expected.safetensors")) {
    const auto& info = file.info("ids");
    REQUIRE(info.shape.size() == 2);
    B = static_cast<std::size_t>(info.shape[0]);
    T = static_cast<std::size_t>(info.shape[1]);
    ids = read_i32("ids");
    targets = read_i32("targets");
    REQUIRE(targets.size() == B * T);
  }
  [[nodiscard]] std::vector<std::int32_t> read_i32(const std::string& name) const {
    REQUIRE(file.info(name).dtype == cai::dtype::i32);
    const auto bytes = file.raw(name);
    std::vector<std::int32_t> out(bytes.size() / 4);
    std::memcpy(out.data(), bytes.data(), bytes.size());  // little-endian hosts, as the test machines are
    return out;
  }
  [[nodiscard]] std::vector<float> read(const std::string& name) const { return file.read_f32(name); }
};

/// ||a - b|| / ||b||, in double.
double relative_error(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    diff += d * d;
    norm += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

/// GPT-2's Conv1D weights: Hugging Face stores them (in, out), cai (out, in).
bool is_conv1d_weight(const std::string& name) {
  for (const char* suffix : {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"})
    if (name.ends_with(suffix)) return true;
  return false;
}

/// log softmax(row)[index], in double.
double log_prob(std::span<const float> row, std::int32_t index) {
  double max = row[0];
  for (float x : row) max = std::max(max, static_cast<double>(x));
  double sum = 0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - max);
  return static_cast<double>(row[static_cast<std::size_t>(index)]) - max - std::log(sum);
}

}  // namespace

TEST_CASE("the torch reference fixtures are present", "[model][reference]") {
  INFO("fixture root " << fixture_root());
  const auto dirs = fixture_dirs();
  CHECK(dirs.size() >= 3);
  for (const auto& dir : dirs) {
    CHECK(std::filesystem::exists(dir / "config.json"));
    CHECK(std::filesystem::exists(dir / "model.safetensors"));
  }
}

TEST_CASE("logits and loss equal the torch reference of Hugging Face transformers", "[model][reference]") {
  for (const auto& dir : fixture_dirs()) {
    INFO("fixture " << dir);
    auto model = cai::load_model(dir);
    const reference ref(dir);
    const auto expected_logits = ref.read("logits");
    const auto logits = model.forward(ref.ids, ref.B, ref.T);
    const double logits_error = relative_error(logits, expected_logits);
    const float loss = model.forward_loss(ref.ids, ref.targets, ref.B, ref.T);
    const float expected_loss = ref.read("loss").at(0);
    const double loss_error = std::abs(static_cast<double>(loss) - expected_loss) / std::abs(static_cast<double>(expected_loss));
    std::cout << dir.filename().string() << ": logits relative error " << logits_error << ", loss " << loss
              << " vs " << expected_loss << " (relative error " << loss_error << ")\n";
    CHECK(logits_error < 1e-5);
    CHECK(loss_error < 1e-5);
  }
}

TEST_CASE("every parameter gradient equals the torch reference of Hugging Face transformers", "[model][reference]") {
  for (const auto& dir : fixture_dirs()) {
    INFO("fixture " << dir);
    auto model = cai::load_model(dir);
    const reference ref(dir);
    model.zero_grad();
    (void)model.forward_loss(ref.ids, ref.targets, ref.B, ref.T);
    model.backward_loss();
    const bool gpt2 = model.config().family == cai::model_family::gpt2;
    double worst = 0;
    std::string worst_name;
    std::size_t references = 0;
    for (const auto& name : ref.file.names()) references += name.starts_with("grad.") ? 1 : 0;
    CHECK(references == model.parameters().size());
    for (const auto& p : model.parameters()) {
      INFO("parameter " << p.name);
      REQUIRE(ref.file.contains("grad." + p.name));
      auto expected = ref.read("grad." + p.name);
      REQUIRE(expected.size() == p.size);
      if (gpt2 && is_conv1d_weight(p.name)) {  // (in, out) -> cai's (out, in)
        std::vector<float> t(p.size);
        const std::size_t rows = p.shape[0], cols = p.shape[1];
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < cols; ++c) t[r * cols + c] = expected[c * rows + r];
        expected = std::move(t);
      }
      const double error = relative_error(std::span<const float>(model.grad(p), p.size), expected);
      if (error > worst) worst = error, worst_name = p.name;
      CHECK(error < 1e-4);
    }
    std::cout << dir.filename().string() << ": largest gradient relative error " << worst << " (" << worst_name
              << ") over " << model.parameters().size() << " tensors\n";
  }
}

TEST_CASE("KV-cached decoding token by token equals the full forward and the torch reference",
          "[model][reference]") {
  for (const auto& dir : fixture_dirs()) {
    INFO("fixture " << dir);
    auto model = cai::load_model(dir);
    const reference ref(dir);
    const std::size_t B = ref.B, T = ref.T, V = model.config().vocab_size;
    const auto expected = ref.read("logits");
    const auto full_span = model.forward(ref.ids, B, T);
    const std::vector<float> full(full_span.begin(), full_span.end());
    // every sequence in its own slot, one token per step for all of them
    cai::kv_cache<cai::cpu_t, float> cache(model.config(), B, T);
    std::vector<float> cached(B * T * V);
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<cai::cache_segment> step;
      for (std::size_t b = 0; b < B; ++b) step.push_back({b, std::span(ref.ids).subspan(b * T + t, 1)});
      const auto out = model.forward_cached(cache, step);
      REQUIRE(out.size() == B * V);
      for (std::size_t b = 0; b < B; ++b)
        std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(b * V), V, cached.begin() + static_cast<std::ptrdiff_t>((b * T + t) * V));
    }
    double largest = 0;
    for (std::size_t i = 0; i < cached.size(); ++i) largest = std::max(largest, std::abs(static_cast<double>(cached[i]) - full[i]));
    const double error = relative_error(cached, expected);
    std::cout << dir.filename().string() << ": cached decoding differs from the full forward by at most " << largest
              << " (absolute); relative error to PyTorch " << error << "\n";
    CHECK(largest < 1e-5);
    CHECK(error < 1e-5);
  }
}

TEST_CASE("scoring a continuation through a forked cache equals the summed log-probs of the torch reference",
          "[model][reference]") {
  for (const auto& dir : fixture_dirs()) {
    INFO("fixture " << dir);
    auto model = cai::load_model(dir);
    const reference ref(dir);
    const std::size_t T = ref.T, V = model.config().vocab_size, context = T / 2;
    const auto expected = ref.read("logits");
    cai::kv_cache<cai::cpu_t, float> cache(model.config(), 2, T);
    for (std::size_t b = 0; b < ref.B; ++b) {
      INFO("sequence " << b);
      const std::span<const std::int32_t> seq = std::span(ref.ids).subspan(b * T, T);
      // the context once in slot 0, forked into slot 1, the continuation appended there
      cache.clear(0);
      cache.clear(1);
      std::vector<cai::cache_segment> prefill{{0, seq.subspan(0, context)}};
      const auto ctx_out = model.forward_cached(cache, prefill);
      const std::vector<float> last(ctx_out.end() - static_cast<std::ptrdiff_t>(V), ctx_out.end());
      cache.copy_slot(0, 1);
      std::vector<cai::cache_segment> continuation{{1, seq.subspan(context)}};
      const auto cont_out = model.forward_cached(cache, continuation);
      double score = log_prob(last, seq[context]);
      for (std::size_t t = context + 1; t < T; ++t)
        score += log_prob(cont_out.subspan((t - 1 - context) * V, V), seq[t]);
      // the reference: log-probs of the same tokens from PyTorch's full forward, summed
      double reference_score = 0;
      for (std::size_t t = context; t < T; ++t)
        reference_score += log_prob(std::span<const float>(expected).subspan((b * T + t - 1) * V, V), seq[t]);
      std::cout << dir.filename().string() << ": sequence " << b << " score " << score << " vs PyTorch "
                << reference_score << " (difference " << std::abs(score - reference_score) << ")\n";
      CHECK(std::abs(score - reference_score) < 1e-5 * std::max(1.0, std::abs(reference_score)));
    }
  }
}
