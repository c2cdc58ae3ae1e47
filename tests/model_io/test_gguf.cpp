// Tests of cai/model/gguf.hpp on well-formed files: the fixture written by gguf-py
// (tests/data/model_io/make_gguf_fixtures.py) must read back with the same metadata and bit for bit the
// same dequantised values; files assembled by tests/model_io/gguf_builder.hpp check the details (default
// alignment, block layouts, typed getters). Malformed files: test_gguf_malformed.cpp.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_exception.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/model/gguf.hpp"
#include "model_io/gguf_builder.hpp"

using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::MessageMatches;
using namespace cai_test;

namespace {

const std::filesystem::path fixture_dir = std::filesystem::path(CAI_TEST_DATA_DIR) / "model_io";

nlohmann::json expected_json() {
  std::ifstream in(fixture_dir / "gguf_tiny.expected.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

// values: (total values of all tensors), float32 little-endian
std::vector<float> expected_values() {
  std::ifstream in(fixture_dir / "gguf_tiny.expected.bin", std::ios::binary);
  REQUIRE(in);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

// Compares a metadata value with its JSON description {"type", "value"[, "element_type"]}.
void check_value(const cai::gguf_value& v, const nlohmann::json& j, const std::string& where) {
  INFO(where);
  const auto type = j.at("type").get<std::string>();
  REQUIRE(std::string(cai::to_string(v.type())) == type);
  const auto& value = j.at("value");
  switch (v.type()) {
    case cai::gguf_type::uint8: CHECK(v.get<std::uint8_t>() == value.get<std::uint8_t>()); break;
    case cai::gguf_type::int8: CHECK(v.get<std::int8_t>() == value.get<std::int8_t>()); break;
    case cai::gguf_type::uint16: CHECK(v.get<std::uint16_t>() == value.get<std::uint16_t>()); break;
    case cai::gguf_type::int16: CHECK(v.get<std::int16_t>() == value.get<std::int16_t>()); break;
    case cai::gguf_type::uint32: CHECK(v.get<std::uint32_t>() == value.get<std::uint32_t>()); break;
    case cai::gguf_type::int32: CHECK(v.get<std::int32_t>() == value.get<std::int32_t>()); break;
    case cai::gguf_type::uint64: CHECK(v.get<std::uint64_t>() == value.get<std::uint64_t>()); break;
    case cai::gguf_type::int64: CHECK(v.get<std::int64_t>() == value.get<std::int64_t>()); break;
    case cai::gguf_type::float32:
      CHECK(std::bit_cast<std::uint32_t>(v.get<float>()) ==
            std::bit_cast<std::uint32_t>(static_cast<float>(value.get<double>())));
      break;
    case cai::gguf_type::float64: CHECK(v.get<double>() == value.get<double>()); break;
    case cai::gguf_type::boolean: CHECK(v.get<bool>() == value.get<bool>()); break;
    case cai::gguf_type::string: CHECK(v.get<std::string>() == value.get<std::string>()); break;
    case cai::gguf_type::array: {
      const auto& a = v.get<cai::gguf_array>();
      const auto element = j.at("element_type").get<std::string>();
      CHECK(std::string(cai::to_string(a.element_type)) == element);
      REQUIRE(a.values.size() == value.size());
      for (std::size_t i = 0; i < a.values.size(); ++i) {
        const auto item = element == "array" ? value[i] : nlohmann::json{{"type", element}, {"value", value[i]}};
        check_value(a.values[i], item, where + "[" + std::to_string(i) + "]");
      }
      break;
    }
  }
}

}  // namespace

TEST_CASE("the header metadata and tensor infos of the gguf-py fixture are read as written", "[model_io][gguf]") {
  const auto expected = expected_json();
  const cai::gguf_file f(fixture_dir / "gguf_tiny.gguf");
  CHECK(f.version() == expected["version"].get<std::uint32_t>());
  CHECK(f.alignment() == expected["alignment"].get<std::uint64_t>());
  CHECK(f.file_size() == expected["file_size"].get<std::uint64_t>());

  const auto& metadata = expected["metadata"];
  REQUIRE(f.metadata().size() == metadata.size());
  for (std::size_t i = 0; i < metadata.size(); ++i) {
    const auto& [key, value] = f.metadata()[i];
    CHECK(key == metadata[i]["key"].get<std::string>());  // file order
    check_value(value, metadata[i], key);
    CHECK(f.find(key) == &value);
  }
  CHECK(f.find("no.such.key") == nullptr);

  const auto& tensors = expected["tensors"];
  REQUIRE(f.tensors().size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = f.tensors()[i];
    INFO(t.name);
    CHECK(t.name == tensors[i]["name"].get<std::string>());
    CHECK(std::string(cai::to_string(t.type)) == tensors[i]["type"].get<std::string>());
    CHECK(t.dims == tensors[i]["ne"].get<std::vector<std::uint64_t>>());
    CHECK(t.offset == tensors[i]["offset"].get<std::uint64_t>());
    CHECK(f.data_offset() + t.offset == tensors[i]["file_offset"].get<std::uint64_t>());
    CHECK(t.n_elements == tensors[i]["n_elements"].get<std::uint64_t>());
    CHECK(t.n_bytes == tensors[i]["n_bytes"].get<std::uint64_t>());
    CHECK(f.data_offset() % f.alignment() == 0);
  }
}

TEST_CASE("every tensor of the gguf-py fixture dequantises bit for bit as gguf-py does", "[model_io][gguf]") {
  const auto expected = expected_json();
  const auto values = expected_values();
  const cai::gguf_file f(fixture_dir / "gguf_tiny.gguf");
  std::vector<std::string> types_seen;
  for (const auto& t : expected["tensors"]) {
    const auto name = t["name"].get<std::string>();
    DYNAMIC_SECTION("tensor " << name << " of type " << t["type"].get<std::string>()) {
      const auto got = f.dequantize(name);
      const auto start = t["values_offset"].get<std::size_t>();
      REQUIRE(got.size() == t["n_elements"].get<std::size_t>());
      REQUIRE(start + got.size() <= values.size());
      std::size_t mismatches = 0;
      for (std::size_t i = 0; i < got.size(); ++i)  // bits: NaN, -0 and infinities included
        if (std::bit_cast<std::uint32_t>(got[i]) != std::bit_cast<std::uint32_t>(values[start + i])) ++mismatches;
      CHECK(mismatches == 0);
    }
    types_seen.push_back(t["type"].get<std::string>());
  }
  for (const char* type : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"})
    CHECK(std::find(types_seen.begin(), types_seen.end(), type) != types_seen.end());
}

TEST_CASE("shape lists dimensions outermost first and raw hands out whole blocks row by row", "[model_io][gguf]") {
  const cai::gguf_file f(fixture_dir / "gguf_tiny.gguf");
  const auto& t = f.tensor("t.q4_1.3d");
  CHECK(t.dims == std::vector<std::uint64_t>{32, 3, 2});
  CHECK(t.shape() == std::vector<std::uint64_t>{2, 3, 32});
  CHECK(t.row_length() == 32);
  CHECK(t.n_rows() == 6);
  CHECK(t.row_bytes() == 20);  // one Q4_1 block per row

  const auto raw = f.raw("t.q4_1.3d");
  CHECK(raw.type == cai::ggml_type::q4_1);
  CHECK(raw.info == &t);
  REQUIRE(raw.bytes.size() == 6 * 20);
  const auto all = f.dequantize("t.q4_1.3d");
  for (std::uint64_t r = 0; r < t.n_rows(); ++r) {  // a kernel may dequantise one row at a time
    std::vector<float> row(32);
    cai::dequantize(raw.type, raw.row(r), row);
    CHECK(std::equal(row.begin(), row.end(), all.begin() + static_cast<std::ptrdiff_t>(r * 32)));
  }
  CHECK_THROWS_AS(raw.row(6), cai::config_error);
  const cai::gguf_tensor_info foreign = t;  // a copy: not one of the file's infos
  CHECK_THROWS_MATCHES(f.raw(foreign), cai::config_error,
                       MessageMatches(ContainsSubstring("not one of this file's tensor infos")));
  CHECK(f.raw("t.q8_0").bytes.size() == 4 * 2 * 34);
  CHECK(f.raw("t.q4_0").bytes.size() == 4 * 2 * 18);
  CHECK(f.raw("token_embd.weight").bytes.size() == 3 * 64 * 4);
}

TEST_CASE("the Llama configuration of the gguf-py fixture is read from its metadata", "[model_io][gguf]") {
  const cai::gguf_file f(fixture_dir / "gguf_tiny.gguf");
  const auto c = cai::read_llama_config(f);
  CHECK(c.block_count == 2);
  CHECK(c.embedding_length == 64);
  CHECK(c.head_count == 4);
  CHECK(c.head_count_kv == 2);
  CHECK(c.feed_forward_length == 160);
  CHECK(c.context_length == 256);
  CHECK(c.vocab_size == 8);
  CHECK(c.head_dim() == 16);
  CHECK(c.rope_dimension_count == 16);  // absent: head_dim
  CHECK(c.rope_freq_base == 100000.0f);
  CHECK(c.rms_norm_eps == 1e-5f);
}

TEST_CASE("the tokenizer metadata of the gguf-py fixture is returned as plain values", "[model_io][gguf]") {
  const cai::gguf_file f(fixture_dir / "gguf_tiny.gguf");
  const auto t = cai::read_tokenizer_metadata(f);
  CHECK(t.model == "gpt2");
  CHECK(t.pre == "smollm");
  CHECK(t.tokens == std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "ab",
                                             "\xc4\xa0", "\xc4\xa0" "ab"});
  CHECK(t.merges == std::vector<std::string>{"a b", "\xc4\xa0 ab"});
  CHECK(t.token_types == std::vector<std::int32_t>{3, 3, 3, 1, 1, 1, 1, 1});
  CHECK(t.scores.empty());
  CHECK(t.bos_token_id == 1u);
  CHECK(t.eos_token_id == 2u);
  CHECK_FALSE(t.unknown_token_id.has_value());
  CHECK_FALSE(t.padding_token_id.has_value());
  CHECK(t.add_bos_token == false);
  CHECK_FALSE(t.add_eos_token.has_value());
  CHECK(t.chat_template.starts_with("{% for m in messages %}<|im_start|>"));
}

TEST_CASE("typed metadata getters widen integers and name the key when the type is wrong", "[model_io][gguf]") {
  const cai::gguf_file f(fixture_dir / "gguf_tiny.gguf");
  CHECK(f.get_uint("test.uint8") == 200);
  CHECK(f.get_uint("test.uint64") == UINT64_MAX);
  CHECK(f.get_int("test.int8") == -100);
  CHECK(f.get_int("test.int64") == INT64_MIN);
  CHECK(f.get_int("test.uint32") == 4000000000);
  CHECK(f.get_float("test.float32") == 3.14159f);
  CHECK(f.get_float("test.float64") == 2.718281828459045);
  CHECK(f.get_bool("test.bool.true"));
  CHECK(f.get_string("test.string") == "h\xc3\xa9llo, GGUF \xe2\x9c\x93");
  CHECK(f.get_int_array("test.array.int64") == std::vector<std::int64_t>{INT64_MIN, INT64_MAX});
  CHECK(f.get_int_array("test.array.uint8") == std::vector<std::int64_t>{0, 1, 255});
  CHECK(f.get_float_array("test.array.float32") == std::vector<float>{0.1f, -2.5f, 1e-30f});
  CHECK(f.get_string_array("test.array.string") == std::vector<std::string>{"", "one", "two words", "\xc3\xbcnicode"});

  const auto path = (fixture_dir / "gguf_tiny.gguf").string();
  CHECK_THROWS_MATCHES(f.get_uint("test.int8"), cai::validation_error,
                       MessageMatches(ContainsSubstring(path) && ContainsSubstring("'test.int8' is -100")));
  CHECK_THROWS_MATCHES(f.get_int("test.uint64"), cai::validation_error,
                       MessageMatches(ContainsSubstring("'test.uint64'") && ContainsSubstring("int64")));
  CHECK_THROWS_MATCHES(f.get_uint("test.string"), cai::validation_error,
                       MessageMatches(ContainsSubstring("'test.string' is a string, expected an unsigned integer")));
  CHECK_THROWS_MATCHES(f.get_string_array("test.array.nested"), cai::validation_error,
                       MessageMatches(ContainsSubstring("'test.array.nested' is an array of array, expected an array of strings")));
  CHECK_THROWS_MATCHES(f.get_int_array("test.array.uint64"), cai::validation_error,
                       MessageMatches(ContainsSubstring("'test.array.uint64'[1]")));
  CHECK_THROWS_MATCHES(f.get_float("test.bool.true"), cai::validation_error,
                       MessageMatches(ContainsSubstring("expected a float32 or float64")));
  CHECK_THROWS_MATCHES(f.at("absent.key"), cai::validation_error,
                       MessageMatches(ContainsSubstring(path) && ContainsSubstring("missing metadata key 'absent.key'")));
  CHECK_THROWS_MATCHES(f.tensor("absent.weight"), cai::validation_error,
                       MessageMatches(ContainsSubstring("no tensor named 'absent.weight'")));
}

TEST_CASE("without general.alignment the data section starts at the next multiple of 32", "[model_io][gguf]") {
  gguf_builder b;
  b.kv_string("general.name", "x").tensor("a", {4}, t_f32, 0, 16).tensor("b", {2, 2}, t_f32, 32, 16);
  const float values[8] = {1, 2, 3, 4, -1, -2, -3, -4};
  std::memcpy(b.data.data(), values, 16);
  std::memcpy(b.data.data() + 32, values + 4, 16);
  const auto header_size = b.header().size();
  REQUIRE(header_size % 32 != 0);
  const cai::gguf_file f(write_temp("default_alignment.gguf", b.build()));
  CHECK(f.alignment() == 32);
  CHECK(f.data_offset() == (header_size + 31) / 32 * 32);
  CHECK(f.dequantize("a") == std::vector<float>{1, 2, 3, 4});
  CHECK(f.dequantize("b") == std::vector<float>{-1, -2, -3, -4});
  CHECK(f.tensor("b").shape() == std::vector<std::uint64_t>{2, 2});
}

TEST_CASE("a version 2 file with no tensors is read", "[model_io][gguf]") {
  gguf_builder b;
  b.version = 2;
  b.kv_u32("general.alignment", 64).kv(std::string("k"), f64, le(0.5));
  const cai::gguf_file f(write_temp("v2.gguf", b.header()));  // no padding: nothing follows
  CHECK(f.version() == 2);
  CHECK(f.alignment() == 64);
  CHECK(f.tensors().empty());
  CHECK(f.get_float("k") == 0.5);
}

TEST_CASE("the block formats follow ggml nibble order and scales", "[model_io][gguf]") {
  // Q4_0, one block: d = 0.5 (f16 0x3800); byte j holds element j (low nibble) and j + 16 (high).
  std::vector<std::byte> q4_0(18);
  q4_0[0] = std::byte{0x00};
  q4_0[1] = std::byte{0x38};
  for (int j = 0; j < 16; ++j) q4_0[2 + j] = std::byte(static_cast<unsigned char>((15 - j) << 4 | j));
  std::vector<float> out(32);
  cai::dequantize(cai::ggml_type::q4_0, q4_0, out);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == static_cast<float>(j - 8) * 0.5f);
    CHECK(out[j + 16] == static_cast<float>(15 - j - 8) * 0.5f);
  }
  // Q4_1: d = 2 (0x4000), m = -1 (0xbc00): value = nibble * d + m.
  std::vector<std::byte> q4_1(20);
  q4_1[1] = std::byte{0x40};
  q4_1[3] = std::byte{0xbc};
  for (int j = 0; j < 16; ++j) q4_1[4 + j] = std::byte(static_cast<unsigned char>(j << 4 | (15 - j)));
  cai::dequantize(cai::ggml_type::q4_1, q4_1, out);
  for (int j = 0; j < 16; ++j) {
    CHECK(out[j] == static_cast<float>(15 - j) * 2.0f - 1.0f);
    CHECK(out[j + 16] == static_cast<float>(j) * 2.0f - 1.0f);
  }
  // Q8_0: d = 0.25 (0x3400), then 32 signed bytes.
  std::vector<std::byte> q8_0(34);
  q8_0[1] = std::byte{0x34};
  for (int j = 0; j < 32; ++j) q8_0[2 + j] = std::byte(static_cast<unsigned char>(static_cast<std::int8_t>(j * 8 - 128)));
  cai::dequantize(cai::ggml_type::q8_0, q8_0, out);
  for (int j = 0; j < 32; ++j) CHECK(out[j] == static_cast<float>(j * 8 - 128) * 0.25f);
}

TEST_CASE("dequantize refuses unsupported types and mismatched buffer sizes", "[model_io][gguf]") {
  std::vector<std::byte> blocks(144);
  std::vector<float> out(256);
  CHECK_THROWS_MATCHES(cai::dequantize(cai::ggml_type::q4_k, blocks, out), cai::config_error,
                       MessageMatches(ContainsSubstring("Q4_K cannot be dequantised")));
  std::vector<std::byte> q8(34);
  std::vector<float> wrong(31);
  CHECK_THROWS_AS(cai::dequantize(cai::ggml_type::q8_0, q8, wrong), cai::config_error);
  std::vector<float> two_blocks(64);
  CHECK_THROWS_AS(cai::dequantize(cai::ggml_type::q8_0, q8, two_blocks), cai::config_error);

  // A file may hold types that cai cannot dequantise: they parse, and their raw bytes are available.
  gguf_builder b;
  b.tensor("k", {256}, 12 /* Q4_K */, 0, 144);
  const cai::gguf_file f(write_temp("q4_k.gguf", b.build()));
  CHECK(f.raw("k").bytes.size() == 144);
  CHECK_THROWS_MATCHES(f.dequantize("k"), cai::validation_error,
                       MessageMatches(ContainsSubstring("tensor 'k' has type Q4_K")));
}

TEST_CASE("a moved gguf_file keeps its mapping and its tensor bytes", "[model_io][gguf]") {
  cai::gguf_file a(fixture_dir / "gguf_tiny.gguf");
  const auto before = a.dequantize("t.q4_0");
  const auto* bytes = a.raw("t.q4_0").bytes.data();
  cai::gguf_file b(std::move(a));
  CHECK(b.raw("t.q4_0").bytes.data() == bytes);
  CHECK(b.dequantize("t.q4_0") == before);
  cai::gguf_file c(fixture_dir / "gguf_tiny.gguf");
  c = std::move(b);
  CHECK(c.dequantize("t.q4_0") == before);
}
