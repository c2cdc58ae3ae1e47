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

#include "cai/constitution/io.hpp"
#include "cai/error.hpp"

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

}  // namespace cai_fuzz
