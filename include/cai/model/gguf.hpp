/// @file model/gguf.hpp
/// Reading GGUF files (versions 2 and 3), the single-file model format of llama.cpp / ggml
/// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md). The file is memory-mapped read-only;
/// `gguf_file` parses and checks the header (typed metadata, tensor infos, alignment), gives the raw
/// bytes of each tensor (quantised blocks included, for kernels that compute on them) and dequantises
/// F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors to `float` exactly as ggml defines those block formats.
/// `read_llama_config` and `read_tokenizer_metadata` turn the metadata of a Llama-family model into
/// plain C++ values.
///
/// Layout of a GGUF file (all little-endian):
///   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
///   kv_count x (string key | u32 value_type | value)            string = u64 length + bytes (no NUL)
///   tensor_count x (string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset)
///   padding to `general.alignment` (default 32) | data section (tensor offsets are relative to it)
/// Dimensions are listed innermost first: ne[0] is the length of a row, so a matrix of `rows` rows of
/// `cols` values has ne = {cols, rows}; `gguf_tensor_info::shape()` gives the outermost-first order.
///
/// Every defect of a file (truncation, impossible counts or lengths, unknown types, bad dimensions,
/// misaligned, overlapping or out-of-range tensors, duplicate names) is reported as a `cai::error`
/// that names the file and the key or tensor concerned; no byte outside the file is ever read.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>


#include "cai/detail/mapped_file.hpp"
#include "cai/error.hpp"
#include "cai/model/half.hpp"

static_assert(std::endian::native == std::endian::little,
              "cai's GGUF reader maps little-endian files directly and needs a little-endian host.");

namespace cai {

// ---------------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------------

/// The type of a GGUF metadata value; the numbering is the file's (`enum gguf_type` in ggml).
enum class gguf_type : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

/// The name GGUF's documentation gives to a metadata value type ("uint32", "string", ...).
[[nodiscard]] constexpr std::string_view to_string(gguf_type t) noexcept {
  switch (t) {
    case gguf_type::uint8: return "uint8";
    case gguf_type::int8: return "int8";
    case gguf_type::uint16: return "uint16";
    case gguf_type::int16: return "int16";
    case gguf_type::uint32: return "uint32";
    case gguf_type::int32: return "int32";
    case gguf_type::float32: return "float32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::uint64: return "uint64";
    case gguf_type::int64: return "int64";
    case gguf_type::float64: return "float64";
  }
  return "unknown";
}

/// The storage type of a tensor; the numbering is ggml's (`enum ggml_type`). Ids that ggml retired
/// (4, 5, 31-33, 36-38) are absent. Every type listed here can be parsed and its bytes handed out
/// (`gguf_file::raw`); only those for which `can_dequantize` is true can be converted to `float`.
enum class ggml_type : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  iq2_xxs = 16,
  iq2_xs = 17,
  iq3_xxs = 18,
  iq1_s = 19,
  iq4_nl = 20,
  iq3_s = 21,
  iq2_s = 22,
  iq4_xs = 23,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  iq1_m = 29,
  bf16 = 30,
  tq1_0 = 34,
  tq2_0 = 35,
  mxfp4 = 39,
  nvfp4 = 40,
  q1_0 = 41,
};

/// How ggml stores a tensor type: values come in blocks of `block_size` elements that take `type_size`
/// bytes each (1 and sizeof(element) for the plain types).
struct ggml_type_traits {
  ggml_type type;
  std::string_view name;    ///< ggml's name: "F32", "Q4_1", ...
  std::uint32_t block_size;  ///< elements per block
  std::uint32_t type_size;   ///< bytes per block
};

/// The traits of the ggml type with numeric id `id`, or nothing when ggml has no such type.
/// The table is ggml's (`GGML_QUANT_SIZES` in gguf-py).
[[nodiscard]] constexpr std::optional<ggml_type_traits> ggml_traits(std::uint32_t id) noexcept {
  using t = ggml_type;
  constexpr ggml_type_traits table[] = {
      {t::f32, "F32", 1, 4},           {t::f16, "F16", 1, 2},          {t::q4_0, "Q4_0", 32, 18},
      {t::q4_1, "Q4_1", 32, 20},       {t::q5_0, "Q5_0", 32, 22},      {t::q5_1, "Q5_1", 32, 24},
      {t::q8_0, "Q8_0", 32, 34},       {t::q8_1, "Q8_1", 32, 40},      {t::q2_k, "Q2_K", 256, 84},
      {t::q3_k, "Q3_K", 256, 110},     {t::q4_k, "Q4_K", 256, 144},    {t::q5_k, "Q5_K", 256, 176},
      {t::q6_k, "Q6_K", 256, 210},     {t::q8_k, "Q8_K", 256, 292},    {t::iq2_xxs, "IQ2_XXS", 256, 66},
      {t::iq2_xs, "IQ2_XS", 256, 74},  {t::iq3_xxs, "IQ3_XXS", 256, 98}, {t::iq1_s, "IQ1_S", 256, 50},
      {t::iq4_nl, "IQ4_NL", 32, 18},   {t::iq3_s, "IQ3_S", 256, 110},  {t::iq2_s, "IQ2_S", 256, 82},
      {t::iq4_xs, "IQ4_XS", 256, 136}, {t::i8, "I8", 1, 1},            {t::i16, "I16", 1, 2},
      {t::i32, "I32", 1, 4},           {t::i64, "I64", 1, 8},          {t::f64, "F64", 1, 8},
      {t::iq1_m, "IQ1_M", 256, 56},    {t::bf16, "BF16", 1, 2},        {t::tq1_0, "TQ1_0", 256, 54},
      {t::tq2_0, "TQ2_0", 256, 66},    {t::mxfp4, "MXFP4", 32, 17},    {t::nvfp4, "NVFP4", 64, 36},
      {t::q1_0, "Q1_0", 128, 18},
  };
  for (const auto& entry : table)
    if (static_cast<std::uint32_t>(entry.type) == id) return entry;
  return std::nullopt;
}

/// The traits of a (known) ggml type.
[[nodiscard]] constexpr ggml_type_traits ggml_traits(ggml_type type) noexcept {
  return *ggml_traits(static_cast<std::uint32_t>(type));
}

/// ggml's name of a tensor type ("Q4_1").
[[nodiscard]] constexpr std::string_view to_string(ggml_type type) noexcept { return ggml_traits(type).name; }

/// Whether `dequantize` converts tensors of this type: F32, F16, BF16, Q8_0, Q4_0 and Q4_1.
[[nodiscard]] constexpr bool can_dequantize(ggml_type type) noexcept {
  return type == ggml_type::f32 || type == ggml_type::f16 || type == ggml_type::bf16 ||
         type == ggml_type::q8_0 || type == ggml_type::q4_0 || type == ggml_type::q4_1;
}

struct gguf_value;

/// A GGUF metadata array: values of one `element_type` (which may itself be `array`).
struct gguf_array {
  gguf_type element_type = gguf_type::uint8;
  std::vector<gguf_value> values;
};

/// A GGUF metadata value. The alternatives of `data` are in the order of `gguf_type`, so
/// `data.index()` is the value's type number.
struct gguf_value {
  using storage = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t,
                               std::int32_t, float, bool, std::string, gguf_array, std::uint64_t,
                               std::int64_t, double>;
  storage data;

  /// The value's GGUF type.
  [[nodiscard]] gguf_type type() const noexcept { return static_cast<gguf_type>(data.index()); }
  /// Whether the value holds a `T` (one of the alternatives of `storage`).
  template <class T>
  [[nodiscard]] bool holds() const noexcept {
    return std::holds_alternative<T>(data);
  }
  /// The value as a `T`. @throws std::bad_variant_access when it holds another type.
  template <class T>
  [[nodiscard]] const T& get() const {
    return std::get<T>(data);
  }
};

/// One tensor as the header of a GGUF file describes it.
struct gguf_tensor_info {
  std::string name;
  std::vector<std::uint64_t> dims;  ///< ne, innermost first: dims[0] is the row length (1 to 4 entries)
  ggml_type type = ggml_type::f32;
  std::uint64_t offset = 0;      ///< bytes from the start of the data section
  std::uint64_t n_elements = 0;  ///< product of dims
  std::uint64_t n_bytes = 0;     ///< size of the tensor's blocks in the file

  /// The dimensions outermost first (NumPy / PyTorch order): ne = {576, 1536} gives {1536, 576}.
  [[nodiscard]] std::vector<std::uint64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
  /// Elements per row (ne[0]).
  [[nodiscard]] std::uint64_t row_length() const noexcept { return dims.empty() ? 1 : dims[0]; }
  /// Number of rows (product of ne[1..]).
  [[nodiscard]] std::uint64_t n_rows() const noexcept { return n_elements / row_length(); }
  /// Bytes per row in the file (whole blocks; ne[0] is a multiple of the block size).
  [[nodiscard]] std::uint64_t row_bytes() const noexcept {
    const auto traits = ggml_traits(type);
    return row_length() / traits.block_size * traits.type_size;
  }
};

/// The stored bytes of one tensor, as they are in the mapped file: whole blocks of `type`, row after
/// row. Valid as long as the `gguf_file` it came from.
struct gguf_raw_tensor {
  const gguf_tensor_info* info = nullptr;
  ggml_type type = ggml_type::f32;
  std::span<const std::byte> bytes;  ///< bytes: (n_rows, row_bytes)

  /// The blocks of row `i`: (row_bytes). @throws config_error when i >= info->n_rows().
  [[nodiscard]] std::span<const std::byte> row(std::uint64_t i) const {
    if (i >= info->n_rows())
      throw config_error("gguf_raw_tensor::row: row " + std::to_string(i) + " of tensor '" + info->name +
                         "', which has " + std::to_string(info->n_rows()) + " rows");
    const auto n = info->row_bytes();
    return bytes.subspan(static_cast<std::size_t>(i * n), static_cast<std::size_t>(n));
  }
};

// ---------------------------------------------------------------------------------------------------
// Dequantisation
// ---------------------------------------------------------------------------------------------------

namespace detail::gguf {

inline std::uint16_t load_u16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// In Q8_0, Q4_0 and Q4_1 the product of the quant (at most 8 bits) and the f16 scale d (11 significant
// bits) is exact in binary32, so the only rounding is that of Q4_1's "+ m": the result is the same whether
// or not a compiler fuses the multiply-add into an FMA, and equals ggml's and NumPy's bit for bit.

// blocks: (n_blocks, 20) = f16 d | f16 m | 16 bytes of nibbles; out: (n_blocks, 32)
inline void dequantize_q4_1(const std::byte* blocks, std::size_t n_blocks, float* out) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, blocks += 20, out += 32) {
    const float d = fp16_bits_to_float(load_u16(blocks));
    const float m = fp16_bits_to_float(load_u16(blocks + 2));
    for (std::size_t j = 0; j < 16; ++j) {
      const auto q = std::to_integer<unsigned>(blocks[4 + j]);
      out[j] = static_cast<float>(q & 0x0fu) * d + m;
      out[j + 16] = static_cast<float>(q >> 4) * d + m;
    }
  }
}

// blocks: (n_blocks, 18) = f16 d | 16 bytes of nibbles (low: elements 0..15, high: 16..31); out: (n_blocks, 32)
inline void dequantize_q4_0(const std::byte* blocks, std::size_t n_blocks, float* out) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, blocks += 18, out += 32) {
    const float d = fp16_bits_to_float(load_u16(blocks));
    for (std::size_t j = 0; j < 16; ++j) {
      const auto q = std::to_integer<int>(blocks[2 + j]);
      out[j] = static_cast<float>((q & 0x0f) - 8) * d;
      out[j + 16] = static_cast<float>((q >> 4) - 8) * d;
    }
  }
}

// blocks: (n_blocks, 34) = f16 d | 32 x int8; out: (n_blocks, 32)
inline void dequantize_q8_0(const std::byte* blocks, std::size_t n_blocks, float* out) noexcept {
  for (std::size_t b = 0; b < n_blocks; ++b, blocks += 34, out += 32) {
    const float d = fp16_bits_to_float(load_u16(blocks));
    for (std::size_t j = 0; j < 32; ++j)
      out[j] = static_cast<float>(static_cast<std::int8_t>(std::to_integer<std::uint8_t>(blocks[2 + j]))) * d;
  }
}

}  // namespace detail::gguf

/// Converts whole blocks of a ggml type to floats, as ggml's `dequantize_row_*` do:
/// F32 as is; F16 and BF16 widened exactly; Q8_0 `q * d`; Q4_0 `(nibble - 8) * d` with the low nibbles
/// of the 16 bytes giving elements 0..15 and the high nibbles 16..31; Q4_1 `nibble * d + m`
/// (d and m are f16). The result is bit for bit that of ggml and of gguf-py's `quants.dequantize`.
/// @param type    the storage type; `can_dequantize(type)` must hold.
/// @param blocks  the stored bytes: (out.size() / block_size, type_size).
/// @param out     the values: (n_values), a multiple of the type's block size.
/// @throws config_error when the type cannot be dequantised or the sizes do not match.
inline void dequantize(ggml_type type, std::span<const std::byte> blocks, std::span<float> out) {
  const auto traits = ggml_traits(type);
  if (!can_dequantize(type))
    throw config_error("cai::dequantize: ggml type " + std::string(traits.name) +
                       " cannot be dequantised (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
  if (out.size() % traits.block_size != 0 ||
      blocks.size() != out.size() / traits.block_size * traits.type_size)
    throw config_error("cai::dequantize: " + std::to_string(out.size()) + " " + std::string(traits.name) +
                       " values need " + std::to_string(out.size() / traits.block_size * traits.type_size) +
                       " bytes in whole blocks of " + std::to_string(traits.block_size) + ", got " +
                       std::to_string(blocks.size()) + " bytes");
  const std::size_t n_blocks = out.size() / traits.block_size;
  switch (type) {
    case ggml_type::f32:
      if (!out.empty()) std::memcpy(out.data(), blocks.data(), blocks.size());
      break;
    case ggml_type::f16:
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = fp16_bits_to_float(detail::gguf::load_u16(blocks.data() + 2 * i));
      break;
    case ggml_type::bf16:
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = bf16_bits_to_float(detail::gguf::load_u16(blocks.data() + 2 * i));
      break;
    case ggml_type::q8_0: detail::gguf::dequantize_q8_0(blocks.data(), n_blocks, out.data()); break;
    case ggml_type::q4_0: detail::gguf::dequantize_q4_0(blocks.data(), n_blocks, out.data()); break;
    case ggml_type::q4_1: detail::gguf::dequantize_q4_1(blocks.data(), n_blocks, out.data()); break;
    default: break;  // excluded by can_dequantize above
  }
}

// ---------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------

namespace detail::gguf {

using mapped_file = cai::detail::mapped_file;

/// The fewest bytes a value of each metadata type takes in the file (an array: type + count).
constexpr std::uint64_t min_value_size(gguf_type t) noexcept {
  switch (t) {
    case gguf_type::uint8: case gguf_type::int8: case gguf_type::boolean: return 1;
    case gguf_type::uint16: case gguf_type::int16: return 2;
    case gguf_type::uint32: case gguf_type::int32: case gguf_type::float32: return 4;
    case gguf_type::uint64: case gguf_type::int64: case gguf_type::float64: return 8;
    case gguf_type::string: return 8;
    case gguf_type::array: return 12;
  }
  return 1;
}

/// Arrays nest at most this deep; deeper nesting is refused rather than risking the stack.
inline constexpr int max_array_depth = 16;

/// Counts read from the file are checked against the bytes left, but a vector is never reserved beyond
/// this many elements up front: memory then grows with what is actually read.
inline constexpr std::uint64_t reserve_limit = std::uint64_t{1} << 16;

/// A bounds-checked cursor over the mapped bytes. Every read first checks that the bytes are there
/// and otherwise throws a parse_error that names the file, the offset and what was being read.
class reader {
 public:
  reader(std::span<const std::byte> bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {}

  [[nodiscard]] std::uint64_t pos() const noexcept { return pos_; }
  [[nodiscard]] std::uint64_t remaining() const noexcept { return bytes_.size() - pos_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  [[noreturn]] void fail(const std::string& what) const { throw parse_error(path_, 0, 0, what); }

  void need(std::uint64_t n, const std::string& what) const {
    if (n > remaining())
      fail("truncated file: " + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + " but the file ends at " + std::to_string(bytes_.size()));
  }

  template <class T>
  T scalar(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }

  std::string string(const std::string& what) {
    const auto length = scalar<std::uint64_t>("the length of " + what);
    if (length > remaining())
      fail(what + ": string length " + std::to_string(length) + " at offset " + std::to_string(pos_ - 8) +
           " runs past the end of the file (" + std::to_string(remaining()) + " bytes left)");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(length));
    pos_ += length;
    return s;
  }

  gguf_type value_type(const std::string& what) {
    const auto offset = pos_;
    const auto raw = scalar<std::uint32_t>("the value type of " + what);
    if (raw > static_cast<std::uint32_t>(gguf_type::float64))
      fail(what + ": unknown metadata value type " + std::to_string(raw) + " at offset " +
           std::to_string(offset) + " (GGUF defines 0 to 12)");
    return static_cast<gguf_type>(raw);
  }

  gguf_value value(gguf_type type, const std::string& what, int depth) {
    switch (type) {
      case gguf_type::uint8: return {scalar<std::uint8_t>(what)};
      case gguf_type::int8: return {scalar<std::int8_t>(what)};
      case gguf_type::uint16: return {scalar<std::uint16_t>(what)};
      case gguf_type::int16: return {scalar<std::int16_t>(what)};
      case gguf_type::uint32: return {scalar<std::uint32_t>(what)};
      case gguf_type::int32: return {scalar<std::int32_t>(what)};
      case gguf_type::float32: return {scalar<float>(what)};
      case gguf_type::uint64: return {scalar<std::uint64_t>(what)};
      case gguf_type::int64: return {scalar<std::int64_t>(what)};
      case gguf_type::float64: return {scalar<double>(what)};
      case gguf_type::boolean: {
        const auto offset = pos_;
        const auto b = scalar<std::uint8_t>(what);
        if (b > 1)
          fail(what + ": bool value " + std::to_string(b) + " at offset " + std::to_string(offset) +
               " (expected 0 or 1)");
        return {b == 1};
      }
      case gguf_type::string: return {string(what)};
      case gguf_type::array: {
        if (depth >= max_array_depth)
          fail(what + ": arrays nested more than " + std::to_string(max_array_depth) + " deep");
        gguf_array array;
        array.element_type = value_type("the element type of " + what);
        const auto offset = pos_;
        const auto count = scalar<std::uint64_t>("the element count of " + what);
        const auto min_size = min_value_size(array.element_type);
        if (count > remaining() / min_size)
          fail(what + ": array of " + std::to_string(count) + " " + std::string(to_string(array.element_type)) +
               " values at offset " + std::to_string(offset) + " runs past the end of the file (" +
               std::to_string(remaining()) + " bytes left, at least " + std::to_string(min_size) +
               " per element)");
        array.values.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, reserve_limit)));
        for (std::uint64_t i = 0; i < count; ++i)
          array.values.push_back(value(array.element_type, what + "[" + std::to_string(i) + "]", depth + 1));
        return {std::move(array)};
      }
    }
    fail(what + ": unknown metadata value type");  // unreachable: value_type() checked it
  }

 private:
  std::span<const std::byte> bytes_;
  std::string path_;
  std::uint64_t pos_ = 0;
};

/// a * b, or nothing when it does not fit in `limit`.
constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b,
                                                   std::uint64_t limit) noexcept {
  if (a != 0 && b > limit / a) return std::nullopt;
  return a * b;
}

/// "a string", "an int32", "an array of uint8": the type of a value, for messages.
inline std::string describe(const gguf_value& v) {
  std::string s(to_string(v.type()));
  if (v.type() == gguf_type::array)
    s += " of " + std::string(to_string(v.get<gguf_array>().element_type));
  return (s[0] == 'a' || s[0] == 'i' ? "an " : "a ") + s;
}

}  // namespace detail::gguf

/// A GGUF file, memory-mapped and with its header parsed and checked. Move-only; tensor bytes handed
/// out (`raw`) point into the mapping and live as long as this object.
///
/// @code
/// cai::gguf_file f("SmolLM2-135M-Instruct.Q4_1.gguf");
/// auto config = cai::read_llama_config(f);          // 30 layers, d_model 576, ...
/// std::vector<float> w = f.dequantize("blk.0.attn_q.weight");  // w: (576, 576), row-major
/// @endcode
class gguf_file {
 public:
  /// Maps and parses `path`.
  /// @throws io_error when the file cannot be opened or mapped; parse_error when its bytes are not a
  ///         GGUF v2/v3 file (truncated, bad magic or version, impossible counts or lengths, unknown
  ///         types); validation_error when its content breaks a rule (duplicate key or tensor name,
  ///         bad dimensions, misaligned, overlapping or out-of-range tensor data, bad alignment key).
  explicit gguf_file(const std::filesystem::path& path) : path_(path), map_(path) { parse(); }

  gguf_file(gguf_file&&) noexcept = default;
  gguf_file& operator=(gguf_file&&) noexcept = default;
  gguf_file(const gguf_file&) = delete;
  gguf_file& operator=(const gguf_file&) = delete;
  ~gguf_file() = default;

  /// The file's path, as given.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// The GGUF version: 2 or 3.
  [[nodiscard]] std::uint32_t version() const noexcept { return version_; }
  /// `general.alignment`, or 32 when the key is absent.
  [[nodiscard]] std::uint64_t alignment() const noexcept { return alignment_; }
  /// Offset in the file at which the data section starts (a multiple of the alignment).
  [[nodiscard]] std::uint64_t data_offset() const noexcept { return data_offset_; }
  /// Size of the file in bytes.
  [[nodiscard]] std::uint64_t file_size() const noexcept { return map_.bytes().size(); }

  // --- metadata ---------------------------------------------------------------------------------

  /// All key-value pairs, in file order.
  [[nodiscard]] const std::vector<std::pair<std::string, gguf_value>>& metadata() const noexcept {
    return metadata_;
  }
  /// The value of `key`, or nullptr when the file has no such key.
  [[nodiscard]] const gguf_value* find(std::string_view key) const noexcept {
    auto it = key_index_.find(key);
    return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
  }
  /// Whether the file has metadata `key`.
  [[nodiscard]] bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }
  /// The value of `key`. @throws validation_error naming the file and the key when it is absent.
  [[nodiscard]] const gguf_value& at(std::string_view key) const {
    if (const auto* v = find(key)) return *v;
    throw validation_error(where() + "missing metadata key '" + std::string(key) + "'");
  }

  /// A string value. @throws validation_error when absent or of another type.
  [[nodiscard]] const std::string& get_string(std::string_view key) const {
    const auto& v = at(key);
    if (!v.holds<std::string>()) wrong_type(key, v, "a string");
    return v.get<std::string>();
  }
  /// A bool value. @throws validation_error when absent or of another type.
  [[nodiscard]] bool get_bool(std::string_view key) const {
    const auto& v = at(key);
    if (!v.holds<bool>()) wrong_type(key, v, "a bool");
    return v.get<bool>();
  }
  /// A non-negative integer of any integer type (writers differ: uint32, int32, uint64 all occur).
  /// @throws validation_error when absent, not an integer, or negative.
  [[nodiscard]] std::uint64_t get_uint(std::string_view key) const {
    const auto& v = at(key);
    const auto i = integer_of(v);
    if (!i) wrong_type(key, v, "an unsigned integer");
    if (i->negative)
      throw validation_error(where() + "metadata key '" + std::string(key) + "' is " +
                             std::to_string(static_cast<std::int64_t>(i->bits)) +
                             ", expected a non-negative integer");
    return i->bits;
  }
  /// A signed integer of any integer type. @throws validation_error when absent, not an integer, or
  /// outside int64.
  [[nodiscard]] std::int64_t get_int(std::string_view key) const {
    const auto& v = at(key);
    const auto i = integer_of(v);
    if (!i) wrong_type(key, v, "an integer");
    if (!i->negative && i->bits > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw validation_error(where() + "metadata key '" + std::string(key) + "' is " + std::to_string(i->bits) +
                             ", which does not fit in int64");
    return static_cast<std::int64_t>(i->bits);
  }
  /// A float32 or float64 value, widened to double. @throws validation_error when absent or of
  /// another type.
  [[nodiscard]] double get_float(std::string_view key) const {
    const auto& v = at(key);
    if (v.holds<float>()) return v.get<float>();
    if (v.holds<double>()) return v.get<double>();
    wrong_type(key, v, "a float32 or float64");
  }
  /// An array of strings. @throws validation_error when absent or of another type.
  [[nodiscard]] std::vector<std::string> get_string_array(std::string_view key) const {
    const auto& a = array_of(key, gguf_type::string, "an array of strings");
    std::vector<std::string> out;
    out.reserve(a.values.size());
    for (const auto& e : a.values) out.push_back(e.get<std::string>());
    return out;
  }
  /// An array of integers (any integer element type) as int64. @throws validation_error when absent,
  /// of another type, or holding a uint64 beyond int64.
  [[nodiscard]] std::vector<std::int64_t> get_int_array(std::string_view key) const {
    const auto& v = at(key);
    const auto* a = v.holds<gguf_array>() ? &v.get<gguf_array>() : nullptr;
    if (a == nullptr || !is_integer(a->element_type)) wrong_type(key, v, "an array of integers");
    std::vector<std::int64_t> out;
    out.reserve(a->values.size());
    for (std::size_t i = 0; i < a->values.size(); ++i) {
      const auto x = *integer_of(a->values[i]);
      if (!x.negative && x.bits > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw validation_error(where() + "metadata key '" + std::string(key) + "'[" + std::to_string(i) +
                               "] is " + std::to_string(x.bits) + ", which does not fit in int64");
      out.push_back(static_cast<std::int64_t>(x.bits));
    }
    return out;
  }
  /// An array of float32 values. @throws validation_error when absent or of another type.
  [[nodiscard]] std::vector<float> get_float_array(std::string_view key) const {
    const auto& a = array_of(key, gguf_type::float32, "an array of float32");
    std::vector<float> out;
    out.reserve(a.values.size());
    for (const auto& e : a.values) out.push_back(e.get<float>());
    return out;
  }

  // --- tensors ----------------------------------------------------------------------------------

  /// All tensor infos, in file order.
  [[nodiscard]] const std::vector<gguf_tensor_info>& tensors() const noexcept { return tensors_; }
  /// The tensor called `name`, or nullptr.
  [[nodiscard]] const gguf_tensor_info* find_tensor(std::string_view name) const noexcept {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  /// The tensor called `name`. @throws validation_error naming the file and tensor when absent.
  [[nodiscard]] const gguf_tensor_info& tensor(std::string_view name) const {
    if (const auto* t = find_tensor(name)) return *t;
    throw validation_error(where() + "no tensor named '" + std::string(name) + "'");
  }

  /// The stored bytes of a tensor (whole blocks of its type), for kernels that work on them directly.
  /// @pre `info` is one of `tensors()` of this file. @throws config_error when it is not.
  [[nodiscard]] gguf_raw_tensor raw(const gguf_tensor_info& info) const {
    const std::less<const gguf_tensor_info*> before;  // a total order, also across unrelated objects
    if (before(&info, tensors_.data()) || !before(&info, tensors_.data() + tensors_.size()))
      throw config_error(where() + "gguf_file::raw: tensor '" + info.name + "' is not one of this file's tensor infos");
    const auto bytes = map_.bytes().subspan(static_cast<std::size_t>(data_offset_ + info.offset),
                                            static_cast<std::size_t>(info.n_bytes));
    return {&info, info.type, bytes};
  }
  /// The stored bytes of the tensor called `name`. @throws validation_error when absent.
  [[nodiscard]] gguf_raw_tensor raw(std::string_view name) const { return raw(tensor(name)); }

  /// Dequantises a tensor into `out`: (n_elements), row-major with ne[0] varying fastest.
  /// @pre `info` is one of `tensors()` of this file (else config_error).
  /// @throws validation_error when its type cannot be dequantised or `out` has the wrong size.
  void dequantize_into(const gguf_tensor_info& info, std::span<float> out) const {
    if (!can_dequantize(info.type))
      throw validation_error(where() + "tensor '" + info.name + "' has type " + std::string(to_string(info.type)) +
                             ", which cai cannot dequantise (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)");
    if (out.size() != info.n_elements)
      throw validation_error(where() + "tensor '" + info.name + "' has " + std::to_string(info.n_elements) +
                             " elements, but the output buffer holds " + std::to_string(out.size()));
    cai::dequantize(info.type, raw(info).bytes, out);
  }
  /// The values of the tensor called `name`: (n_elements), row-major with ne[0] varying fastest.
  /// @throws validation_error when absent or its type cannot be dequantised.
  [[nodiscard]] std::vector<float> dequantize(std::string_view name) const {
    const auto& info = tensor(name);
    if (!can_dequantize(info.type)) dequantize_into(info, {});  // throws the message that names it
    std::vector<float> out(static_cast<std::size_t>(info.n_elements));
    dequantize_into(info, out);
    return out;
  }

 private:
  struct integer {
    std::uint64_t bits;
    bool negative;
  };
  static bool is_integer(gguf_type t) noexcept {
    switch (t) {
      case gguf_type::uint8: case gguf_type::int8: case gguf_type::uint16: case gguf_type::int16:
      case gguf_type::uint32: case gguf_type::int32: case gguf_type::uint64: case gguf_type::int64:
        return true;
      default: return false;
    }
  }
  static std::optional<integer> integer_of(const gguf_value& v) noexcept {
    return std::visit(
        [](const auto& x) -> std::optional<integer> {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            if constexpr (std::is_signed_v<T>)
              return integer{static_cast<std::uint64_t>(static_cast<std::int64_t>(x)), x < 0};
            else
              return integer{static_cast<std::uint64_t>(x), false};
          } else {
            return std::nullopt;
          }
        },
        v.data);
  }

  [[nodiscard]] std::string where() const { return path_.string() + ": "; }

  [[noreturn]] void wrong_type(std::string_view key, const gguf_value& v, const char* expected) const {
    throw validation_error(where() + "metadata key '" + std::string(key) + "' is " + detail::gguf::describe(v) +
                           ", expected " + expected);
  }

  const gguf_array& array_of(std::string_view key, gguf_type element, const char* expected) const {
    const auto& v = at(key);
    if (!v.holds<gguf_array>() || v.get<gguf_array>().element_type != element) wrong_type(key, v, expected);
    return v.get<gguf_array>();
  }

  void parse() {
    using detail::gguf::reader;
    reader r(map_.bytes(), path_.string());
    const std::string file = path_.string();

    // Header.
    r.need(4, "the magic \"GGUF\"");
    const auto magic = r.scalar<std::uint32_t>("the magic");
    if (magic != 0x46554747u) {  // "GGUF" read as little-endian u32
      const auto* p = reinterpret_cast<const unsigned char*>(&magic);
      std::string seen;
      for (int i = 0; i < 4; ++i)
        seen += (p[i] >= 32 && p[i] < 127) ? std::string(1, static_cast<char>(p[i]))
                                            : "\\x" + std::string(1, "0123456789abcdef"[p[i] >> 4]) +
                                                  std::string(1, "0123456789abcdef"[p[i] & 15]);
      r.fail("not a GGUF file: the first 4 bytes are \"" + seen + "\", expected \"GGUF\"");
    }
    version_ = r.scalar<std::uint32_t>("the version");
    if (version_ == 0x02000000u || version_ == 0x03000000u)
      r.fail("big-endian GGUF files are not supported (version field reads " + std::to_string(version_) + ")");
    if (version_ == 1)
      r.fail("unsupported GGUF version 1 (it used 32-bit counts); convert the file with a current llama.cpp");
    if (version_ != 2 && version_ != 3)
      r.fail("unsupported GGUF version " + std::to_string(version_) + " (cai reads versions 2 and 3)");
    const auto n_tensors = r.scalar<std::uint64_t>("the tensor count");
    const auto n_kv = r.scalar<std::uint64_t>("the metadata key-value count");
    // Each key-value takes at least 13 bytes (empty key, type, 1-byte value); each tensor info at least
    // 24 (empty name, n_dims, type, offset).
    if (n_kv > r.remaining() / 13)
      r.fail("metadata key-value count " + std::to_string(n_kv) + " is impossible: " +
             std::to_string(r.remaining()) + " bytes follow the header and each entry takes at least 13");
    if (n_tensors > r.remaining() / 24)
      r.fail("tensor count " + std::to_string(n_tensors) + " is impossible: " + std::to_string(r.remaining()) +
             " bytes follow the header and each tensor info takes at least 24");

    // Metadata.
    metadata_.reserve(static_cast<std::size_t>(std::min(n_kv, detail::gguf::reserve_limit)));
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      const std::string entry = "metadata entry #" + std::to_string(i);
      std::string key = r.string("the key of " + entry);
      const std::string what = "metadata key '" + key + "'";
      const auto type = r.value_type(what);
      gguf_value value = r.value(type, what, 0);
      if (key_index_.contains(key))
        throw validation_error(where() + "duplicate metadata key '" + key + "' (entries #" +
                               std::to_string(key_index_.find(key)->second) + " and #" + std::to_string(i) + ")");
      key_index_.emplace(key, metadata_.size());
      metadata_.emplace_back(std::move(key), std::move(value));
    }

    // Alignment.
    if (const auto* a = find("general.alignment")) {
      if (!a->holds<std::uint32_t>()) wrong_type("general.alignment", *a, "a uint32");
      alignment_ = a->get<std::uint32_t>();
      if (alignment_ == 0 || !std::has_single_bit(alignment_))
        throw validation_error(where() + "metadata key 'general.alignment' is " + std::to_string(alignment_) +
                               ", expected a power of two");
    }

    // Tensor infos.
    tensors_.reserve(static_cast<std::size_t>(std::min(n_tensors, detail::gguf::reserve_limit)));
    constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      gguf_tensor_info t;
      t.name = r.string("the name of tensor info #" + std::to_string(i));
      const std::string what = "tensor '" + t.name + "'";
      const auto n_dims = r.scalar<std::uint32_t>("the dimension count of " + what);
      if (n_dims > 4)
        throw validation_error(where() + what + " has " + std::to_string(n_dims) +
                               " dimensions; ggml allows at most 4");
      t.n_elements = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto ne = r.scalar<std::uint64_t>("dimension " + std::to_string(d) + " of " + what);
        if (ne == 0)
          throw validation_error(where() + what + ": dimension " + std::to_string(d) + " is 0");
        if (ne > int64_max)
          throw validation_error(where() + what + ": dimension " + std::to_string(d) + " is " +
                                 std::to_string(ne) + ", beyond int64 (negative in ggml)");
        const auto product = detail::gguf::checked_mul(t.n_elements, ne, int64_max);
        if (!product)
          throw validation_error(where() + what + ": the element count overflows int64 at dimension " +
                                 std::to_string(d));
        t.n_elements = *product;
        t.dims.push_back(ne);
      }
      const auto type_offset = r.pos();
      const auto type_id = r.scalar<std::uint32_t>("the type of " + what);
      const auto traits = ggml_traits(type_id);
      if (!traits)
        r.fail(what + ": unknown ggml tensor type " + std::to_string(type_id) + " at offset " +
               std::to_string(type_offset));
      t.type = traits->type;
      t.offset = r.scalar<std::uint64_t>("the data offset of " + what);
      if (t.row_length() % traits->block_size != 0)
        throw validation_error(where() + what + ": row length " + std::to_string(t.row_length()) +
                               " is not a multiple of the " + std::string(traits->name) + " block size " +
                               std::to_string(traits->block_size));
      const auto bytes = detail::gguf::checked_mul(t.n_elements / traits->block_size, traits->type_size, int64_max);
      if (!bytes) throw validation_error(where() + what + ": its size in bytes overflows int64");
      t.n_bytes = *bytes;
      if (t.offset % alignment_ != 0)
        throw validation_error(where() + what + ": data offset " + std::to_string(t.offset) +
                               " is not a multiple of the alignment " + std::to_string(alignment_));
      if (tensor_index_.contains(t.name))
        throw validation_error(where() + "duplicate tensor name '" + t.name + "' (tensor infos #" +
                               std::to_string(tensor_index_.find(t.name)->second) + " and #" +
                               std::to_string(i) + ")");
      tensor_index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }

    // Data section: starts at the next multiple of the alignment; every tensor must lie inside it,
    // and no two may share bytes.
    const std::uint64_t size = map_.bytes().size();
    data_offset_ = (r.pos() + alignment_ - 1) / alignment_ * alignment_;  // r.pos() <= size: no overflow
    const std::uint64_t data_size = data_offset_ <= size ? size - data_offset_ : 0;
    for (const auto& t : tensors_) {
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        r.fail("tensor '" + t.name + "' occupies bytes [" + std::to_string(t.offset) + ", " +
               (t.offset > int64_max ? std::string("...") : std::to_string(t.offset + t.n_bytes)) +
               ") of the data section, which holds only " + std::to_string(data_size) +
               " bytes (it starts at offset " + std::to_string(data_offset_) + "; the file is truncated or the "
               "offset is wrong)");
    }
    std::vector<const gguf_tensor_info*> by_offset;
    by_offset.reserve(tensors_.size());
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const auto* a, const auto* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      const auto& a = *by_offset[i - 1];
      const auto& b = *by_offset[i];
      if (a.offset + a.n_bytes > b.offset)
        throw validation_error(where() + "tensors '" + a.name + "' (bytes [" + std::to_string(a.offset) + ", " +
                               std::to_string(a.offset + a.n_bytes) + ")) and '" + b.name + "' (bytes [" +
                               std::to_string(b.offset) + ", " + std::to_string(b.offset + b.n_bytes) +
                               ")) overlap in the data section");
    }
  }

  std::filesystem::path path_;
  detail::gguf::mapped_file map_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, gguf_value>> metadata_;
  std::map<std::string, std::size_t, std::less<>> key_index_;
  std::vector<gguf_tensor_info> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

// ---------------------------------------------------------------------------------------------------
// Llama-family configuration and tokenizer metadata
// ---------------------------------------------------------------------------------------------------

/// The hyper-parameters of a Llama-family model, from the `llama.*` metadata of a GGUF file
/// (Touvron et al. 2023, arXiv:2302.13971; the key names are llama.cpp's).
struct gguf_llama_config {
  std::size_t block_count = 0;          ///< llama.block_count: transformer layers
  std::size_t embedding_length = 0;     ///< llama.embedding_length: d_model
  std::size_t head_count = 0;           ///< llama.attention.head_count
  std::size_t head_count_kv = 0;        ///< llama.attention.head_count_kv (grouped-query attention)
  std::size_t feed_forward_length = 0;  ///< llama.feed_forward_length: hidden size of the SwiGLU MLP
  std::size_t context_length = 0;       ///< llama.context_length: positions seen in training
  std::size_t vocab_size = 0;           ///< length of tokenizer.ggml.tokens (else llama.vocab_size)
  std::size_t rope_dimension_count = 0; ///< llama.rope.dimension_count (default: head_dim())
  float rope_freq_base = 10000.0f;      ///< llama.rope.freq_base (default 10000, as in llama.cpp)
  float rms_norm_eps = 1e-5f;           ///< llama.attention.layer_norm_rms_epsilon

  /// embedding_length / head_count.
  [[nodiscard]] std::size_t head_dim() const noexcept { return embedding_length / head_count; }
};

/// Reads the configuration of a Llama-family model. Required: general.architecture = "llama",
/// llama.block_count, .embedding_length, .attention.head_count, .feed_forward_length, .context_length,
/// .attention.layer_norm_rms_epsilon, and tokenizer.ggml.tokens or llama.vocab_size. Optional, with
/// llama.cpp's defaults: .attention.head_count_kv (head_count), .rope.freq_base (10000),
/// .rope.dimension_count (head_dim). Integer keys may have any integer type, float keys float32 or
/// float64.
/// @throws validation_error naming the file and key when a key is missing, has the wrong type or an
///         impossible value (zero, heads that do not divide the embedding, a vocab_size that disagrees
///         with the token list).
[[nodiscard]] inline gguf_llama_config read_llama_config(const gguf_file& file) {
  const std::string where = file.path().string() + ": ";
  const auto& arch = file.get_string("general.architecture");
  if (arch != "llama")
    throw validation_error(where + "general.architecture is '" + arch +
                           "', expected 'llama' (only the Llama family is read)");
  const auto positive = [&](std::string_view key) -> std::size_t {
    const auto v = file.get_uint(key);
    if (v == 0) throw validation_error(where + "metadata key '" + std::string(key) + "' is 0");
    if (v > std::numeric_limits<std::uint32_t>::max())
      throw validation_error(where + "metadata key '" + std::string(key) + "' is " + std::to_string(v) +
                             ", implausibly large");
    return static_cast<std::size_t>(v);
  };
  gguf_llama_config c;
  c.block_count = positive("llama.block_count");
  c.embedding_length = positive("llama.embedding_length");
  c.head_count = positive("llama.attention.head_count");
  c.head_count_kv = file.contains("llama.attention.head_count_kv") ? positive("llama.attention.head_count_kv")
                                                                    : c.head_count;
  c.feed_forward_length = positive("llama.feed_forward_length");
  c.context_length = positive("llama.context_length");
  c.rms_norm_eps = static_cast<float>(file.get_float("llama.attention.layer_norm_rms_epsilon"));
  if (file.contains("llama.rope.freq_base"))
    c.rope_freq_base = static_cast<float>(file.get_float("llama.rope.freq_base"));
  if (const auto* tokens = file.find("tokenizer.ggml.tokens")) {
    if (!tokens->holds<gguf_array>() || tokens->get<gguf_array>().element_type != gguf_type::string)
      throw validation_error(where + "metadata key 'tokenizer.ggml.tokens' is " + detail::gguf::describe(*tokens) +
                             ", expected an array of strings");
    c.vocab_size = tokens->get<gguf_array>().values.size();
    if (file.contains("llama.vocab_size") && file.get_uint("llama.vocab_size") != c.vocab_size)
      throw validation_error(where + "llama.vocab_size is " + std::to_string(file.get_uint("llama.vocab_size")) +
                             " but tokenizer.ggml.tokens holds " + std::to_string(c.vocab_size) + " tokens");
  } else if (file.contains("llama.vocab_size")) {
    c.vocab_size = positive("llama.vocab_size");
  } else {
    throw validation_error(where + "missing metadata key 'tokenizer.ggml.tokens' (and no llama.vocab_size)");
  }
  if (c.vocab_size == 0) throw validation_error(where + "metadata key 'tokenizer.ggml.tokens' is empty");
  if (c.embedding_length % c.head_count != 0)
    throw validation_error(where + "llama.embedding_length " + std::to_string(c.embedding_length) +
                           " is not a multiple of llama.attention.head_count " + std::to_string(c.head_count));
  if (c.head_count % c.head_count_kv != 0)
    throw validation_error(where + "llama.attention.head_count " + std::to_string(c.head_count) +
                           " is not a multiple of llama.attention.head_count_kv " + std::to_string(c.head_count_kv));
  c.rope_dimension_count =
      file.contains("llama.rope.dimension_count") ? positive("llama.rope.dimension_count") : c.head_dim();
  if (!(c.rope_freq_base > 0.0f))
    throw validation_error(where + "llama.rope.freq_base is " + std::to_string(c.rope_freq_base) +
                           ", expected a positive number");
  if (!(c.rms_norm_eps > 0.0f))
    throw validation_error(where + "llama.attention.layer_norm_rms_epsilon is " + std::to_string(c.rms_norm_eps) +
                           ", expected a positive number");
  return c;
}

/// The tokenizer as a GGUF file describes it (`tokenizer.ggml.*`, `tokenizer.chat_template`), as plain
/// values for a tokenizer to be built from. Optional keys that are absent leave their member empty.
struct gguf_tokenizer_metadata {
  std::string model;                       ///< tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece), ...
  std::string pre;                         ///< tokenizer.ggml.pre: pre-tokenizer name ("smollm"), or empty
  std::vector<std::string> tokens;         ///< tokenizer.ggml.tokens: (vocab_size)
  std::vector<std::string> merges;         ///< tokenizer.ggml.merges: "a b" pairs, by rank; empty if absent
  std::vector<std::int32_t> token_types;   ///< tokenizer.ggml.token_type: (vocab_size) or empty
  std::vector<float> scores;               ///< tokenizer.ggml.scores: (vocab_size) or empty
  std::optional<std::uint32_t> bos_token_id;      ///< tokenizer.ggml.bos_token_id
  std::optional<std::uint32_t> eos_token_id;      ///< tokenizer.ggml.eos_token_id
  std::optional<std::uint32_t> unknown_token_id;  ///< tokenizer.ggml.unknown_token_id
  std::optional<std::uint32_t> padding_token_id;  ///< tokenizer.ggml.padding_token_id
  std::optional<bool> add_bos_token;              ///< tokenizer.ggml.add_bos_token
  std::optional<bool> add_eos_token;              ///< tokenizer.ggml.add_eos_token
  std::string chat_template;                      ///< tokenizer.chat_template (Jinja), or empty
};

/// Reads the tokenizer metadata. Required: tokenizer.ggml.model and tokenizer.ggml.tokens.
/// @throws validation_error naming the file and key when a key is missing or has the wrong type, a
///         per-token array's length differs from the token count, or a special token id is out of range.
[[nodiscard]] inline gguf_tokenizer_metadata read_tokenizer_metadata(const gguf_file& file) {
  const std::string where = file.path().string() + ": ";
  gguf_tokenizer_metadata t;
  t.model = file.get_string("tokenizer.ggml.model");
  t.tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (file.contains("tokenizer.ggml.pre")) t.pre = file.get_string("tokenizer.ggml.pre");
  if (file.contains("tokenizer.ggml.merges")) t.merges = file.get_string_array("tokenizer.ggml.merges");
  if (file.contains("tokenizer.ggml.token_type")) {
    for (const auto v : file.get_int_array("tokenizer.ggml.token_type")) {
      if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max())
        throw validation_error(where + "tokenizer.ggml.token_type holds " + std::to_string(v) + ", beyond int32");
      t.token_types.push_back(static_cast<std::int32_t>(v));
    }
    if (t.token_types.size() != t.tokens.size())
      throw validation_error(where + "tokenizer.ggml.token_type has " + std::to_string(t.token_types.size()) +
                             " entries for " + std::to_string(t.tokens.size()) + " tokens");
  }
  if (file.contains("tokenizer.ggml.scores")) {
    t.scores = file.get_float_array("tokenizer.ggml.scores");
    if (t.scores.size() != t.tokens.size())
      throw validation_error(where + "tokenizer.ggml.scores has " + std::to_string(t.scores.size()) +
                             " entries for " + std::to_string(t.tokens.size()) + " tokens");
  }
  const auto token_id = [&](std::string_view key) -> std::optional<std::uint32_t> {
    if (!file.contains(key)) return std::nullopt;
    const auto id = file.get_uint(key);
    if (id >= t.tokens.size())
      throw validation_error(where + "metadata key '" + std::string(key) + "' is " + std::to_string(id) +
                             ", beyond the " + std::to_string(t.tokens.size()) + " tokens");
    return static_cast<std::uint32_t>(id);
  };
  t.bos_token_id = token_id("tokenizer.ggml.bos_token_id");
  t.eos_token_id = token_id("tokenizer.ggml.eos_token_id");
  t.unknown_token_id = token_id("tokenizer.ggml.unknown_token_id");
  t.padding_token_id = token_id("tokenizer.ggml.padding_token_id");
  if (file.contains("tokenizer.ggml.add_bos_token")) t.add_bos_token = file.get_bool("tokenizer.ggml.add_bos_token");
  if (file.contains("tokenizer.ggml.add_eos_token")) t.add_eos_token = file.get_bool("tokenizer.ggml.add_eos_token");
  if (file.contains("tokenizer.chat_template")) t.chat_template = file.get_string("tokenizer.chat_template");
  return t;
}

}  // namespace cai
