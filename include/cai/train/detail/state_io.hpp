/// @file train/detail/state_io.hpp
/// The binary format in which optimizer states (`sgd::state`, `adamw::state`) save themselves into
/// checkpoints, and its reader and writer. Private: use the states' `save` and `load` members.
///
/// Layout (every integer little-endian, every value the raw IEEE-754 bits, little-endian, so a round trip
/// is bit exact and a file moves between machines):
///
///     offset  size      field
///     0       8         magic "CAIOPTST"
///     8       4         u32 format version (1)
///     12      4         u32 length L of the optimizer kind
///     16      L         the kind, ASCII ("sgd", "adamw")
///             4         u32 bytes per value: 4 (float) or 8 (double)
///             8         u64 step count
///             8         u64 number of elements of the parameter
///             4         u32 number of buffers B (fixed by the kind: sgd 1, adamw 3)
///     then B times:
///             8         u64 length of the buffer: 0 (not allocated yet) or the number of elements
///             length x bytes per value: the values
///
/// A state reads exactly the bytes that it wrote, so the states of several parameters can follow one
/// another in one stream.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cai/error.hpp"

namespace cai::detail {

inline constexpr char optimizer_state_magic[8] = {'C', 'A', 'I', 'O', 'P', 'T', 'S', 'T'};
inline constexpr std::uint32_t optimizer_state_version = 1;

/// The fields of the format that precede the buffers.
struct optimizer_state_header {
  std::string kind;
  std::uint32_t value_bytes = 0;
  std::uint64_t steps = 0;
  std::uint64_t size = 0;
  std::uint32_t buffers = 0;
};

/// Byte-swaps `value` on a big-endian machine, so that the bytes are little-endian.
template <class U>
U optimizer_state_little_endian(U value) noexcept {
  static_assert(std::is_unsigned_v<U>);
  if constexpr (std::endian::native == std::endian::little) {
    return value;
  } else {
    U out = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) out = (out << 8) | ((value >> (8 * i)) & U(0xff));
    return out;
  }
}

/// Writes the format to a stream; `who` ("cai::adamw::state::save") opens every error message.
class optimizer_state_writer {
 public:
  optimizer_state_writer(std::ostream& out, std::string who) : out_(out), who_(std::move(who)) {}

  void header(const optimizer_state_header& h) {
    bytes(optimizer_state_magic, sizeof optimizer_state_magic);
    u32(optimizer_state_version);
    u32(static_cast<std::uint32_t>(h.kind.size()));
    bytes(h.kind.data(), h.kind.size());
    u32(h.value_bytes);
    u64(h.steps);
    u64(h.size);
    u32(h.buffers);
  }

  /// One buffer: its length, then its values.
  template <class T>
  void buffer(std::span<const T> values) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    u64(values.size());
    if constexpr (std::endian::native == std::endian::little) {
      bytes(values.data(), values.size() * sizeof(T));
    } else {
      using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
      for (const T v : values) {
        const U le = optimizer_state_little_endian(std::bit_cast<U>(v));
        bytes(&le, sizeof le);
      }
    }
  }

 private:
  void u32(std::uint32_t v) {
    v = optimizer_state_little_endian(v);
    bytes(&v, sizeof v);
  }
  void u64(std::uint64_t v) {
    v = optimizer_state_little_endian(v);
    bytes(&v, sizeof v);
  }
  void bytes(const void* data, std::size_t n) {
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    if (!out_)
      throw io_error("<stream>", who_ + ": writing the optimizer state failed after " + std::to_string(written_) +
                                     " bytes; check that the disk is not full and the file is writable");
    written_ += n;
  }

  std::ostream& out_;
  std::string who_;
  std::size_t written_ = 0;
};

/// Reads the format from a stream, checking each field; `source` (a file name, or "<stream>") and `who`
/// ("cai::adamw::state::load") open every error message.
class optimizer_state_reader {
 public:
  optimizer_state_reader(std::istream& in, std::string source, std::string who)
      : in_(in), source_(std::move(source)), who_(std::move(who)) {}

  /// Reads and checks the magic and version, then the rest of the header as it is.
  /// @throws cai::io_error if the stream ends early, is not an optimizer state or has another version.
  optimizer_state_header header() {
    char magic[sizeof optimizer_state_magic];
    bytes(magic, sizeof magic, "the magic tag");
    if (std::memcmp(magic, optimizer_state_magic, sizeof magic) != 0)
      throw io_error(source_, who_ + ": this is not a cai optimizer state (its first 8 bytes are not \"CAIOPTST\"); "
                                     "pass a stream written by the state's save()");
    const std::uint32_t version = u32("the format version");
    if (version != optimizer_state_version)
      throw io_error(source_, who_ + ": the optimizer state has format version " + std::to_string(version) +
                                  " but this cai reads version " + std::to_string(optimizer_state_version) +
                                  "; load it with the cai that wrote it");
    optimizer_state_header h;
    const std::uint32_t kind_size = u32("the length of the optimizer kind");
    if (kind_size > 64)
      throw io_error(source_, who_ + ": the optimizer kind is " + std::to_string(kind_size) +
                                  " bytes long (at most 64); the optimizer state is corrupt");
    h.kind.resize(kind_size);
    bytes(h.kind.data(), kind_size, "the optimizer kind");
    h.value_bytes = u32("the bytes per value");
    h.steps = u64("the step count");
    h.size = u64("the number of elements");
    h.buffers = u32("the number of buffers");
    return h;
  }

  /// Checks the header against the state that loads it: its kind, value type, size and buffer count.
  /// @throws cai::validation_error naming the field that differs.
  template <class T>
  void expect(const optimizer_state_header& h, std::string_view kind, std::uint64_t size,
              std::uint32_t buffers) const {
    if (h.kind != kind)
      throw validation_error(where() + "the stream holds the state of a cai::" + printable(h.kind) +
                             " optimizer, not of a cai::" + std::string(kind) +
                             "; load it into a cai::" + printable(h.kind) + " state");
    if (h.value_bytes != sizeof(T))
      throw validation_error(where() + "the stream holds " + value_name(h.value_bytes) +
                             " values but this state holds " + value_name(sizeof(T)) +
                             " values; load it into a state of a parameter of the same value type");
    if (h.size != size)
      throw validation_error(where() + "the stream holds the state of a parameter of " + std::to_string(h.size) +
                             " elements but this state is for " + std::to_string(size) +
                             " elements; load each parameter's state into the state of the same parameter");
    if (h.buffers != buffers)
      throw validation_error(where() + "the stream holds " + std::to_string(h.buffers) + " buffers but a cai::" +
                             std::string(kind) + " state has " + std::to_string(buffers) +
                             "; the optimizer state is corrupt");
  }

  /// Reads one buffer, whose length must be 0 or `size`.
  /// @throws cai::validation_error for another length; cai::io_error if the stream ends early.
  template <class T>
  std::vector<T> buffer(std::uint64_t size, const char* name) {
    const std::uint64_t length = u64(name);
    if (length != 0 && length != size)
      throw validation_error(where() + "the " + std::string(name) + " has " + std::to_string(length) +
                             " elements but the parameter has " + std::to_string(size) +
                             "; the optimizer state is corrupt");
    std::vector<T> values(static_cast<std::size_t>(length));
    bytes(values.data(), values.size() * sizeof(T), name);
    if constexpr (std::endian::native != std::endian::little) {
      using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
      for (T& v : values) v = std::bit_cast<T>(optimizer_state_little_endian(std::bit_cast<U>(v)));
    }
    return values;
  }

 private:
  std::string where() const { return source_ + ": " + who_ + ": "; }

  static std::string printable(const std::string& kind) {
    std::string out;
    for (const char c : kind) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
  }
  static std::string value_name(std::uint64_t bytes) {
    if (bytes == 4) return "float";
    if (bytes == 8) return "double";
    return std::to_string(bytes) + "-byte";
  }

  std::uint32_t u32(const char* what) {
    std::uint32_t v = 0;
    bytes(&v, sizeof v, what);
    return optimizer_state_little_endian(v);
  }
  std::uint64_t u64(const char* what) {
    std::uint64_t v = 0;
    bytes(&v, sizeof v, what);
    return optimizer_state_little_endian(v);
  }
  void bytes(void* data, std::size_t n, const char* what) {
    in_.read(static_cast<char*>(data), static_cast<std::streamsize>(n));
    const auto got = static_cast<std::size_t>(in_.gcount());
    if (got != n)
      throw io_error(source_, who_ + ": the stream ended after " + std::to_string(read_ + got) +
                                  " bytes, while reading " + what + " (" + std::to_string(got) + " of " +
                                  std::to_string(n) + " bytes); the checkpoint is truncated: save it again");
    read_ += n;
  }

  std::istream& in_;
  std::string source_;
  std::string who_;
  std::size_t read_ = 0;
};

}  // namespace cai::detail
