/// @file data/gzip.hpp
/// Reading gzip-compressed text (zlib): the published preference and red-team data sets ship as
/// `.jsonl.gz`. A file that is not gzip is read as it is, so the same call reads both.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <zlib.h>

#include "cai/error.hpp"

namespace cai {

/// The whole decompressed content of `path` (plain files are returned unchanged).
/// @throws io_error when the file cannot be opened or its compressed stream is damaged.
[[nodiscard]] inline std::string read_gzip_text(const std::filesystem::path& path) {
  gzFile f = gzopen(path.string().c_str(), "rb");
  if (f == nullptr) throw io_error(path.string(), "cannot open for reading");
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = gzread(f, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      std::string what = gzerror(f, &code);
      gzclose(f);
      throw io_error(path.string(), "damaged gzip stream: " + what);
    }
    if (n == 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  int code = Z_OK;
  const std::string what = gzerror(f, &code);
  gzclose(f);
  if (code != Z_OK && code != Z_STREAM_END)  // e.g. Z_BUF_ERROR: the stream ends in the middle
    throw io_error(path.string(), "damaged gzip stream: " + what);
  return out;
}

/// Calls `fn(line, line_number)` for every line of the (possibly gzip-compressed) text file `path`.
inline void for_each_gzip_line(const std::filesystem::path& path,
                               const std::function<void(std::string_view, std::size_t)>& fn) {
  const std::string text = read_gzip_text(path);
  std::size_t pos = 0, number = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    fn(std::string_view(text).substr(pos, nl - pos), ++number);
    pos = nl + 1;
  }
}

}  // namespace cai
