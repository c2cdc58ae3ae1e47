// Tests of cai/model/safetensors.hpp: reading the reference implementation's F32, F16 and BF16 files
// (fixtures written by tests/data/model_io/make_safetensors_fixtures.py), exact half and bfloat16
// conversion, byte-identical writing, and one test per kind of malformed file.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/model/safetensors.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {
const std::filesystem::path fixtures = std::filesystem::path(CAI_TEST_DATA_DIR) / "model_io";

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / "cai-test-safetensors";
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<char> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Writes a file made of an 8-byte little-endian length, `header` and `data` bytes of value 0x11.
std::filesystem::path write_raw(const std::string& name, const std::string& header, std::size_t data_bytes,
                                std::uint64_t declared_length = UINT64_MAX) {
  const std::uint64_t n = declared_length == UINT64_MAX ? header.size() : declared_length;
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  bytes += header;
  bytes.append(data_bytes, '\x11');
  auto p = temp_dir() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  return p;
}

/// The message of the cai::error that opening `p` throws, checked to be of type E.
template <class E>
std::string open_error(const std::filesystem::path& p) {
  try {
    (void)cai::safetensors_file::open(p);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: " << e.what());
  }
  FAIL("no error for " << p);
  return {};
}

std::vector<std::uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<std::uint32_t> out;
  for (float x : v) out.push_back(std::bit_cast<std::uint32_t>(x));
  return out;
}
}  // namespace

TEST_CASE("the reference implementation's F32 F16 and BF16 files read back with exact values",
          "[model_io][safetensors]") {
  std::ifstream in(fixtures / "expected_values.json");
  const auto expected = nlohmann::json::parse(in);
  REQUIRE(expected.size() == 3);
  for (const auto& [file, spec] : expected.items()) {
    INFO(file);
    const auto f = cai::safetensors_file::open(fixtures / file);
    CHECK(f.metadata() == spec["metadata"].get<std::map<std::string, std::string>>());
    std::vector<std::string> names;
    for (const auto& [name, t] : spec["tensors"].items()) names.push_back(name);
    CHECK(f.names() == names);
    for (const auto& [name, t] : spec["tensors"].items()) {
      INFO(name);
      const auto& info = f.info(name);
      CHECK(cai::to_string(info.dtype) == t["dtype"].get<std::string>());
      CHECK(info.shape == t["shape"].get<std::vector<std::int64_t>>());
      CHECK(bits_of(f.read_f32(name)) == t["bits"].get<std::vector<std::uint32_t>>());
      CHECK(f.raw(name).size() == info.element_count() * cai::dtype_size(info.dtype));
    }
  }
  CHECK(cai::safetensors_file::open(fixtures / "tiny_f32.safetensors").data_offset() % 8 == 0);
}

TEST_CASE("read_f32 converts all 65536 F16 bit patterns as the compiler's binary16 does and BF16 by shifting",
          "[model_io][safetensors]") {
  // One F16 tensor and one BF16 tensor holding every 16-bit pattern, little-endian.
  std::string data;
  for (int twice = 0; twice < 2; ++twice)
    for (std::uint32_t b = 0; b <= 0xFFFF; ++b) {
      data.push_back(static_cast<char>(b & 0xFF));
      data.push_back(static_cast<char>(b >> 8));
    }
  const std::string header = R"({"bf":{"dtype":"BF16","shape":[256,256],"data_offsets":[131072,262144]},)"
                             R"("h":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}})";
  const auto p = write_raw("all_halves.safetensors", header, 0);
  std::ofstream(p, std::ios::binary | std::ios::app) << data;
  const auto f = cai::safetensors_file::open(p);
  const auto h = f.read_f32("h");
  const auto bf = f.read_f32("bf");
  REQUIRE(h.size() == 65536);
  REQUIRE(bf.size() == 65536);
  CHECK(h[0x3C00] == 1.0f);
  CHECK(h[0x0001] == std::ldexp(1.0f, -24));
  CHECK(h[0x7BFF] == 65504.0f);
  CHECK(std::signbit(h[0x8000]));
  CHECK(std::isinf(h[0xFC00]));
  CHECK(std::isnan(h[0x7E01]));
  std::size_t disagreements = 0;
  for (std::uint32_t b = 0; b <= 0xFFFF; ++b) {
    if (std::bit_cast<std::uint32_t>(bf[b]) != b << 16) ++disagreements;
#if defined(__FLT16_MAX__)
    const float theirs = static_cast<float>(std::bit_cast<_Float16>(static_cast<std::uint16_t>(b)));
    if (std::isnan(theirs) ? !std::isnan(h[b]) : std::bit_cast<std::uint32_t>(h[b]) != std::bit_cast<std::uint32_t>(theirs))
      ++disagreements;
#else
    // Without _Float16: every finite pattern against its definition, mantissa * 2^exponent.
    const std::uint32_t e = (b >> 10) & 0x1F, m = b & 0x3FF;
    if (e != 0x1F) {
      const double v = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(double(m | 0x400), int(e) - 25);
      if (double(h[b]) != ((b & 0x8000) ? -v : v)) ++disagreements;
    }
#endif
  }
  CHECK(disagreements == 0);
}

TEST_CASE("save_safetensors writes the same bytes as the reference implementation", "[model_io][safetensors]") {
  const std::vector<float> a = {0.5f, -1.25f, 3.0f, 1e-3f, std::ldexp(1.0f, -126), -0.0f};
  const std::vector<float> b = {1, 2, 3, 4};
  // Given out of order: the writer sorts by name as the reference does.
  const std::vector<cai::named_tensor> tensors = {{"b", {4}, b}, {"a", {2, 3}, a}};
  const auto path = temp_dir() / "ours_f32.safetensors";
  cai::save_safetensors(path, tensors, {{"format", "np"}});
  CHECK(read_bytes(path) == read_bytes(fixtures / "tiny_f32.safetensors"));

  const auto f = cai::safetensors_file::open(path);
  CHECK(f.read_f32("a") == a);
  CHECK(f.read_f32("b") == b);
  CHECK(f.metadata().at("format") == "np");
  CHECK_FALSE(std::filesystem::exists(temp_dir() / "ours_f32.safetensors.partial"));

  // No metadata, a scalar and an empty tensor; the header is padded to 8 bytes.
  const std::vector<float> s = {7.0f};
  const std::vector<cai::named_tensor> odd = {{"scalar", {}, s}, {"empty", {0, 3}, {}}};
  cai::save_safetensors(temp_dir() / "odd.safetensors", odd);
  const auto g = cai::safetensors_file::open(temp_dir() / "odd.safetensors");
  CHECK(g.metadata().empty());
  CHECK(g.data_offset() % 8 == 0);
  CHECK(g.info("scalar").shape.empty());
  CHECK(g.read_f32("scalar") == s);
  CHECK(g.read_f32("empty").empty());
}

TEST_CASE("save_safetensors refuses repeated names and data that disagree with the shape", "[model_io][safetensors]") {
  const std::vector<float> v = {1, 2, 3};
  const auto p = temp_dir() / "refused.safetensors";
  try {
    cai::save_safetensors(p, {{"w", {2, 2}, v}});
    FAIL("no error");
  } catch (const cai::validation_error& e) {
    CHECK_THAT(std::string(e.what()), ContainsSubstring("'w'") && ContainsSubstring("[2, 2]"));
  }
  CHECK_THROWS_AS(cai::save_safetensors(p, std::vector<cai::named_tensor>{{"w", {3}, v}, {"w", {3}, v}}),
                  cai::validation_error);
  CHECK_THROWS_AS(cai::save_safetensors(p, std::vector<cai::named_tensor>{{"w", {-3}, v}}), cai::validation_error);
  CHECK_THROWS_AS(cai::save_safetensors("/nonexistent-dir/x.safetensors", std::vector<cai::named_tensor>{{"w", {3}, v}}),
                  cai::io_error);
}

TEST_CASE("a missing tensor or a non-float dtype is reported by name", "[model_io][safetensors]") {
  const auto f = cai::safetensors_file::open(fixtures / "tiny_f16.safetensors");
  CHECK_FALSE(f.contains("nope"));
  CHECK_THROWS_WITH(f.info("nope"), ContainsSubstring("tiny_f16.safetensors") && ContainsSubstring("'nope'"));
  const auto p = write_raw("i32.safetensors", R"({"n":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8);
  const auto g = cai::safetensors_file::open(p);
  CHECK(g.raw("n").size() == 8);
  CHECK_THROWS_WITH(g.read_f32("n"), ContainsSubstring("'n'") && ContainsSubstring("I32"));
  std::vector<float> wrong(3);
  CHECK_THROWS_AS(f.read_f32("s", wrong), cai::validation_error);
}

TEST_CASE("a file shorter than the header length field is reported as truncated", "[model_io][safetensors]") {
  auto p = temp_dir() / "short.safetensors";
  std::ofstream(p, std::ios::binary | std::ios::trunc) << "abc";
  const auto m = open_error<cai::io_error>(p);
  CHECK_THAT(m, ContainsSubstring("short.safetensors") && ContainsSubstring("truncated"));
  // A file cut inside its data section is caught too: the tensors no longer fit.
  const auto whole = read_bytes(fixtures / "tiny_f32.safetensors");
  auto cut = temp_dir() / "cut.safetensors";
  std::ofstream(cut, std::ios::binary | std::ios::trunc).write(whole.data(), static_cast<std::streamsize>(whole.size() - 4));
  CHECK_THAT(open_error<cai::validation_error>(cut), ContainsSubstring("'b'") && ContainsSubstring("outside the data section"));
  CHECK_THROWS_AS(cai::safetensors_file::open(temp_dir() / "absent.safetensors"), cai::io_error);
}

TEST_CASE("a header length beyond the file or absurdly large is refused before any read", "[model_io][safetensors]") {
  const auto beyond = write_raw("beyond.safetensors", "{}", 0, 4096);
  CHECK_THAT(open_error<cai::io_error>(beyond), ContainsSubstring("beyond.safetensors") && ContainsSubstring("4096"));
  const auto huge = write_raw("huge.safetensors", "{}", 0, 0xFFFFFFFFFFFFFFF0ull);
  CHECK_THAT(open_error<cai::io_error>(huge), ContainsSubstring("huge.safetensors") && ContainsSubstring("exceeds the limit"));
}

TEST_CASE("a header that is not JSON or not an object is refused", "[model_io][safetensors]") {
  const auto garbage = write_raw("garbage.safetensors", "{\"a\": [1, 2", 0);
  CHECK_THAT(open_error<cai::parse_error>(garbage), ContainsSubstring("garbage.safetensors") && ContainsSubstring("not valid JSON"));
  const auto array = write_raw("array.safetensors", "[1, 2, 3]", 0);
  CHECK_THAT(open_error<cai::validation_error>(array), ContainsSubstring("array.safetensors") && ContainsSubstring("must be a JSON object"));
  const auto meta = write_raw("meta.safetensors", R"({"__metadata__":{"k":3}})", 0);
  CHECK_THAT(open_error<cai::validation_error>(meta), ContainsSubstring("'k'") && ContainsSubstring("must be a string"));
}

TEST_CASE("data offsets outside the data section are refused", "[model_io][safetensors]") {
  const auto p = write_raw("outside.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  CHECK_THAT(open_error<cai::validation_error>(p),
             ContainsSubstring("outside.safetensors") && ContainsSubstring("'w'") && ContainsSubstring("outside the data section"));
  const auto reversed = write_raw("reversed.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 4);
  CHECK_THAT(open_error<cai::validation_error>(reversed), ContainsSubstring("'w'") && ContainsSubstring("reversed"));
}

TEST_CASE("overlapping tensors are refused with both names", "[model_io][safetensors]") {
  const auto p = write_raw("overlap.safetensors",
                           R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12);
  CHECK_THAT(open_error<cai::validation_error>(p),
             ContainsSubstring("overlap.safetensors") && ContainsSubstring("'y'") && ContainsSubstring("overlaps tensor 'x'"));
}

TEST_CASE("a data section with gaps or trailing bytes is refused", "[model_io][safetensors]") {
  const auto gap = write_raw("gap.safetensors",
                             R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                             12);
  CHECK_THAT(open_error<cai::validation_error>(gap),
             ContainsSubstring("gap.safetensors") && ContainsSubstring("[4, 8)") && ContainsSubstring("'y'"));
  const auto tail = write_raw("tail.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6);
  CHECK_THAT(open_error<cai::validation_error>(tail), ContainsSubstring("[4, 6)") && ContainsSubstring("belong to no tensor"));
}

TEST_CASE("an unknown dtype is refused with the tensor name", "[model_io][safetensors]") {
  const auto p = write_raw("dtype.safetensors", R"({"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", 4);
  CHECK_THAT(open_error<cai::validation_error>(p),
             ContainsSubstring("dtype.safetensors") && ContainsSubstring("'w'") && ContainsSubstring("unknown dtype \"F17\""));
}

TEST_CASE("a byte count that disagrees with dtype times shape is refused", "[model_io][safetensors]") {
  const auto p = write_raw("size.safetensors", R"({"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}})", 8);
  CHECK_THAT(open_error<cai::validation_error>(p),
             ContainsSubstring("size.safetensors") && ContainsSubstring("'w'") && ContainsSubstring("F16 x [2, 3] needs 12 bytes"));
  // An element count that overflows is refused too, without arithmetic wrap-around.
  const auto big = write_raw("overflow.safetensors",
                             R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})", 0);
  CHECK_THAT(open_error<cai::validation_error>(big), ContainsSubstring("'w'") && ContainsSubstring("address space"));
}

TEST_CASE("a negative or non-integer extent in a shape is refused", "[model_io][safetensors]") {
  const auto neg = write_raw("neg.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0);
  CHECK_THAT(open_error<cai::validation_error>(neg),
             ContainsSubstring("neg.safetensors") && ContainsSubstring("'w'") && ContainsSubstring("shape[0]") &&
                 ContainsSubstring("negative"));
  const auto frac = write_raw("frac.safetensors", R"({"w":{"dtype":"F32","shape":[1,2.5],"data_offsets":[0,0]}})", 0);
  CHECK_THAT(open_error<cai::validation_error>(frac), ContainsSubstring("shape[1]") && ContainsSubstring("non-integer"));
  const auto str = write_raw("str.safetensors", R"({"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8);
  CHECK_THAT(open_error<cai::validation_error>(str), ContainsSubstring("'shape' must be an array"));
}

TEST_CASE("every truncation and random byte corruption of a valid file opens or gives a cai error",
          "[model_io][safetensors]") {
  const auto whole = read_bytes(fixtures / "tiny_f16.safetensors");
  const auto p = temp_dir() / "mutated.safetensors";
  std::size_t opened = 0, refused = 0;
  const auto attempt = [&](const std::vector<char>& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    try {
      const auto f = cai::safetensors_file::open(p);
      for (const auto& t : f.tensors())
        if (t.dtype == cai::dtype::f16 || t.dtype == cai::dtype::bf16 || t.dtype == cai::dtype::f32)
          CHECK(f.read_f32(t.name).size() == t.element_count());
      ++opened;
    } catch (const cai::error&) {
      ++refused;
    }
  };
  for (std::size_t n = 0; n < whole.size(); ++n) attempt({whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)});
  CHECK(opened == 0);  // every proper prefix is refused
  std::mt19937 rng(20260127);
  for (int i = 0; i < 1000; ++i) {
    auto bytes = whole;
    const auto flips = 1 + rng() % 3;
    for (std::uint32_t k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
    attempt(bytes);
  }
  CHECK(opened + refused == whole.size() + 1000);
  CHECK(refused > whole.size());
}
