// Tests of cai/model/gguf.hpp on malformed files, one test per defect: each must give a cai::error whose
// message names the file, the key or tensor concerned and what is wrong, without reading outside the
// file (the parser bounds-checks every read; run under ASan to see it). Files are assembled by
// tests/model_io/gguf_builder.hpp or cut from the gguf-py fixture.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>

#include "cai/model/gguf.hpp"
#include "model_io/gguf_builder.hpp"

using Catch::Matchers::ContainsSubstring;
using namespace cai_test;

namespace {

// Opens `bytes` (written to a file called `name`) and checks that it fails with an `Error` whose message
// holds the file's path and each of `parts`.
template <class Error>
void expect_open_error(const std::string& name, const std::string& bytes, std::initializer_list<std::string> parts) {
  const auto path = write_temp(name, bytes);
  try {
    const cai::gguf_file f(path);
    FAIL("no error when opening " << name);
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK_THAT(message, ContainsSubstring(path.string()));
    for (const auto& part : parts) CHECK_THAT(message, ContainsSubstring(part));
  }
}

// The same for reading the Llama configuration of a file that opens.
void expect_config_error(const std::string& name, const gguf_builder& b, std::initializer_list<std::string> parts) {
  const auto path = write_temp(name, b.build());
  const cai::gguf_file f(path);
  try {
    (void)cai::read_llama_config(f);
    FAIL("no error when reading the configuration of " << name);
  } catch (const cai::validation_error& e) {
    const std::string message = e.what();
    CHECK_THAT(message, ContainsSubstring(path.string()));
    for (const auto& part : parts) CHECK_THAT(message, ContainsSubstring(part));
  }
}

}  // namespace

TEST_CASE("a missing file or a folder is an io_error that names it", "[model_io][gguf]") {
  const auto path = std::filesystem::temp_directory_path() / "cai-no-such-file.gguf";
  std::filesystem::remove(path);
  try {
    const cai::gguf_file f(path);
    FAIL("no error");
  } catch (const cai::io_error& e) {
    CHECK(e.path() == path.string());
    CHECK_THAT(std::string(e.what()), ContainsSubstring("cannot open"));
  }
  const auto dir = std::filesystem::temp_directory_path();
  CHECK_THROWS_MATCHES(cai::gguf_file(dir), cai::io_error,
                       Catch::Matchers::MessageMatches(ContainsSubstring("not a regular file")));
}

TEST_CASE("a file truncated at any byte is a parse_error", "[model_io][gguf]") {
  const auto source = std::filesystem::path(CAI_TEST_DATA_DIR) / "model_io" / "gguf_tiny.gguf";
  const auto size = std::filesystem::file_size(source);
  const auto path = write_temp("truncated.gguf", "");
  std::filesystem::copy_file(source, path, std::filesystem::copy_options::overwrite_existing);
  std::size_t failures = 0;
  // Cut from the end down to nothing: in the data section, the padding, the tensor infos, the metadata
  // (inside strings, arrays and values), the counts, the version and the magic.
  for (auto n = size; n-- > 0;) {
    std::filesystem::resize_file(path, n);
    try {
      const cai::gguf_file f(path);
      ++failures;
      UNSCOPED_INFO("no error at length " << n);
    } catch (const cai::parse_error& e) {
      if (std::string(e.what()).find(path.string()) == std::string::npos) {
        ++failures;
        UNSCOPED_INFO("the message at length " << n << " does not name the file: " << e.what());
      }
    }
  }
  CHECK(failures == 0);

  // A few cut points, with what the message says.
  gguf_builder b = llama_builder();
  const auto whole = b.build();
  expect_open_error<cai::parse_error>("cut_magic.gguf", whole.substr(0, 2), {"truncated file", "magic"});
  expect_open_error<cai::parse_error>("cut_counts.gguf", whole.substr(0, 12), {"truncated file", "tensor count"});
  expect_open_error<cai::parse_error>("cut_data.gguf", whole.substr(0, whole.size() - 4),
                                      {"tensor 'output_norm.weight'", "data section", "truncated"});
}

TEST_CASE("a file that does not start with GGUF is a parse_error that shows its first bytes", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.magic = "GGML";
  expect_open_error<cai::parse_error>("bad_magic.gguf", b.build(), {"not a GGUF file", "\"GGML\""});
  expect_open_error<cai::parse_error>("binary_magic.gguf", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(32, '\0'),
                                      {"\\x89PNG"});
}

TEST_CASE("versions other than 2 and 3 are refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.version = 1;
  expect_open_error<cai::parse_error>("v1.gguf", b.build(), {"unsupported GGUF version 1"});
  b.version = 4;
  expect_open_error<cai::parse_error>("v4.gguf", b.build(), {"unsupported GGUF version 4"});
  b.version = 0x03000000;  // a big-endian file read as little-endian
  expect_open_error<cai::parse_error>("big_endian.gguf", b.build(), {"big-endian"});
}

TEST_CASE("absurd tensor and metadata counts are refused before anything is allocated", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv_count = UINT64_MAX;
  expect_open_error<cai::parse_error>("huge_kv_count.gguf", b.build(),
                                      {"metadata key-value count 18446744073709551615 is impossible"});
  b = llama_builder();
  b.tensor_count = std::uint64_t{1} << 40;
  expect_open_error<cai::parse_error>("huge_tensor_count.gguf", b.build(), {"tensor count 1099511627776 is impossible"});
  gguf_builder few;
  few.kv_u32("general.a", 1).kv_u32("general.b", 2);
  few.kv_count = 4;  // plausible for the file's size, but only two entries are there
  expect_open_error<cai::parse_error>("kv_count_beyond_file.gguf", few.header() + std::string(30, '\xff'),
                                      {"key of metadata entry #"});
}

TEST_CASE("string lengths beyond the end of the file are refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv("general.name", str, le<std::uint64_t>(UINT64_MAX - 3) + "abc");
  expect_open_error<cai::parse_error>("long_value.gguf", b.build(),
                                      {"metadata key 'general.name'", "string length 18446744073709551612",
                                       "runs past the end of the file"});
  // A key whose length is beyond the file: the message names the entry by number.
  const std::string header = std::string("GGUF") + le<std::uint32_t>(3) + le<std::uint64_t>(0) +
                             le<std::uint64_t>(1) + le<std::uint64_t>(1000) + "key";
  expect_open_error<cai::parse_error>("long_key.gguf", header + std::string(16, '\0'),
                                      {"the key of metadata entry #0", "string length 1000"});
}

TEST_CASE("array lengths beyond the end of the file are refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv("tokenizer.ggml.merges", arr, le<std::uint32_t>(str) + le<std::uint64_t>(std::uint64_t{1} << 61) + gguf_str("a b"));
  expect_open_error<cai::parse_error>("long_array.gguf", b.build(),
                                      {"metadata key 'tokenizer.ggml.merges'", "array of 2305843009213693952 string values",
                                       "runs past the end of the file"});
}

TEST_CASE("an unknown metadata value type is refused with the key", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv("general.odd", 13, le<std::uint32_t>(0));
  expect_open_error<cai::parse_error>("unknown_value_type.gguf", b.build(),
                                      {"metadata key 'general.odd'", "unknown metadata value type 13"});
  b = llama_builder();
  b.kv("general.odd_array", arr, le<std::uint32_t>(99) + le<std::uint64_t>(1) + le<std::uint32_t>(0));
  expect_open_error<cai::parse_error>("unknown_element_type.gguf", b.build(),
                                      {"element type of metadata key 'general.odd_array'", "unknown metadata value type 99"});
}

TEST_CASE("nested arrays are read to any sane depth and refused beyond it", "[model_io][gguf]") {
  // [[[7]]]: three levels.
  const std::string inner = le<std::uint32_t>(i32) + le<std::uint64_t>(1) + le<std::int32_t>(7);
  const std::string middle = le<std::uint32_t>(arr) + le<std::uint64_t>(1) + inner;
  gguf_builder ok;
  ok.kv("nested", arr, le<std::uint32_t>(arr) + le<std::uint64_t>(1) + middle);
  const cai::gguf_file f(write_temp("nested_ok.gguf", ok.build()));
  const auto& level1 = f.at("nested").get<cai::gguf_array>();
  const auto& level2 = level1.values.at(0).get<cai::gguf_array>();
  const auto& level3 = level2.values.at(0).get<cai::gguf_array>();
  CHECK(level3.values.at(0).get<std::int32_t>() == 7);

  std::string deep = inner;
  for (int i = 0; i < 40; ++i) deep = le<std::uint32_t>(arr) + le<std::uint64_t>(1) + deep;
  gguf_builder bad;
  bad.kv("deep", arr, deep);
  expect_open_error<cai::parse_error>("nested_deep.gguf", bad.build(), {"metadata key 'deep'", "nested more than 16 deep"});
}

TEST_CASE("a bool that is neither 0 nor 1 is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv("tokenizer.ggml.add_bos_token", boolean, le<std::uint8_t>(2));
  expect_open_error<cai::parse_error>("bad_bool.gguf", b.build(),
                                      {"metadata key 'tokenizer.ggml.add_bos_token'", "bool value 2"});
}

TEST_CASE("an unknown ggml tensor type is refused with the tensor name", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("blk.0.attn_q.weight", {32}, 99, 32, 16);
  expect_open_error<cai::parse_error>("unknown_tensor_type.gguf", b.build(),
                                      {"tensor 'blk.0.attn_q.weight'", "unknown ggml tensor type 99"});
  b = llama_builder();
  b.tensor("retired", {32}, 4 /* Q4_2, removed from ggml */, 32, 16);
  expect_open_error<cai::parse_error>("retired_tensor_type.gguf", b.build(), {"tensor 'retired'", "type 4"});
}

TEST_CASE("more than four dimensions are refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("five_d", {1, 1, 1, 1, 1}, t_f32, 32, 4);
  expect_open_error<cai::validation_error>("five_dims.gguf", b.build(), {"tensor 'five_d'", "5 dimensions", "at most 4"});
}

TEST_CASE("zero and overflowing dimensions are refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("empty", {8, 0}, t_f32, 32, 0);
  expect_open_error<cai::validation_error>("zero_dim.gguf", b.build(), {"tensor 'empty'", "dimension 1 is 0"});
  b = llama_builder();
  b.tensor("huge", {std::uint64_t{1} << 32, std::uint64_t{1} << 32}, t_f32, 32);
  expect_open_error<cai::validation_error>("overflow_dims.gguf", b.build(), {"tensor 'huge'", "overflows int64"});
  b = llama_builder();
  b.tensor("negative", {UINT64_MAX}, t_f32, 32);
  expect_open_error<cai::validation_error>("negative_dim.gguf", b.build(), {"tensor 'negative'", "beyond int64"});
  b = llama_builder();
  b.tensor("bytes", {std::uint64_t{1} << 62}, t_f32, 32);  // 2^62 elements fit, 2^64 bytes do not
  expect_open_error<cai::validation_error>("overflow_bytes.gguf", b.build(), {"tensor 'bytes'", "size in bytes overflows"});
}

TEST_CASE("a quantised row length that is not a whole number of blocks is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("ragged", {30, 2}, t_q4_0, 32, 36);
  expect_open_error<cai::validation_error>("ragged_rows.gguf", b.build(),
                                           {"tensor 'ragged'", "row length 30", "Q4_0 block size 32"});
}

TEST_CASE("a tensor offset that is not a multiple of the alignment is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("misaligned", {4}, t_f32, 40, 16);
  expect_open_error<cai::validation_error>("misaligned.gguf", b.build(),
                                           {"tensor 'misaligned'", "data offset 40", "alignment 32"});
}

TEST_CASE("a tensor outside the data section is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("far", {4}, t_f32, 1 << 20);
  expect_open_error<cai::parse_error>("outside.gguf", b.build(), {"tensor 'far'", "bytes [1048576, 1048592)", "holds only 32"});
  b = llama_builder();
  b.tensor("wraps", {8}, t_f32, UINT64_MAX - 31);  // offset + size wraps around 2^64
  expect_open_error<cai::parse_error>("wrapping_offset.gguf", b.build(), {"tensor 'wraps'", "data section"});
}

TEST_CASE("overlapping GGUF tensors are refused with both names", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("second", {16}, t_f32, 0, 64);  // the first, output_norm.weight, takes bytes [0, 32)
  expect_open_error<cai::validation_error>("overlap.gguf", b.build(),
                                           {"'output_norm.weight'", "'second'", "overlap"});
}

TEST_CASE("a duplicate tensor name is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.tensor("output_norm.weight", {8}, t_f32, 32, 32);
  expect_open_error<cai::validation_error>("duplicate_tensor.gguf", b.build(),
                                           {"duplicate tensor name 'output_norm.weight'", "#0 and #1"});
}

TEST_CASE("a duplicate metadata key is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv_u32("llama.block_count", 3);
  expect_open_error<cai::validation_error>("duplicate_key.gguf", b.build(), {"duplicate metadata key 'llama.block_count'"});
}

TEST_CASE("a general.alignment that is not a power of two or not a uint32 is refused", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kv_u32("general.alignment", 48);
  expect_open_error<cai::validation_error>("alignment_48.gguf", b.build(), {"'general.alignment' is 48", "power of two"});
  b = llama_builder();
  b.kv("general.alignment", u64, le<std::uint64_t>(32));
  expect_open_error<cai::validation_error>("alignment_u64.gguf", b.build(),
                                           {"'general.alignment' is a uint64, expected a uint32"});
}

TEST_CASE("a configuration key of the wrong metadata type is refused with its name", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kvs.at(1) = {"llama.block_count", str, gguf_str("30")};
  expect_config_error("block_count_string.gguf", b, {"'llama.block_count' is a string, expected an unsigned integer"});
  b = llama_builder();
  b.kvs.at(8) = {"llama.attention.layer_norm_rms_epsilon", u32, le<std::uint32_t>(1)};
  expect_config_error("eps_integer.gguf", b,
                      {"'llama.attention.layer_norm_rms_epsilon' is a uint32, expected a float32 or float64"});
  b = llama_builder();
  b.kvs.at(10) = {"tokenizer.ggml.tokens", arr, le<std::uint32_t>(i32) + le<std::uint64_t>(1) + le<std::int32_t>(5)};
  expect_config_error("tokens_int32.gguf", b,
                      {"'tokenizer.ggml.tokens' is an array of int32, expected an array of strings"});
  b = llama_builder();
  b.kvs.at(0) = {"general.architecture", str, gguf_str("gpt2")};
  expect_config_error("not_llama.gguf", b, {"general.architecture is 'gpt2'"});
}

TEST_CASE("a missing configuration key is refused with its name", "[model_io][gguf]") {
  gguf_builder b = llama_builder();
  b.kvs.erase(b.kvs.begin() + 3);  // llama.embedding_length
  expect_config_error("no_embedding_length.gguf", b, {"missing metadata key 'llama.embedding_length'"});
  // Optional keys take llama.cpp's defaults.
  b = llama_builder();
  b.kvs.erase(b.kvs.begin() + 7);  // llama.rope.freq_base
  b.kvs.erase(b.kvs.begin() + 6);  // llama.attention.head_count_kv
  const cai::gguf_file f(write_temp("defaults.gguf", b.build()));
  const auto c = cai::read_llama_config(f);
  CHECK(c.head_count_kv == c.head_count);
  CHECK(c.rope_freq_base == 10000.0f);
}
