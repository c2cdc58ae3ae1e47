// A small GGUF writer for the tests of cai/model/gguf.hpp: it assembles files byte by byte, so that the
// tests can write well-formed files with chosen details (alignment, types, offsets) and malformed ones
// (any field set to any value). Not a library facility: nothing is checked here on purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace cai_test {

/// The little-endian bytes of a scalar.
template <class T>
std::string le(T v) {
  std::string s(sizeof v, '\0');
  std::memcpy(s.data(), &v, sizeof v);
  return s;
}

/// A GGUF string: u64 length + bytes.
inline std::string gguf_str(std::string_view s) { return le<std::uint64_t>(s.size()) + std::string(s); }

/// GGUF metadata value type ids.
enum vt : std::uint32_t { u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
                          str = 8, arr = 9, u64 = 10, i64 = 11, f64 = 12 };

/// ggml type ids used by the tests.
enum gt : std::uint32_t { t_f32 = 0, t_f16 = 1, t_q4_0 = 2, t_q4_1 = 3, t_q8_0 = 8, t_bf16 = 30 };

struct gguf_builder {
  struct kv_entry {
    std::string key;
    std::uint32_t type;
    std::string value;  // encoded value bytes
  };
  struct tensor_entry {
    std::string name;
    std::vector<std::uint64_t> ne;
    std::uint32_t type;
    std::uint64_t offset;
  };

  std::string magic = "GGUF";
  std::uint32_t version = 3;
  std::optional<std::uint64_t> tensor_count;  // overrides the real count
  std::optional<std::uint64_t> kv_count;      // overrides the real count
  std::uint64_t alignment = 32;               // padding before the data section
  std::vector<kv_entry> kvs;
  std::vector<tensor_entry> tensors;
  std::string data;  // the data section

  gguf_builder& kv(std::string key, std::uint32_t type, std::string value) {
    kvs.push_back({std::move(key), type, std::move(value)});
    return *this;
  }
  gguf_builder& kv_u32(std::string key, std::uint32_t v) { return kv(std::move(key), u32, le(v)); }
  gguf_builder& kv_f32(std::string key, float v) { return kv(std::move(key), f32, le(v)); }
  gguf_builder& kv_string(std::string key, std::string_view v) { return kv(std::move(key), str, gguf_str(v)); }
  gguf_builder& kv_strings(std::string key, const std::vector<std::string>& v) {
    std::string bytes = le<std::uint32_t>(str) + le<std::uint64_t>(v.size());
    for (const auto& s : v) bytes += gguf_str(s);
    return kv(std::move(key), arr, bytes);
  }

  /// Adds a tensor info; with `bytes`, also appends that many bytes of data at `offset` (zero-filled
  /// up to it).
  gguf_builder& tensor(std::string name, std::vector<std::uint64_t> ne, std::uint32_t type, std::uint64_t offset,
                       std::optional<std::size_t> bytes = std::nullopt) {
    tensors.push_back({std::move(name), std::move(ne), type, offset});
    if (bytes) {
      if (data.size() < offset + *bytes) data.resize(offset + *bytes, '\0');
    }
    return *this;
  }

  /// The header up to the end of the tensor infos.
  [[nodiscard]] std::string header() const {
    std::string out = magic + le(version) + le<std::uint64_t>(tensor_count.value_or(tensors.size())) +
                      le<std::uint64_t>(kv_count.value_or(kvs.size()));
    for (const auto& e : kvs) out += gguf_str(e.key) + le(e.type) + e.value;
    for (const auto& t : tensors) {
      out += gguf_str(t.name) + le<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
      for (auto d : t.ne) out += le(d);
      out += le(t.type) + le(t.offset);
    }
    return out;
  }

  /// The whole file: header, padding to the alignment, data section.
  [[nodiscard]] std::string build() const {
    std::string out = header();
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    return out + data;
  }
};

/// A minimal valid Llama file: configuration, a 4-token vocabulary and one F32 tensor.
inline gguf_builder llama_builder() {
  gguf_builder b;
  b.kv_string("general.architecture", "llama")
      .kv_u32("llama.block_count", 2)
      .kv_u32("llama.context_length", 128)
      .kv_u32("llama.embedding_length", 8)
      .kv_u32("llama.feed_forward_length", 16)
      .kv_u32("llama.attention.head_count", 2)
      .kv_u32("llama.attention.head_count_kv", 1)
      .kv_f32("llama.rope.freq_base", 10000.0f)
      .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f)
      .kv_string("tokenizer.ggml.model", "gpt2")
      .kv_strings("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "b"})
      .tensor("output_norm.weight", {8}, t_f32, 0, 32);
  return b;
}

/// Writes `bytes` to a file named `name` in a folder of this process, and returns its path.
inline std::filesystem::path write_temp(const std::string& name, const std::string& bytes) {
  const auto dir = std::filesystem::temp_directory_path() / ("cai-test-gguf-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace cai_test
