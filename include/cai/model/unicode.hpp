/// @file model/unicode.hpp
/// The Unicode pieces that byte-level BPE tokenizers need, written by hand: UTF-8 decoding that never
/// fails (a byte that does not start a valid sequence is a one-byte "other" character, so any byte
/// string can be split and round-trips), the character classes \p{L}, \p{N} and \s (range tables
/// generated from Python's unicodedata, see detail/unicode_tables.hpp), GPT-2's byte-to-character map
/// (Radford et al. 2019) and the pre-tokenizers that cut text into words before BPE: GPT-2's split
/// pattern, the Llama-3 pattern and SmolLM's (single digits, then GPT-2's pattern). They reproduce the
/// regular expressions that Hugging Face tokenizers and llama.cpp run, without a regex engine.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cai/model/detail/unicode_tables.hpp"

namespace cai {

/// The class of one character, as the pre-tokenizer patterns see it.
enum class char_class : std::uint8_t {
  letter,  ///< \p{L}
  number,  ///< \p{N}
  space,   ///< \s
  other,   ///< everything else, including bytes that are not valid UTF-8
};

/// The pre-tokenizer patterns that cai implements.
enum class pre_tokenizer_kind : std::uint8_t {
  gpt2,    ///< 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  smollm,  ///< every \p{N} alone (HF Digits(individual_digits)), then gpt2 on the rest (llama.cpp "smollm",
           ///< "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva")
  llama3,  ///< (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
           ///< \s*[\r\n]+|\s+(?!\S)|\s+ (llama.cpp "llama-bpe")
};

/// One decoded character: its code point (0xFFFFFFFF for an invalid byte) and its length in bytes.
struct decoded_char {
  std::uint32_t code_point;
  std::uint32_t size;
};

/// Marks a byte that does not start a valid UTF-8 sequence.
inline constexpr std::uint32_t invalid_code_point = 0xFFFFFFFFu;

/// Decodes the character at `text[pos]`, @pre pos < text.size(). Overlong forms, surrogates, code
/// points above U+10FFFF and truncated sequences give {invalid_code_point, 1}.
[[nodiscard]] inline decoded_char decode_utf8(std::string_view text, std::size_t pos) noexcept {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) return {b0, 1};
  const std::size_t left = text.size() - pos;
  auto cont = [&](std::size_t k) { return (static_cast<unsigned char>(text[pos + k]) & 0xC0) == 0x80; };
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(text[pos + k]) & 0x3F); };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (left >= 2 && cont(1)) return {((b0 & 0x1Fu) << 6) | byte(1), 2};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left >= 3 && cont(1) && cont(2)) {
      const std::uint32_t cp = ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left >= 4 && cont(1) && cont(2) && cont(3)) {
      const std::uint32_t cp = ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
    }
  }
  return {invalid_code_point, 1};
}

/// Appends the UTF-8 encoding of `cp` (@pre a Unicode scalar value) to `out`.
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace detail {
template <std::size_t N>
[[nodiscard]] constexpr bool in_ranges(const code_point_range (&table)[N], std::uint32_t cp) noexcept {
  const auto* it = std::upper_bound(std::begin(table), std::end(table), cp,
                                    [](std::uint32_t c, const code_point_range& r) { return c < r.first; });
  return it != std::begin(table) && cp <= (it - 1)->last;
}

[[nodiscard]] constexpr std::array<char_class, 128> make_ascii_classes() noexcept {
  std::array<char_class, 128> out{};
  for (std::uint32_t c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) out[c] = char_class::letter;
    else if (c >= '0' && c <= '9') out[c] = char_class::number;
    else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) out[c] = char_class::space;
    else out[c] = char_class::other;
  }
  return out;
}
inline constexpr std::array<char_class, 128> ascii_classes = make_ascii_classes();
}  // namespace detail

/// The class of code point `cp` (invalid_code_point is `other`).
[[nodiscard]] inline char_class classify(std::uint32_t cp) noexcept {
  if (cp < 128) return detail::ascii_classes[cp];
  if (cp == invalid_code_point) return char_class::other;
  if (detail::in_ranges(detail::letter_ranges, cp)) return char_class::letter;
  if (detail::in_ranges(detail::number_ranges, cp)) return char_class::number;
  if (detail::in_ranges(detail::space_ranges, cp)) return char_class::space;
  return char_class::other;
}

/// GPT-2's reversible map from the 256 byte values to printable characters (`bytes_to_unicode` in
/// openai/gpt-2 encoder.py): printable Latin-1 bytes map to themselves, the others to U+0100 upwards.
[[nodiscard]] inline const std::array<std::uint32_t, 256>& byte_to_code_point() noexcept {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

/// The byte-level form of raw bytes: each byte replaced by its character from byte_to_code_point(),
/// UTF-8 encoded (the spelling of tokens in vocab.json / tokenizer.json).
[[nodiscard]] inline std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  const auto& map = byte_to_code_point();
  for (char c : bytes) append_utf8(out, map[static_cast<unsigned char>(c)]);
  return out;
}

/// The inverse of bytes_to_byte_level. Returns false (and leaves `out` partly written) when `text` holds
/// a character outside the 256 of the map.
[[nodiscard]] inline bool byte_level_to_bytes(std::string_view text, std::string& out) {
  static const std::array<std::int16_t, 324> inverse = [] {
    std::array<std::int16_t, 324> t{};
    t.fill(-1);
    const auto& map = byte_to_code_point();
    for (int b = 0; b < 256; ++b) t[map[static_cast<std::size_t>(b)]] = static_cast<std::int16_t>(b);
    return t;
  }();
  for (std::size_t i = 0; i < text.size();) {
    const decoded_char d = decode_utf8(text, i);
    if (d.code_point >= inverse.size() || inverse[d.code_point] < 0) return false;
    out.push_back(static_cast<char>(inverse[d.code_point]));
    i += d.size;
  }
  return true;
}

namespace detail {

/// Cursor over a byte string that knows the class of the character under it.
struct char_cursor {
  std::string_view text;
  [[nodiscard]] decoded_char at(std::size_t pos) const noexcept { return decode_utf8(text, pos); }
  [[nodiscard]] char_class class_at(std::size_t pos) const noexcept {
    const auto b = static_cast<unsigned char>(text[pos]);
    if (b < 128) return ascii_classes[b];
    return classify(decode_utf8(text, pos).code_point);
  }
  [[nodiscard]] std::size_t size_at(std::size_t pos) const noexcept {
    const auto b = static_cast<unsigned char>(text[pos]);
    return b < 128 ? 1 : decode_utf8(text, pos).size;
  }
  /// End of the run of characters of class `c` starting at `pos`.
  [[nodiscard]] std::size_t run(std::size_t pos, char_class c) const noexcept {
    while (pos < text.size() && class_at(pos) == c) pos += size_at(pos);
    return pos;
  }
  /// End of the run of characters that are none of letter, number, space.
  [[nodiscard]] std::size_t run_other(std::size_t pos) const noexcept { return run(pos, char_class::other); }
};

/// Length of a contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0; `fold` accepts upper case too.
[[nodiscard]] inline std::size_t contraction_at(std::string_view t, std::size_t pos, bool fold) noexcept {
  if (t[pos] != '\'' || pos + 1 >= t.size()) return 0;
  auto lower = [&](std::size_t k) -> char {
    const char c = pos + k < t.size() ? t[pos + k] : '\0';
    return fold && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  const char c1 = lower(1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  // Unicode case folding (Oniguruma's (?i)) also takes U+017F LATIN SMALL LETTER LONG S for 's'.
  if (fold && t.substr(pos + 1, 2) == "\xC5\xBF") return 3;
  const char c2 = lower(2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

/// End of `\s+(?!\S)|\s+` at `pos` (a space character): the whole run when it ends the text or is one
/// character long, else the run less its last character.
[[nodiscard]] inline std::size_t whitespace_match(const char_cursor& cur, std::size_t pos) noexcept {
  std::size_t end = pos, last = pos;
  while (end < cur.text.size() && cur.class_at(end) == char_class::space) {
    last = end;
    end += cur.size_at(end);
  }
  if (end == cur.text.size() || last == pos) return end;
  return last;
}

/// Calls `emit(piece)` for every match of GPT-2's pattern in `text` (the matches tile the text).
template <class Emit>
void split_gpt2(std::string_view text, Emit&& emit) {
  const char_cursor cur{text};
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = 0;
    if (const std::size_t c = contraction_at(text, pos, false)) {
      end = pos + c;
    } else {
      std::size_t start = pos;
      char_class cls = cur.class_at(pos);
      if (text[pos] == ' ' && pos + 1 < text.size()) {
        const char_class next = cur.class_at(pos + 1);
        if (next != char_class::space) {
          start = pos + 1;
          cls = next;
        }
      }
      if (cls == char_class::space) end = whitespace_match(cur, pos);
      else end = cur.run(start, cls);
    }
    emit(text.substr(pos, end - pos));
    pos = end;
  }
}

/// Calls `emit(piece)` for every match of the Llama-3 pattern in `text`.
template <class Emit>
void split_llama3(std::string_view text, Emit&& emit) {
  const char_cursor cur{text};
  const std::size_t n = text.size();
  std::size_t pos = 0;
  auto is_newline = [&](std::size_t p) { return text[p] == '\r' || text[p] == '\n'; };
  while (pos < n) {
    std::size_t end = 0;
    const char_class cls = cur.class_at(pos);
    if (const std::size_t c = contraction_at(text, pos, true)) {
      end = pos + c;
    } else if (cls == char_class::letter) {
      end = cur.run(pos, cls);
    } else if (cls != char_class::number && !is_newline(pos) && pos + cur.size_at(pos) < n &&
               cur.class_at(pos + cur.size_at(pos)) == char_class::letter) {
      // [^\r\n\p{L}\p{N}]?\p{L}+
      end = cur.run(pos + cur.size_at(pos), char_class::letter);
    } else if (cls == char_class::number) {
      end = pos;
      for (int k = 0; k < 3 && end < n && cur.class_at(end) == char_class::number; ++k) end += cur.size_at(end);
    } else if (cls == char_class::other || (text[pos] == ' ' && pos + 1 < n && cur.class_at(pos + 1) == char_class::other)) {
      //  ?[^\s\p{L}\p{N}]+[\r\n]*
      end = cur.run_other(cls == char_class::other ? pos : pos + 1);
      while (end < n && is_newline(end)) ++end;
    } else {
      // a space character: \s*[\r\n]+ | \s+(?!\S) | \s+
      std::size_t run_end = pos, last_newline = n;
      while (run_end < n && cur.class_at(run_end) == char_class::space) {
        if (is_newline(run_end)) last_newline = run_end;
        run_end += cur.size_at(run_end);
      }
      end = last_newline != n ? last_newline + 1 : whitespace_match(cur, pos);
    }
    emit(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace detail

/// Calls `emit(std::string_view piece)` for each word that pre-tokenizer `kind` cuts `text` into; the
/// pieces tile `text` in order. Works on any bytes: invalid UTF-8 bytes are characters of class other.
template <class Emit>
void pre_tokenize(std::string_view text, pre_tokenizer_kind kind, Emit&& emit) {
  switch (kind) {
    case pre_tokenizer_kind::gpt2:
      detail::split_gpt2(text, emit);
      return;
    case pre_tokenizer_kind::llama3:
      detail::split_llama3(text, emit);
      return;
    case pre_tokenizer_kind::smollm: {
      const detail::char_cursor cur{text};
      std::size_t start = 0, pos = 0;
      while (pos < text.size()) {
        const std::size_t size = cur.size_at(pos);
        if (cur.class_at(pos) == char_class::number) {
          if (pos > start) detail::split_gpt2(text.substr(start, pos - start), emit);
          emit(text.substr(pos, size));
          start = pos + size;
        }
        pos += size;
      }
      if (start < text.size()) detail::split_gpt2(text.substr(start), emit);
      return;
    }
  }
}

}  // namespace cai
