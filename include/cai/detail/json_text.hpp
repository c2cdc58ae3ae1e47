/// @file detail/json_text.hpp
/// Parsing JSON text with errors that say where: every reader of JSON in cai (constitutions, JSONL,
/// configs, shard indexes, tokenizer files) goes through `parse_json_text`, so a syntax error or a number
/// too large for any JSON number type becomes a `cai::parse_error` with the file, line and column.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"

namespace cai::detail {

/// 1-based line and column (in bytes) of the byte at `offset` in `text`; past the end, of the end.
inline std::pair<std::size_t, std::size_t> line_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  const std::string_view before = text.substr(0, offset);
  const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const std::size_t last_newline = before.rfind('\n');
  const std::size_t line_start = last_newline == std::string_view::npos ? 0 : last_newline + 1;
  return {line, offset - line_start + 1};
}

/// Parses one JSON document. A syntax error becomes a parse_error naming `file` and the line and column
/// (counted from `first_line`, for a document that is one line of a larger file); a number overflow,
/// which nlohmann reports without a position, is located by finding the literal in the text.
/// @tparam Json nlohmann::json or nlohmann::ordered_json.
template <class Json = nlohmann::json>
Json parse_json_text(std::string_view text, std::string_view file, std::size_t first_line = 1) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's `byte` counts the characters read, the offending one included.
    const auto [line, column] = line_column(text, e.byte == 0 ? 0 : e.byte - 1);
    std::string what = e.what();
    // Drop nlohmann's own "[json.exception.parse_error.101] parse error at line L, column C: ".
    if (auto col = what.find("column "); col != std::string::npos)
      if (auto colon = what.find(": ", col); colon != std::string::npos) what = what.substr(colon + 2);
    throw parse_error(std::string(file), first_line + line - 1, column, "invalid JSON: " + what);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    if (auto bracket = what.find("] "); bracket != std::string::npos) what = what.substr(bracket + 2);
    std::size_t line = 0, column = 0;
    if (auto open = what.find('\''); open != std::string::npos)
      if (auto close = what.find('\'', open + 1); close != std::string::npos)
        if (auto at = text.find(std::string_view(what).substr(open + 1, close - open - 1)); at != std::string_view::npos)
          std::tie(line, column) = line_column(text, at);
    throw parse_error(std::string(file), line == 0 ? 0 : first_line + line - 1, column, "invalid JSON: " + what);
  }
}

}  // namespace cai::detail
