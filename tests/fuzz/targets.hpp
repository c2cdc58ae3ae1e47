// The fuzz targets' bodies, shared by the libFuzzer executables (tests/fuzz/project, built with clang and
// -fsanitize=fuzzer) and by the regression test (test_regressions.cpp, built with the normal compiler),
// which replays every input that ever crashed a target.
//
// A target may throw cai::error for bad input: that is the library working. Any other exception, a
// crash, a sanitizer report or a hang is a bug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "cai/constitution/io.hpp"
#include "cai/error.hpp"
#include "cai/model/gguf.hpp"
#include "cai/model/safetensors.hpp"
#include "cai/model/tokenizer.hpp"

namespace cai_fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The constitution reader on arbitrary bytes, in every format it detects.
inline void constitution_reader(const std::uint8_t* data, std::size_t size) {
  cai::load_options options;
  options.on_warning = [](const std::string&) {};
  try {
    const cai::constitution c = cai::parse_constitution(as_text(data, size), "fuzz-input", options);
    (void)cai::to_json(c).dump();  // what loads must also serialise
  } catch (const cai::error&) {
  }
}

/// The file readers map files: each input is written to a scratch file of this process first.
inline std::filesystem::path scratch_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  static const std::filesystem::path dir =
      std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
  const std::filesystem::path path = dir / ("cai-fuzz-" + std::to_string(::getpid()) + suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

/// The safetensors reader: header, offsets, and the conversion of every readable tensor.
inline void safetensors_reader(const std::uint8_t* data, std::size_t size) {
  const auto path = scratch_file(data, size, ".safetensors");
  try {
    const auto file = cai::safetensors_file::open(path);
    for (const auto& t : file.tensors()) {
      (void)file.raw(t.name);
      try {
        (void)file.read_f32(t.name);
      } catch (const cai::error&) {  // a dtype that read_f32 does not convert
      }
    }
  } catch (const cai::error&) {
  }
}

/// The GGUF reader: header, typed metadata, tensor infos, the Llama config and tokenizer metadata, and
/// the dequantisation of every tensor of a supported type.
inline void gguf_reader(const std::uint8_t* data, std::size_t size) {
  const auto path = scratch_file(data, size, ".gguf");
  try {
    const cai::gguf_file file(path);
    for (const auto& t : file.tensors()) {
      try {
        (void)file.dequantize(t.name);
      } catch (const cai::error&) {
      }
    }
    try {
      (void)cai::read_llama_config(file);
    } catch (const cai::error&) {
    }
    try {
      const auto meta = cai::read_tokenizer_metadata(file);
      const auto tok = cai::bpe_tokenizer::from_gguf_metadata(meta);
      (void)tok.decode(tok.encode("Human: hi\n\nAssistant: hello 123"));
    } catch (const cai::error&) {
    }
  } catch (const cai::error&) {
  }
}

/// The tokenizer.json reader; a tokenizer that loads then encodes and decodes the input itself.
inline void tokenizer_json_reader(const std::uint8_t* data, std::size_t size) {
  try {
    const auto tok = cai::bpe_tokenizer::from_tokenizer_json_text(as_text(data, size), "fuzz-input");
    try {
      (void)tok.decode(tok.encode(as_text(data, size)));
    } catch (const cai::error&) {
    }
  } catch (const cai::error&) {
  }
}

/// GPT-2's tokenizer files: the input up to its first NUL byte is encoder.json, the rest vocab.bpe.
inline void gpt2_files_reader(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = as_text(data, size);
  const std::size_t cut = std::min(text.find('\0'), text.size());
  const std::string_view encoder = text.substr(0, cut);
  const std::string_view merges = cut < text.size() ? text.substr(cut + 1) : std::string_view{};
  const auto encoder_path = scratch_file(reinterpret_cast<const std::uint8_t*>(encoder.data()), encoder.size(), ".encoder.json");
  const auto merges_path = scratch_file(reinterpret_cast<const std::uint8_t*>(merges.data()), merges.size(), ".vocab.bpe");
  try {
    const auto tok = cai::bpe_tokenizer::from_gpt2_files(encoder_path, merges_path);
    try {
      (void)tok.decode(tok.encode(text.substr(0, std::min<std::size_t>(text.size(), 256))));
    } catch (const cai::error&) {
    }
  } catch (const cai::error&) {
  }
}

}  // namespace cai_fuzz
