/// @file detail/mapped_file.hpp
/// A whole file mapped read-only into memory (POSIX `mmap`), or read into a buffer where `mmap` is not
/// available: what the safetensors and GGUF readers use, so that a model's tensors are read in place.
#pragma once

#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cai/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define CAI_HAS_MMAP 1
#else
#define CAI_HAS_MMAP 0
#endif

namespace cai::detail {

/// Reason text for an `errno` value.
inline std::string mapped_file_errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

/// A whole file mapped read-only into memory (POSIX `mmap`), or read into a buffer where `mmap` is not
/// available. Move-only; the mapping lives as long as the object.
class mapped_file {
 public:
  mapped_file() = default;
  /// Maps `path`; an `io_error` names the file when it cannot be opened, examined or mapped.
  explicit mapped_file(const std::filesystem::path& path) {
#if CAI_HAS_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw io_error(path.string(), "cannot open: " + mapped_file_errno_text(errno));
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw io_error(path.string(), "cannot examine: " + mapped_file_errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw io_error(path.string(), "not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw io_error(path.string(), "cannot map into memory: " + mapped_file_errno_text(err));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
#else
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path.string(), "cannot open");
    in.seekg(0, std::ios::end);
    buffer_.resize(static_cast<std::size_t>(in.tellg()));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(buffer_.data()), static_cast<std::streamsize>(buffer_.size()));
    if (!in) throw io_error(path.string(), "cannot read");
    data_ = buffer_.data();
    size_ = buffer_.size();
#endif
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& other) noexcept { swap(other); }
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      mapped_file gone(std::move(other));
      swap(gone);
    }
    return *this;
  }
  ~mapped_file() { release(); }

  /// The file's bytes: (size()).
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void swap(mapped_file& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
#if !CAI_HAS_MMAP
    std::swap(buffer_, other.buffer_);
#endif
  }
  void release() noexcept {
#if CAI_HAS_MMAP
    if (data_ != nullptr && size_ > 0) ::munmap(const_cast<std::byte*>(data_), size_);
#endif
    data_ = nullptr;
    size_ = 0;
  }

  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
#if !CAI_HAS_MMAP
  std::vector<std::byte> buffer_;
#endif
};

}  // namespace cai::detail
