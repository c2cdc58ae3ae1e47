/// @file model/safetensors.hpp
/// The safetensors format of Hugging Face (https://github.com/huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON header (an object mapping each tensor name to its
/// dtype, shape and `data_offsets` [begin, end) relative to the data section, plus an optional
/// `"__metadata__"` object of strings), then the data section, which the tensors cover exactly, in order,
/// without gaps or overlaps. This header reads such files memory-mapped (read-only, POSIX `mmap`, RAII)
/// and validates them fully before handing out a byte (every malformation is a `cai::error` naming the
/// file, the tensor or key, and what is wrong; no read ever leaves the mapping); converts F32, F16 and
/// BF16 tensors to float exactly (model/half.hpp); and writes F32 files the way the reference implementation does
/// (tensors sorted by name, compact JSON header padded with spaces to a multiple of 8 bytes), so that a
/// file we write is byte-identical to the one `safetensors.numpy.save` writes for the same tensors.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/detail/mapped_file.hpp"
#include "cai/error.hpp"
#include "cai/model/half.hpp"


namespace cai {

/// Element types of the safetensors format. Every dtype of the format opens (its bytes are reachable
/// through `safetensors_file::raw`); `read_f32` converts `f32`, `f16` and `bf16`.
enum class dtype : std::uint8_t {
  boolean,  ///< "BOOL", 1 byte
  u8,       ///< "U8"
  i8,       ///< "I8"
  f8_e4m3,  ///< "F8_E4M3"
  f8_e5m2,  ///< "F8_E5M2"
  i16,      ///< "I16"
  u16,      ///< "U16"
  f16,      ///< "F16", IEEE-754 binary16
  bf16,     ///< "BF16", the upper half of a binary32
  i32,      ///< "I32"
  u32,      ///< "U32"
  f32,      ///< "F32", IEEE-754 binary32
  i64,      ///< "I64"
  u64,      ///< "U64"
  f64,      ///< "F64"
};

namespace detail {
struct dtype_entry {
  dtype type;
  std::string_view name;
  std::size_t size;
};
inline constexpr dtype_entry dtype_table[] = {
    {dtype::boolean, "BOOL", 1}, {dtype::u8, "U8", 1},   {dtype::i8, "I8", 1},
    {dtype::f8_e4m3, "F8_E4M3", 1}, {dtype::f8_e5m2, "F8_E5M2", 1}, {dtype::i16, "I16", 2},
    {dtype::u16, "U16", 2},      {dtype::f16, "F16", 2}, {dtype::bf16, "BF16", 2},
    {dtype::i32, "I32", 4},      {dtype::u32, "U32", 4}, {dtype::f32, "F32", 4},
    {dtype::i64, "I64", 8},      {dtype::u64, "U64", 8}, {dtype::f64, "F64", 8},
};
}  // namespace detail

/// The name the safetensors header uses for `t` ("F32", "BF16", ...).
[[nodiscard]] constexpr std::string_view to_string(dtype t) noexcept {
  for (const auto& e : detail::dtype_table)
    if (e.type == t) return e.name;
  return "?";
}

/// The dtype whose header name is `name`, or nothing when the format has no such dtype.
[[nodiscard]] constexpr std::optional<dtype> dtype_from_string(std::string_view name) noexcept {
  for (const auto& e : detail::dtype_table)
    if (e.name == name) return e.type;
  return std::nullopt;
}

/// Bytes per element of `t`.
[[nodiscard]] constexpr std::size_t dtype_size(dtype t) noexcept {
  for (const auto& e : detail::dtype_table)
    if (e.type == t) return e.size;
  return 0;
}

/// One tensor of a safetensors file, as its header describes it.
struct tensor_info {
  std::string name;                 ///< the key in the header
  cai::dtype dtype = cai::dtype::f32;
  std::vector<std::int64_t> shape;  ///< every extent >= 0; empty for a scalar
  std::size_t begin = 0;            ///< first byte, relative to the start of the data section
  std::size_t end = 0;              ///< one past the last byte, relative to the data section

  /// Number of elements: the product of the extents (1 for a scalar).
  [[nodiscard]] std::size_t element_count() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
  }
  /// Bytes in the data section: `end - begin`.
  [[nodiscard]] std::size_t byte_size() const noexcept { return end - begin; }
};

/// "[2, 3]": a shape as messages write it.
[[nodiscard]] inline std::string shape_to_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// The largest header the reader accepts, in bytes: the reference implementation's limit (100 MB).
inline constexpr std::uint64_t safetensors_max_header_size = 100'000'000;

namespace detail {

/// Little-endian load of an unsigned integer from possibly unaligned bytes.
template <class UInt>
UInt load_le(const std::byte* p) noexcept {
  UInt v = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i)
    v = static_cast<UInt>(v | (static_cast<UInt>(std::to_integer<unsigned>(p[i])) << (8 * i)));
  return v;
}

/// Reason text for the current `errno`.
inline std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }


/// A non-negative integer from a JSON value, or nothing (negative, fractional, not a number).
inline std::optional<std::uint64_t> json_non_negative_integer(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i >= 0) return static_cast<std::uint64_t>(i);
  }
  return std::nullopt;
}

/// A short description of a JSON value's type for messages ("a string", "a negative number", ...).
inline std::string json_kind(const nlohmann::json& v) {
  if (v.is_number_float()) return "the non-integer number " + v.dump();
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0)
    return "the negative number " + v.dump();
  return std::string("a ") + v.type_name() + " (" + v.dump() + ")";
}

}  // namespace detail

/// A safetensors file opened for reading: the header is parsed and validated at `open`, the data stay
/// in the read-only mapping and are converted on demand. Move-only.
///
/// Validation (each failure throws, and the message names the file and the tensor or key):
/// 1. the file holds at least the 8-byte header length (`io_error`);
/// 2. the header length is at most `safetensors_max_header_size` and fits in the file (`io_error`);
/// 3. the header is JSON (`parse_error`) and an object (`validation_error`);
/// 4. `"__metadata__"`, when present, is an object of strings (`validation_error`);
/// 5. each tensor entry is an object with a known `dtype` string, a `shape` of non-negative integers and
///    `data_offsets` of two non-negative integers with begin <= end <= data size (`validation_error`);
/// 6. each tensor's byte count equals element count x dtype size (`validation_error`);
/// 7. the tensors, sorted by offset, cover the data section exactly: no gap, no overlap, nothing left
///    over at the end (`validation_error`).
class safetensors_file {
 public:
  /// Opens, maps and validates `path`.
  /// @throws io_error, parse_error or validation_error as listed in the class comment.
  [[nodiscard]] static safetensors_file open(const std::filesystem::path& path) {
    safetensors_file f;
    f.path_ = path;
    f.map_ = detail::mapped_file(path);
    f.parse_header();
    return f;
  }

  /// The file this object reads.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// Tensor names, sorted (as `safetensors.safe_open(...).keys()` lists them).
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(index_.size());
    for (const auto& [name, i] : index_) out.push_back(name);
    return out;
  }

  /// The tensors in the order of their data (by offset).
  [[nodiscard]] const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }

  /// Number of tensors.
  [[nodiscard]] std::size_t size() const noexcept { return tensors_.size(); }

  /// Whether the file holds a tensor called `name`.
  [[nodiscard]] bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }

  /// The header entry of tensor `name`.
  /// @throws validation_error naming the file and the tensor when there is none.
  [[nodiscard]] const tensor_info& info(std::string_view name) const {
    auto it = index_.find(name);
    if (it == index_.end())
      throw validation_error(path_.string() + ": no tensor named '" + std::string(name) + "' (the file holds " +
                             std::to_string(tensors_.size()) + " tensors)");
    return tensors_[it->second];
  }

  /// The bytes of tensor `name` inside the mapping: (info(name).byte_size()). Valid while this object lives.
  [[nodiscard]] std::span<const std::byte> raw(std::string_view name) const {
    const auto& t = info(name);
    return map_.bytes().subspan(data_start_ + t.begin, t.byte_size());
  }

  /// Converts tensor `name` (F32, F16 or BF16) to floats, exactly, into `out`: (info(name).element_count()).
  /// @throws validation_error when the dtype is not a float type of 32 bits or less, or `out` has the
  /// wrong size.
  void read_f32(std::string_view name, std::span<float> out) const {
    const auto& t = info(name);
    const std::size_t n = t.element_count();
    if (out.size() != n)
      throw validation_error(path_.string() + ": tensor '" + t.name + "' has " + std::to_string(n) +
                             " elements but the output buffer holds " + std::to_string(out.size()));
    const std::byte* p = map_.bytes().data() + data_start_ + t.begin;
    switch (t.dtype) {
      case dtype::f32:
        if constexpr (std::endian::native == std::endian::little) {
          if (n != 0) std::memcpy(out.data(), p, 4 * n);  // the data may be unaligned: copy, never cast
        } else {
          for (std::size_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(detail::load_le<std::uint32_t>(p + 4 * i));
        }
        break;
      case dtype::f16:
        for (std::size_t i = 0; i < n; ++i) out[i] = fp16_bits_to_float(detail::load_le<std::uint16_t>(p + 2 * i));
        break;
      case dtype::bf16:
        for (std::size_t i = 0; i < n; ++i) out[i] = bf16_bits_to_float(detail::load_le<std::uint16_t>(p + 2 * i));
        break;
      default:
        throw validation_error(path_.string() + ": tensor '" + t.name + "' has dtype " +
                               std::string(to_string(t.dtype)) +
                               "; read_f32 converts F32, F16 and BF16 only (use raw() for the bytes)");
    }
  }

  /// Tensor `name` (F32, F16 or BF16) converted to floats exactly: (info(name).element_count()), row-major.
  [[nodiscard]] std::vector<float> read_f32(std::string_view name) const {
    std::vector<float> out(info(name).element_count());
    read_f32(name, out);
    return out;
  }

  /// The header's `"__metadata__"` (empty when absent).
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// Offset of the data section from the start of the file (8 + header length).
  [[nodiscard]] std::size_t data_offset() const noexcept { return data_start_; }

 private:
  safetensors_file() = default;

  [[noreturn]] void fail(const std::string& what) const { throw validation_error(path_.string() + ": " + what); }

  void parse_header() {
    const auto bytes = map_.bytes();
    const std::string file = path_.string();
    if (bytes.size() < 8)
      throw io_error(file, "truncated: " + std::to_string(bytes.size()) +
                               " bytes, but a safetensors file starts with an 8-byte header length");
    const std::uint64_t header_size = detail::load_le<std::uint64_t>(bytes.data());
    if (header_size > safetensors_max_header_size)
      throw io_error(file, "header length " + std::to_string(header_size) + " exceeds the limit of " +
                               std::to_string(safetensors_max_header_size) +
                               " bytes; the file is corrupt or not a safetensors file");
    if (header_size > bytes.size() - 8)
      throw io_error(file, "truncated: the header length is " + std::to_string(header_size) + " bytes but only " +
                               std::to_string(bytes.size() - 8) + " bytes follow it");
    data_start_ = 8 + static_cast<std::size_t>(header_size);
    const std::size_t data_size = bytes.size() - data_start_;

    const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text, text + header_size);
    } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number overflow
      throw parse_error(file, 0, 0,
                        "the safetensors header (" + std::to_string(header_size) + " bytes from offset 8) is not "
                        "valid JSON: " + e.what());
    }
    if (!header.is_object())
      fail(std::string("the safetensors header must be a JSON object, but it is ") + header.type_name());

    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        read_metadata(value);
        continue;
      }
      tensors_.push_back(read_entry(key, value, data_size));
    }

    std::sort(tensors_.begin(), tensors_.end(), [](const tensor_info& a, const tensor_info& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::size_t covered = 0;  // the data section is covered, in order, up to here
    const tensor_info* previous = nullptr;
    for (const auto& t : tensors_) {
      if (t.begin < covered)
        fail("tensor '" + t.name + "' (data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
             "]) overlaps tensor '" + previous->name + "' (data_offsets [" + std::to_string(previous->begin) + ", " +
             std::to_string(previous->end) + "])");
      if (t.begin > covered)
        fail("bytes [" + std::to_string(covered) + ", " + std::to_string(t.begin) +
             ") of the data section belong to no tensor (a gap before tensor '" + t.name +
             "'); the format requires the tensors to cover the data section in order");
      covered = t.end;
      previous = &t;
    }
    if (covered != data_size)
      fail("bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
           ") at the end of the data section belong to no tensor; the file has trailing bytes or a tensor is "
           "missing from the header");

    for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  }

  void read_metadata(const nlohmann::json& value) {
    if (value.is_null()) return;
    if (!value.is_object()) fail("\"__metadata__\" must be an object of strings, but it is " + detail::json_kind(value));
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        fail("\"__metadata__\" key '" + k + "' must be a string, but it is " + detail::json_kind(v));
      metadata_.emplace(k, v.get<std::string>());
    }
  }

  tensor_info read_entry(const std::string& name, const nlohmann::json& value, std::size_t data_size) const {
    const std::string where = "tensor '" + name + "'";
    if (!value.is_object()) fail(where + ": the header entry must be an object, but it is " + detail::json_kind(value));
    tensor_info t;
    t.name = name;

    auto dt = value.find("dtype");
    if (dt == value.end()) fail(where + ": missing field 'dtype'");
    if (!dt->is_string()) fail(where + ": field 'dtype' must be a string, but it is " + detail::json_kind(*dt));
    const auto parsed = dtype_from_string(dt->get_ref<const std::string&>());
    if (!parsed)
      fail(where + ": unknown dtype \"" + dt->get<std::string>() +
           "\" (known: BOOL, U8, I8, F8_E4M3, F8_E5M2, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64)");
    t.dtype = *parsed;

    auto sh = value.find("shape");
    if (sh == value.end()) fail(where + ": missing field 'shape'");
    if (!sh->is_array()) fail(where + ": field 'shape' must be an array, but it is " + detail::json_kind(*sh));
    std::size_t elements = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < sh->size(); ++i) {
      const auto d = detail::json_non_negative_integer((*sh)[i]);
      if (!d || *d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(where + ": shape[" + std::to_string(i) + "] must be a non-negative integer, but it is " +
             detail::json_kind((*sh)[i]));
      t.shape.push_back(static_cast<std::int64_t>(*d));
      if (*d != 0 && elements > std::numeric_limits<std::size_t>::max() / *d) overflow = true;
      elements *= static_cast<std::size_t>(*d);
    }

    auto off = value.find("data_offsets");
    if (off == value.end()) fail(where + ": missing field 'data_offsets'");
    if (!off->is_array() || off->size() != 2)
      fail(where + ": field 'data_offsets' must be an array of two integers, but it is " + detail::json_kind(*off));
    const auto b = detail::json_non_negative_integer((*off)[0]);
    const auto e = detail::json_non_negative_integer((*off)[1]);
    if (!b || !e)
      fail(where + ": field 'data_offsets' must hold two non-negative integers, but it is " + off->dump());
    if (*b > *e)
      fail(where + ": data_offsets " + off->dump() + " are reversed (begin after end)");
    if (*e > data_size)
      fail(where + ": data_offsets " + off->dump() + " lie outside the data section, which has " +
           std::to_string(data_size) + " bytes");
    t.begin = static_cast<std::size_t>(*b);
    t.end = static_cast<std::size_t>(*e);

    const std::size_t width = dtype_size(t.dtype);
    if (overflow || elements > std::numeric_limits<std::size_t>::max() / width ||
        elements * width != t.byte_size())
      fail(where + ": data_offsets " + off->dump() + " span " + std::to_string(t.byte_size()) + " bytes, but " +
           std::string(to_string(t.dtype)) + " x " + shape_to_string(t.shape) + " needs " +
           (overflow ? std::string("more than the address space") : std::to_string(elements * width)) + " bytes");
    return t;
  }

  std::filesystem::path path_;
  detail::mapped_file map_;
  std::size_t data_start_ = 0;
  std::vector<tensor_info> tensors_;                          // by offset
  std::map<std::string, std::size_t, std::less<>> index_;     // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

/// A float tensor to write: a name, a shape and its elements, row-major: (product of shape). The
/// elements are not copied; they must outlive the call that writes them.
struct named_tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::span<const float> data;
};

/// The bytes of an F32 safetensors file holding `tensors` and `metadata`, laid out as the reference
/// implementation lays them out: `"__metadata__"` first (when not empty), tensors sorted by name, compact
/// JSON padded with spaces to a multiple of 8 bytes, data little-endian.
/// @throws validation_error naming the tensor when a name is empty, repeated or "__metadata__", an extent
/// is negative, or the element count disagrees with the shape.
[[nodiscard]] inline std::vector<std::byte> serialize_safetensors(std::span<const named_tensor> tensors,
                                                                  const std::map<std::string, std::string>& metadata = {}) {
  std::vector<const named_tensor*> order;
  order.reserve(tensors.size());
  for (const auto& t : tensors) {
    if (t.name.empty()) throw validation_error("save_safetensors: a tensor has an empty name");
    if (t.name == "__metadata__")
      throw validation_error("save_safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    std::size_t n = 1;
    for (auto d : t.shape) {
      if (d < 0)
        throw validation_error("save_safetensors: tensor '" + t.name + "' has a negative extent in shape " +
                               shape_to_string(t.shape));
      n *= static_cast<std::size_t>(d);
    }
    if (n != t.data.size())
      throw validation_error("save_safetensors: tensor '" + t.name + "' has shape " + shape_to_string(t.shape) +
                             " (" + std::to_string(n) + " elements) but " + std::to_string(t.data.size()) +
                             " values");
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const named_tensor* a, const named_tensor* b) { return a->name < b->name; });
  for (std::size_t i = 1; i < order.size(); ++i)
    if (order[i]->name == order[i - 1]->name)
      throw validation_error("save_safetensors: two tensors are named '" + order[i]->name + "'");

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::size_t offset = 0;
  for (const auto* t : order) {
    const std::size_t bytes = t->data.size() * 4;
    header[t->name] = nlohmann::ordered_json{
        {"dtype", "F32"}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw validation_error(std::string("save_safetensors: a tensor name or metadata string is not valid UTF-8 (") +
                           e.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<std::byte> out(8 + text.size() + offset);
  const std::uint64_t n = text.size();
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xFFu);
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::byte* p = out.data() + 8 + text.size();
  for (const auto* t : order)
    for (float v : t->data) {
      const auto bits = std::bit_cast<std::uint32_t>(v);
      for (std::size_t i = 0; i < 4; ++i) *p++ = static_cast<std::byte>((bits >> (8 * i)) & 0xFFu);
    }
  return out;
}

/// Writes `tensors` as an F32 safetensors file at `path` (see `serialize_safetensors` for the layout).
/// The file is written beside `path` under a temporary name and renamed into place, so a reader never
/// sees half a file.
/// @throws validation_error as `serialize_safetensors` does; io_error naming the file when it cannot be
/// written.
inline void save_safetensors(const std::filesystem::path& path, std::span<const named_tensor> tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  const auto bytes = serialize_safetensors(tensors, metadata);
  auto partial = path;
  partial += ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) throw io_error(partial.string(), "cannot open for writing: " + detail::errno_text(errno));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw io_error(partial.string(), "cannot write: " + detail::errno_text(errno));
  }
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (ec) {
    std::filesystem::remove(partial, ec);
    throw io_error(path.string(), "cannot move the written file into place: " + ec.message());
  }
}

/// `save_safetensors` for a braced list or a vector of tensors.
inline void save_safetensors(const std::filesystem::path& path, const std::vector<named_tensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  save_safetensors(path, std::span<const named_tensor>(tensors), metadata);
}

}  // namespace cai
