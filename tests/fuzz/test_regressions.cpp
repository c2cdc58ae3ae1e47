// Replays every input under tests/fuzz/regressions/<target>/ (inputs that once crashed a fuzz target)
// and every seed of tests/fuzz/corpus/<target>/ through the target's body, with the normal compiler:
// each must finish without a crash or an exception other than cai::error.
#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "targets.hpp"

namespace {
const std::map<std::string, std::function<void(const std::uint8_t*, std::size_t)>>& targets() {
  static const std::map<std::string, std::function<void(const std::uint8_t*, std::size_t)>> t{
      {"constitution", cai_fuzz::constitution_reader},
      {"safetensors", cai_fuzz::safetensors_reader},
      {"gguf", cai_fuzz::gguf_reader},
      {"tokenizer_json", cai_fuzz::tokenizer_json_reader},
      {"gpt2_files", cai_fuzz::gpt2_files_reader},
  };
  return t;
}
}  // namespace

TEST_CASE("every saved fuzz input replays without a crash or a stray exception", "[fuzz][regression]") {
  const std::filesystem::path root = std::filesystem::path(CAI_TEST_DATA_DIR).parent_path() / "fuzz";
  std::size_t replayed = 0;
  for (const char* kind : {"regressions", "corpus"}) {
    for (const auto& [name, body] : targets()) {
      const auto dir = root / kind / name;
      if (!std::filesystem::exists(dir)) continue;
      for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().filename().string().starts_with(".")) continue;
        std::ifstream in(entry.path(), std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        INFO(entry.path().string());
        REQUIRE_NOTHROW(body(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
        ++replayed;
      }
    }
  }
  CHECK(replayed > 0);
}
