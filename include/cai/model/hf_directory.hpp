/// @file model/hf_directory.hpp
/// A Hugging Face model directory as `save_pretrained` writes it: `config.json`, the weights in one
/// `model.safetensors` or in shards listed by `model.safetensors.index.json` (its `"weight_map"` maps each
/// tensor name to a shard file), and the tokenizer files. This header opens such a directory, validates
/// the index against the shards (a shard named in the index but absent, a tensor the index places in a
/// shard that lacks it, a tensor in two shards: each an error naming the file and the tensor), checks by
/// default that the tensors match the config (`check_tensors` in hf_config.hpp), looks tensors up across
/// shards, and records which tokenizer files are present (the tokenizer itself reads them).
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
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/detail/json_text.hpp"
#include "cai/error.hpp"
#include "cai/model/hf_config.hpp"
#include "cai/model/safetensors.hpp"

namespace cai {

/// The tokenizer files found in a model directory; a file that is absent is `std::nullopt`.
struct hf_tokenizer_files {
  std::optional<std::filesystem::path> tokenizer_json;         ///< tokenizer.json (the `tokenizers` library)
  std::optional<std::filesystem::path> vocab_json;             ///< vocab.json (GPT-2 BPE)
  std::optional<std::filesystem::path> merges_txt;             ///< merges.txt (GPT-2 BPE)
  std::optional<std::filesystem::path> tokenizer_config_json;  ///< tokenizer_config.json (chat template, special tokens)
  std::optional<std::filesystem::path> special_tokens_map_json;  ///< special_tokens_map.json

  /// Whether any tokenizer was found: tokenizer.json, or vocab.json with merges.txt.
  [[nodiscard]] bool any() const noexcept { return tokenizer_json || (vocab_json && merges_txt); }
};

/// How `hf_directory::open` treats the checkpoint.
struct hf_open_options {
  /// Check the tensors against the config (missing, unexpected, wrong shape: `check_tensors`).
  bool check_tensors = true;
};

/// An opened Hugging Face model directory: its config, its safetensors shards (memory-mapped), and the
/// paths of its tokenizer files. Move-only; the spans that `raw` returns live as long as the object.
class hf_directory {
 public:
  /// Opens `dir`: reads `config.json`, then `model.safetensors.index.json` and every shard it names when
  /// the index exists, else `model.safetensors`.
  /// @throws io_error naming the file when config.json, the weights or a shard named by the index is
  /// missing or unreadable; parse_error when a JSON file is not JSON; validation_error naming the file and
  /// tensor for a malformed index, an inconsistent shard, a malformed safetensors file, or (with
  /// `options.check_tensors`) tensors that do not match the config.
  [[nodiscard]] static hf_directory open(const std::filesystem::path& dir, hf_open_options options = {}) {
    hf_directory d;
    d.root_ = dir;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw io_error(dir.string(), "not a directory");
    d.config_ = load_hf_config(dir / "config.json");
    d.find_tokenizer_files();

    const auto index = dir / "model.safetensors.index.json";
    const auto single = dir / "model.safetensors";
    if (std::filesystem::exists(index, ec)) {
      d.open_sharded(index);
    } else if (std::filesystem::exists(single, ec)) {
      d.shards_.push_back(safetensors_file::open(single));
      for (const auto& t : d.shards_.back().tensors()) d.where_.emplace(t.name, 0);
    } else {
      throw io_error(dir.string(), "no model.safetensors and no model.safetensors.index.json (cai reads safetensors "
                                   "checkpoints only; convert pytorch_model.bin with the safetensors package)");
    }
    if (options.check_tensors) check_tensors(d.config_, d.shapes(), dir.string());
    return d;
  }

  /// The directory.
  [[nodiscard]] const std::filesystem::path& root() const noexcept { return root_; }
  /// The parsed config.json.
  [[nodiscard]] const hf_config& config() const noexcept { return config_; }
  /// The transformer shape the config describes (`to_transformer_config`).
  [[nodiscard]] transformer_config transformer() const { return to_transformer_config(config_); }
  /// The model family of the config.
  [[nodiscard]] model_family family() const noexcept { return family_of(config_); }
  /// The tokenizer files that exist in the directory.
  [[nodiscard]] const hf_tokenizer_files& tokenizer_files() const noexcept { return tokenizer_; }
  /// The shards (one for a single model.safetensors), in the order of their file names.
  [[nodiscard]] const std::vector<safetensors_file>& shards() const noexcept { return shards_; }
  /// The `"metadata"` object of the index (e.g. `total_size`); empty without an index.
  [[nodiscard]] const nlohmann::json& index_metadata() const noexcept { return index_metadata_; }

  /// All tensor names, sorted.
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& [name, shard] : where_) out.push_back(name);
    return out;
  }
  /// Whether any shard holds tensor `name`.
  [[nodiscard]] bool contains(std::string_view name) const { return where_.find(name) != where_.end(); }
  /// Name -> shape of every tensor.
  [[nodiscard]] cai::tensor_shapes shapes() const {
    cai::tensor_shapes out;
    for (const auto& [name, shard] : where_) out.emplace(name, shards_[shard].info(name).shape);
    return out;
  }
  /// The shard that holds tensor `name`.
  /// @throws validation_error naming the directory and the tensor when no shard holds it.
  [[nodiscard]] const safetensors_file& shard_of(std::string_view name) const {
    auto it = where_.find(name);
    if (it == where_.end())
      throw validation_error(root_.string() + ": no tensor named '" + std::string(name) + "' in the checkpoint (" +
                             std::to_string(where_.size()) + " tensors in " + std::to_string(shards_.size()) +
                             " file(s))");
    return shards_[it->second];
  }
  /// The header entry of tensor `name` (offsets are relative to its shard's data section).
  [[nodiscard]] const tensor_info& info(std::string_view name) const { return shard_of(name).info(name); }
  /// The bytes of tensor `name` in its shard's mapping.
  [[nodiscard]] std::span<const std::byte> raw(std::string_view name) const { return shard_of(name).raw(name); }
  /// Tensor `name` converted to floats: (info(name).element_count()), row-major.
  [[nodiscard]] std::vector<float> read_f32(std::string_view name) const { return shard_of(name).read_f32(name); }
  /// Tensor `name` converted into `out`: (info(name).element_count()).
  void read_f32(std::string_view name, std::span<float> out) const { shard_of(name).read_f32(name, out); }

 private:
  hf_directory() = default;

  void find_tokenizer_files() {
    const auto found = [&](const char* file) -> std::optional<std::filesystem::path> {
      auto p = root_ / file;
      std::error_code ec;
      if (std::filesystem::is_regular_file(p, ec)) return p;
      return std::nullopt;
    };
    tokenizer_.tokenizer_json = found("tokenizer.json");
    tokenizer_.vocab_json = found("vocab.json");
    tokenizer_.merges_txt = found("merges.txt");
    tokenizer_.tokenizer_config_json = found("tokenizer_config.json");
    tokenizer_.special_tokens_map_json = found("special_tokens_map.json");
  }

  void open_sharded(const std::filesystem::path& index_path) {
    const std::string file = index_path.string();
    std::ifstream in(index_path, std::ios::binary);
    if (!in) throw io_error(file, "cannot open the shard index");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json index = detail::parse_json_text(text, file);
    if (!index.is_object()) throw validation_error(file + ": the shard index must be a JSON object");
    if (auto m = index.find("metadata"); m != index.end() && !m->is_null()) index_metadata_ = *m;
    auto map = index.find("weight_map");
    if (map == index.end()) throw validation_error(file + ": missing field 'weight_map'");
    if (!map->is_object())
      throw validation_error(file + ": field 'weight_map' must be an object (tensor name -> shard file), but it is " +
                             std::string(map->type_name()));

    std::map<std::string, std::size_t> shard_ids;  // shard file -> position in shards_
    std::map<std::string, std::string> listed;     // tensor -> shard file
    for (const auto& [tensor, shard] : map->items()) {
      if (!shard.is_string())
        throw validation_error(file + ": weight_map entry for tensor '" + tensor + "' must be a file name, but it is " +
                               shard.dump());
      const auto& name = shard.get_ref<const std::string&>();
      const std::filesystem::path rel(name);
      if (name.empty() || rel.is_absolute() || rel.has_parent_path() || name == "." || name == "..")
        throw validation_error(file + ": weight_map entry for tensor '" + tensor + "' names \"" + name +
                               "\", which is not a file name inside the model directory");
      listed.emplace(tensor, name);
      shard_ids.emplace(name, 0);
    }
    if (listed.empty()) throw validation_error(file + ": field 'weight_map' lists no tensors");

    for (auto& [name, id] : shard_ids) {
      const auto shard_path = root_ / name;
      std::error_code ec;
      if (!std::filesystem::exists(shard_path, ec))
        throw io_error(shard_path.string(), "shard file named in " + index_path.filename().string() + " is missing");
      id = shards_.size();
      shards_.push_back(safetensors_file::open(shard_path));
    }
    for (const auto& [tensor, name] : listed) {
      const auto id = shard_ids.at(name);
      if (!shards_[id].contains(tensor))
        throw validation_error(file + ": weight_map places tensor '" + tensor + "' in " + name +
                               ", which does not hold it");
      where_.emplace(tensor, id);
    }
    for (std::size_t id = 0; id < shards_.size(); ++id)
      for (const auto& t : shards_[id].tensors()) {
        auto it = where_.find(t.name);
        if (it == where_.end())
          throw validation_error(shards_[id].path().string() + ": holds tensor '" + t.name + "', which " +
                                 index_path.filename().string() + " does not list");
        if (it->second != id)
          throw validation_error(shards_[id].path().string() + ": holds tensor '" + t.name + "', which " +
                                 index_path.filename().string() + " places in " +
                                 shards_[it->second].path().filename().string());
      }
  }

  std::filesystem::path root_;
  hf_config config_;
  hf_tokenizer_files tokenizer_;
  std::vector<safetensors_file> shards_;
  std::map<std::string, std::size_t, std::less<>> where_;  // tensor -> position in shards_
  nlohmann::json index_metadata_ = nlohmann::json::object();
};

}  // namespace cai
