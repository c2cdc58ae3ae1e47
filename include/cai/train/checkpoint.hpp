/// @file train/checkpoint.hpp
/// A training checkpoint on disk: named float tensors (`tensors.safetensors`, F32: exact), opaque binary
/// blobs such as optimizer states (`<name>.bin`) and a JSON record of the rest (`trainer.json`: step,
/// generator state, options). Writing is atomic: the new checkpoint is written beside the old one and
/// renamed into place, so a crash or a NaN during training never leaves a half-written or poisoned
/// checkpoint where the last good one was.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/random.hpp"

namespace cai {

/// The contents of one checkpoint (see the file comment).
struct checkpoint {
  /// trainer.json: what the trainer needs besides tensors and blobs.
  nlohmann::json meta = nlohmann::json::object();
  /// tensors.safetensors: parameter values, value heads, cached reference log-probabilities...
  std::map<std::string, std::vector<float>> tensors;
  /// <name>.bin: optimizer states and other binary records.
  std::map<std::string, std::string> blobs;

  /// Writes this checkpoint to `dir` atomically (written to `dir`.tmp, then renamed over `dir`).
  /// @throws io_error naming the path that could not be written.
  void save(const std::filesystem::path& dir) const {
    namespace fs = std::filesystem;
    const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    if (ec) throw io_error(tmp.string(), "cannot create the checkpoint directory: " + ec.message());
    std::vector<named_tensor> named;
    for (const auto& [name, values] : tensors)
      named.push_back({name, {static_cast<std::int64_t>(values.size())}, std::span<const float>(values)});
    save_safetensors(tmp / "tensors.safetensors", named, {{"format", "cai-checkpoint"}});
    for (const auto& [name, bytes] : blobs) write_file(tmp / (name + ".bin"), bytes);
    write_file(tmp / "trainer.json", meta.dump(2) + "\n");  // last: its presence marks a complete checkpoint
    fs::remove_all(old, ec);
    if (fs::exists(dir)) {
      fs::rename(dir, old, ec);
      if (ec) throw io_error(dir.string(), "cannot move the previous checkpoint aside: " + ec.message());
    }
    fs::rename(tmp, dir, ec);
    if (ec) throw io_error(dir.string(), "cannot move the new checkpoint into place: " + ec.message());
    fs::remove_all(old, ec);
  }

  /// Reads the checkpoint at `dir` (or, after a crash between the two renames of `save`, the previous
  /// one kept at `dir`.old). @return nothing when there is no checkpoint.
  /// @throws io_error / parse_error / validation_error naming the file that is damaged.
  [[nodiscard]] static std::optional<checkpoint> load(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    fs::path from = dir;
    if (!fs::exists(from / "trainer.json")) {
      from = dir.string() + ".old";
      if (!fs::exists(from / "trainer.json")) return std::nullopt;
    }
    checkpoint c;
    const std::string text = read_file(from / "trainer.json");
    c.meta = nlohmann::json::parse(text, nullptr, false);
    if (c.meta.is_discarded() || !c.meta.is_object())
      throw validation_error((from / "trainer.json").string() + ": not a JSON object; the checkpoint is damaged");
    const auto file = safetensors_file::open(from / "tensors.safetensors");
    for (const auto& name : file.names()) c.tensors[name] = file.read_f32(name);
    for (const auto& entry : fs::directory_iterator(from))
      if (entry.path().extension() == ".bin") c.blobs[entry.path().stem().string()] = read_file(entry.path());
    return c;
  }

  /// The tensor `name`. @throws validation_error naming it when absent or of another size.
  [[nodiscard]] const std::vector<float>& tensor(const std::string& name, std::size_t expected_size) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw validation_error("checkpoint: no tensor '" + name + "'");
    if (it->second.size() != expected_size)
      throw validation_error("checkpoint: tensor '" + name + "' has " + std::to_string(it->second.size()) +
                             " elements; this run expects " + std::to_string(expected_size) +
                             " (a checkpoint of another model or configuration?)");
    return it->second;
  }

  /// The blob `name`. @throws validation_error naming it when absent.
  [[nodiscard]] const std::string& blob(const std::string& name) const {
    auto it = blobs.find(name);
    if (it == blobs.end()) throw validation_error("checkpoint: no record '" + name + ".bin'");
    return it->second;
  }

 private:
  static void write_file(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw io_error(path.string(), "cannot write the checkpoint file");
  }
  static std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path.string(), "cannot open the checkpoint file");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

/// A generator's state as JSON (four 64-bit words as strings: JSON numbers lose bits above 2^53).
[[nodiscard]] inline nlohmann::json rng_to_json(const rng& g) {
  nlohmann::json words = nlohmann::json::array();
  for (std::uint64_t w : g.state()) words.push_back(std::to_string(w));
  return words;
}

/// Restores a generator state written by `rng_to_json`.
/// @throws validation_error when `j` is not four decimal words.
inline void rng_from_json(rng& g, const nlohmann::json& j) {
  if (!j.is_array() || j.size() != 4) throw validation_error("checkpoint: the generator state must be 4 words");
  std::array<std::uint64_t, 4> words{};
  for (std::size_t i = 0; i < 4; ++i) {
    if (!j[i].is_string()) throw validation_error("checkpoint: a generator word is not a string");
    words[i] = std::stoull(j[i].get<std::string>());
  }
  g.set_state(words);
}

}  // namespace cai
