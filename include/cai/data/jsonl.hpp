/// @file data/jsonl.hpp
/// JSON Lines on disk: every arrow of the Constitutional AI pipeline is a JSONL file that can be
/// inspected, resumed from and fed from outside. This header reads JSONL with errors that name the file
/// and line, appends records durably (one flushed line per record), and recovers a file that a killed
/// run left with a truncated last line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "cai/detail/json_text.hpp"
#include "cai/error.hpp"

namespace cai {


/// Calls `fn(record, line_number)` for every non-blank line of the JSONL file `path`.
/// @throws io_error when the file cannot be opened; parse_error naming the line for a line that is not
///         JSON; whatever `fn` throws (a validation_error from `fn` is re-thrown with the file and line).
inline void for_each_jsonl(const std::filesystem::path& path,
                           const std::function<void(const nlohmann::json&, std::size_t)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path.string(), "cannot open for reading");
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record = detail::parse_json_text(line, path.string(), number);
    try {
      fn(record, number);
    } catch (const validation_error& e) {
      throw parse_error(path.string(), number, 0, e.what());
    }
  }
}

/// Appends JSON records to a file, one line each, flushed after every record so that a killed run loses
/// at most the line it was writing.
class jsonl_writer {
 public:
  /// Opens `path` for appending (creating it and its parent folders).
  /// @throws io_error when the file cannot be opened.
  explicit jsonl_writer(const std::filesystem::path& path) : path_(path) {
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
    }
    out_.open(path, std::ios::binary | std::ios::app);
    if (!out_) throw io_error(path.string(), "cannot open for appending");
  }

  /// Writes `record` as one line and flushes it.
  void write(const nlohmann::json& record) {
    out_ << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out_.flush();
    if (!out_) throw io_error(path_.string(), "write failed (disk full?)");
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

/// What `recover_jsonl` found in an existing output file.
struct jsonl_recovery {
  std::size_t records = 0;          ///< complete records kept
  bool truncated_tail = false;      ///< a partial last line was cut off (it will be redone)
};

/// Prepares an existing JSONL output for appending after a killed run: every complete line is passed to
/// `fn(record, line_number)`; a last line that has no newline or is not valid JSON is removed from the
/// file. A malformed line anywhere else is an error, since dropping it would lose data.
/// A missing file is an empty result.
/// @throws parse_error naming the line of a malformed line that is not the last one.
inline jsonl_recovery recover_jsonl(const std::filesystem::path& path,
                                    const std::function<void(const nlohmann::json&, std::size_t)>& fn) {
  jsonl_recovery result;
  if (!std::filesystem::exists(path)) return result;
  std::string text;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(path.string(), "cannot open for reading");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::size_t pos = 0, number = 0, good_end = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    ++number;
    const bool complete = nl != std::string::npos;
    std::string_view line(text.data() + pos, (complete ? nl : text.size()) - pos);
    const std::size_t next = complete ? nl + 1 : text.size();
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      if (complete) good_end = next;
      pos = next;
      continue;
    }
    nlohmann::json record;
    bool ok = complete;
    if (ok) {
      try {
        record = nlohmann::json::parse(line.begin(), line.end());
      } catch (const nlohmann::json::exception&) {  // a syntax error or a number overflow
        ok = false;
      }
    }
    if (!ok) {
      const bool last = text.find_first_not_of(" \t\r\n", next) == std::string::npos;
      if (!last)
        (void)detail::parse_json_text(line, path.string(), number);  // throws with line and column
      result.truncated_tail = true;
      break;
    }
    try {
      fn(record, number);
    } catch (const validation_error& e) {
      throw parse_error(path.string(), number, 0, e.what());
    }
    ++result.records;
    good_end = next;
    pos = next;
  }
  if (good_end < text.size()) std::filesystem::resize_file(path, good_end);
  return result;
}

}  // namespace cai
