/// @file constitution/io.hpp
/// Reading and writing constitutions: cai's own JSON schema (load, parse, save), and importers for the
/// formats in which constitutions circulate today, read unchanged:
///  - llm-swarm's (Hugging Face 2023): `{"constitutions": [{"critic", "revision"}], "system_chat":
///    [[six role/content turns], ...]}`, whose chats become few-shot `critique_example`s;
///  - the critique-revision instructions of Bai et al. 2022 (arXiv:2212.08073), as the authors publish
///    them: `{"harmful0": {"prompt": ["\n\nCritiqueRequest: ...\n\nCritique:"], "edit_request":
///    "\n\nRevisionRequest: ...\n\nRevision:"}, ...}`;
///  - the authors' feedback principles: a JSON list of comparison questions.
/// `load_constitution` detects the format. Importers strip the transcript markers ("CritiqueRequest:",
/// "Critique:", "RevisionRequest:", "Revision:"), so stored texts are bare requests. JSON syntax errors
/// become `cai::parse_error` with file, line and column; broken rules become `cai::validation_error`
/// naming the principle and field (constitution/validate.hpp); unknown fields are warnings, sent to
/// `load_options::on_warning`.
///
/// cai's schema (every field but "principles" and a principle's "name" may be left out):
/// ```json
/// {"name": "...", "description": "...",
///  "principles": [{"name": "...", "critique_request": "...", "revision_request": "...",
///                  "comparison_question": "...", "tags": ["harm"], "weight": 1.0}],
///  "few_shot": [{"context": [{"role": "user", "content": "..."}], "response": "...",
///                "critique_request": "...", "critique": "...", "revision_request": "...",
///                "revision": "..."}]}
/// ```
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/constitution/constitution.hpp"
#include "cai/constitution/principle.hpp"
#include "cai/constitution/validate.hpp"
#include "cai/detail/json_text.hpp"
#include "cai/error.hpp"
#include "cai/text/types.hpp"

namespace cai {

/// The file formats that `load_constitution` knows.
enum class constitution_format : std::uint8_t {
  cai,              ///< cai's own schema: an object with "principles"
  llm_swarm,        ///< llm-swarm: an object with "constitutions" (and "system_chat")
  paper_critiques,  ///< Bai et al.'s critique-revision instructions: {"harmful0": {"prompt", "edit_request"}}
  paper_feedback,   ///< Bai et al.'s feedback principles: a list of strings
};

/// The name of a format: "cai", "llm-swarm", "paper-critiques", "paper-feedback".
[[nodiscard]] constexpr std::string_view to_string(constitution_format f) noexcept {
  switch (f) {
    case constitution_format::cai: return "cai";
    case constitution_format::llm_swarm: return "llm-swarm";
    case constitution_format::paper_critiques: return "paper-critiques";
    case constitution_format::paper_feedback: return "paper-feedback";
  }
  return "cai";
}

/// How to load a constitution.
struct load_options {
  /// Receives warnings (unknown fields, ignored entries, leftover transcript markers); the default
  /// writes "cai: warning: ..." to std::cerr; an empty function drops them.
  warning_sink on_warning = warn_to_stderr;
  /// Read this format instead of detecting it.
  std::optional<constitution_format> format;
  /// Check the result with `validate_constitution` (on by default).
  bool validate = true;
};

/// Removes the transcript markers of the paper's prompts from a request: surrounding whitespace, a
/// leading "CritiqueRequest:" or "RevisionRequest:", a trailing "Critique:" or "Revision:".
/// "\n\nCritiqueRequest: Identify ...\n\nCritique:" becomes "Identify ...".
/// @param text a request as a transcript holds it.
[[nodiscard]] inline std::string strip_transcript_markers(std::string_view text) {
  const auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  for (std::string_view m : detail::request_markers)
    if (text.starts_with(m)) {
      text = trim(text.substr(m.size()));
      break;
    }
  for (std::string_view m : detail::answer_markers)
    if (text.ends_with(m)) {
      text = trim(text.substr(0, text.size() - m.size()));
      break;
    }
  return std::string(text);
}

namespace detail {

using ojson = nlohmann::ordered_json;

/// Levenshtein distance, for "did you mean" hints on unknown fields.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// Sends one warning per key of `object` that is not in `known`, with the closest known key as a hint.
/// `at` is the location prefix ("file.json: principle 2 ('x'): ").
inline void warn_unknown_fields(const ojson& object, std::span<const std::string_view> known,
                                const std::string& at, const warning_sink& on_warning) {
  if (!on_warning || !object.is_object()) return;
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = at + "unknown field '" + key + "' is ignored";
    std::string_view best;
    std::size_t best_distance = 3;  // suggest only close spellings
    for (std::string_view k : known)
      if (std::size_t d = edit_distance(key, k); d < best_distance) best = k, best_distance = d;
    if (!best.empty()) message += " (did you mean '" + std::string(best) + "'?)";
    on_warning(message);
  }
}

/// The string field `field` of `object`, or nothing when it is absent.
/// @throws validation_error when it is present but not a string, or present and empty while
///         `allow_empty` is false.
inline std::optional<std::string> string_field(const ojson& object, const char* field, const std::string& at,
                                               bool allow_empty = false) {
  auto it = object.find(field);
  if (it == object.end()) return std::nullopt;
  if (!it->is_string())
    throw validation_error(at + "field '" + field + "' must be a string, got " + it->type_name());
  std::string value = it->get<std::string>();
  if (value.empty() && !allow_empty)
    throw validation_error(at + "field '" + field + "' is empty; write the text or remove the field");
  return value;
}

/// The string field `field` of `object`, which must be present and non-empty.
inline std::string required_string(const ojson& object, const char* field, const std::string& at) {
  auto value = string_field(object, field, at);
  if (!value) throw validation_error(at + "field '" + field + "' is missing");
  return *std::move(value);
}

/// "critiques" for "data/critiques.json"; `fallback` for an empty or "<...>" source.
inline std::string source_stem(std::string_view source, std::string_view fallback) {
  if (source.empty() || source.front() == '<') return std::string(fallback);
  if (auto slash = source.find_last_of("/\\"); slash != std::string_view::npos) source.remove_prefix(slash + 1);
  if (auto dot = source.rfind('.'); dot != std::string_view::npos && dot > 0) source = source.substr(0, dot);
  return source.empty() ? std::string(fallback) : std::string(source);
}

/// "<input>" for an empty source.
inline std::string source_label(std::string_view source) {
  return source.empty() ? std::string("<input>") : std::string(source);
}

/// A list of {"role", "content"} turns.
inline dialogue dialogue_from_json(const ojson& turns, const std::string& at, const warning_sink& on_warning) {
  if (!turns.is_array())
    throw validation_error(at + "expected a list of {\"role\", \"content\"} turns, got " + turns.type_name());
  static constexpr std::string_view known[] = {"role", "content"};
  dialogue out;
  for (std::size_t t = 0; t < turns.size(); ++t) {
    const std::string turn_at = at + "turn " + std::to_string(t) + ": ";
    const ojson& turn = turns[t];
    if (!turn.is_object())
      throw validation_error(turn_at + "expected a {\"role\", \"content\"} object, got " + turn.type_name());
    warn_unknown_fields(turn, known, turn_at, on_warning);
    message m;
    try {
      m.role = role_from_string(required_string(turn, "role", turn_at));
    } catch (const validation_error& e) {
      if (std::string_view(e.what()).starts_with(turn_at)) throw;
      throw validation_error(turn_at + e.what());
    }
    if (!turn.contains("content")) throw validation_error(turn_at + "field 'content' is missing");
    m.content = string_field(turn, "content", turn_at, true).value_or("");
    out.push_back(std::move(m));
  }
  return out;
}

/// A few-shot example in cai's schema.
inline critique_example example_from_json(const ojson& j, const std::string& at, const warning_sink& on_warning) {
  if (!j.is_object()) throw validation_error(at + "expected an object, got " + j.type_name());
  static constexpr std::string_view known[] = {"context",  "response",         "critique_request",
                                               "critique", "revision_request", "revision"};
  warn_unknown_fields(j, known, at, on_warning);
  critique_example x;
  auto context = j.find("context");
  if (context == j.end()) throw validation_error(at + "field 'context' is missing");
  x.context = dialogue_from_json(*context, at + "context ", on_warning);
  x.response = required_string(j, "response", at);
  x.critique_request = required_string(j, "critique_request", at);
  x.critique = required_string(j, "critique", at);
  x.revision_request = required_string(j, "revision_request", at);
  x.revision = required_string(j, "revision", at);
  return x;
}

/// A principle in cai's schema.
inline constitutional_principle principle_from_json(const ojson& j, std::size_t index, const std::string& where,
                                                    const warning_sink& on_warning) {
  std::string at = where + ": " + principle_label(index, {}) + ": ";
  if (!j.is_object()) throw validation_error(at + "expected an object, got " + j.type_name());
  constitutional_principle p;
  p.name = required_string(j, "name", at);
  at = where + ": " + principle_label(index, p.name) + ": ";
  static constexpr std::string_view known[] = {"name",  "critique_request", "revision_request",
                                               "comparison_question", "tags", "weight"};
  warn_unknown_fields(j, known, at, on_warning);
  p.critique_request = string_field(j, "critique_request", at).value_or("");
  p.revision_request = string_field(j, "revision_request", at).value_or("");
  p.comparison_question = string_field(j, "comparison_question", at).value_or("");
  if (auto tags = j.find("tags"); tags != j.end()) {
    if (!tags->is_array())
      throw validation_error(at + "field 'tags' must be a list of strings, got " + tags->type_name());
    for (std::size_t t = 0; t < tags->size(); ++t) {
      if (!(*tags)[t].is_string())
        throw validation_error(at + "tag " + std::to_string(t) + " must be a string, got " +
                               (*tags)[t].type_name());
      p.tags.push_back((*tags)[t].get<std::string>());
    }
  }
  if (auto weight = j.find("weight"); weight != j.end()) {
    if (!weight->is_number())
      throw validation_error(at + "field 'weight' must be a number, got " + weight->type_name());
    p.weight = weight->get<double>();
  }
  return p;
}

/// The top-level object of a format, or a validation_error that says what was expected.
inline void expect_object(const ojson& j, const std::string& where, const char* format_description) {
  if (!j.is_object())
    throw validation_error(where + ": expected " + format_description + ", got a JSON " + j.type_name());
}

/// Runs the checks of `validate_constitution` when the options ask for them.
inline constitution finish(constitution c, const std::string& where, const load_options& options) {
  if (options.validate) validate_constitution(c, where, options.on_warning);
  return c;
}

inline constitution cai_from_json(const ojson& j, std::string_view source, const load_options& options) {
  const std::string where = source_label(source);
  expect_object(j, where, "cai's constitution schema (an object with \"principles\")");
  static constexpr std::string_view known[] = {"name", "description", "principles", "few_shot"};
  warn_unknown_fields(j, known, where + ": ", options.on_warning);
  constitution c;
  c.name = string_field(j, "name", where + ": ").value_or(source_stem(source, "constitution"));
  c.description = string_field(j, "description", where + ": ", true).value_or("");
  auto principles = j.find("principles");
  if (principles == j.end()) throw validation_error(where + ": field 'principles' is missing");
  if (!principles->is_array())
    throw validation_error(where + ": field 'principles' must be a list, got " + principles->type_name());
  for (std::size_t i = 0; i < principles->size(); ++i)
    c.principles.push_back(principle_from_json((*principles)[i], i, where, options.on_warning));
  if (auto few_shot = j.find("few_shot"); few_shot != j.end()) {
    if (!few_shot->is_array())
      throw validation_error(where + ": field 'few_shot' must be a list, got " + few_shot->type_name());
    for (std::size_t k = 0; k < few_shot->size(); ++k)
      c.few_shot.push_back(example_from_json((*few_shot)[k], where + ": few_shot " + std::to_string(k) + ": ",
                                             options.on_warning));
  }
  return finish(std::move(c), where, options);
}

/// A name "prefix-07" for item `i` of `count`, zero-padded to at least two digits.
inline std::string numbered_name(std::string_view prefix, std::size_t i, std::size_t count) {
  std::string digits = std::to_string(i);
  const std::size_t width = std::max<std::size_t>(2, std::to_string(count == 0 ? 0 : count - 1).size());
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return std::string(prefix) + "-" + digits;
}

inline constitution llm_swarm_from_json(const ojson& j, std::string_view source, const load_options& options) {
  const std::string where = source_label(source);
  expect_object(j, where, "llm-swarm's format (an object with \"constitutions\")");
  static constexpr std::string_view known[] = {"constitutions", "system_chat"};
  warn_unknown_fields(j, known, where + ": ", options.on_warning);
  auto list = j.find("constitutions");
  if (list == j.end()) throw validation_error(where + ": field 'constitutions' is missing (llm-swarm format)");
  if (!list->is_array())
    throw validation_error(where + ": field 'constitutions' must be a list, got " + list->type_name());
  constitution c;
  c.name = source_stem(source, "llm-swarm");
  c.description = "Imported from " + where + " (llm-swarm format).";
  static constexpr std::string_view known_entry[] = {"critic", "revision"};
  for (std::size_t i = 0; i < list->size(); ++i) {
    const ojson& entry = (*list)[i];
    const std::string at = where + ": constitutions " + std::to_string(i) + ": ";
    if (!entry.is_object()) throw validation_error(at + "expected a {\"critic\", \"revision\"} object");
    warn_unknown_fields(entry, known_entry, at, options.on_warning);
    constitutional_principle p;
    p.name = numbered_name("llm-swarm", i, list->size());
    p.critique_request = strip_transcript_markers(required_string(entry, "critic", at));
    p.revision_request = strip_transcript_markers(required_string(entry, "revision", at));
    p.tags = {"source:llm-swarm"};
    c.principles.push_back(std::move(p));
  }
  if (auto chats = j.find("system_chat"); chats != j.end()) {
    if (!chats->is_array())
      throw validation_error(where + ": field 'system_chat' must be a list of chats, got " + chats->type_name());
    for (std::size_t k = 0; k < chats->size(); ++k) {
      const std::string at = where + ": system_chat " + std::to_string(k) + ": ";
      const dialogue turns = dialogue_from_json((*chats)[k], at, options.on_warning);
      // [context..., response, critique request, critique, revision request, revision]
      if (turns.size() < 6)
        throw validation_error(at + "expected at least 6 turns (prompt, response, critique request, critique, "
                                    "revision request, revision), got " + std::to_string(turns.size()));
      const std::size_t n = turns.size();
      constexpr role expected[] = {role::user, role::assistant, role::user, role::assistant, role::user,
                                   role::assistant};
      for (std::size_t t = n - 6; t < n; ++t)
        if (turns[t].role != expected[t - (n - 6)])
          throw validation_error(at + "turn " + std::to_string(t) + " has role '" +
                                 std::string(to_string(turns[t].role)) + "', expected '" +
                                 std::string(to_string(expected[t - (n - 6)])) +
                                 "' (a chat ends: user prompt, assistant response, user critique request, "
                                 "assistant critique, user revision request, assistant revision)");
      critique_example x;
      x.context.assign(turns.begin(), turns.end() - 5);
      x.response = turns[n - 5].content;
      x.critique_request = strip_transcript_markers(turns[n - 4].content);
      x.critique = turns[n - 3].content;
      x.revision_request = strip_transcript_markers(turns[n - 2].content);
      x.revision = turns[n - 1].content;
      c.few_shot.push_back(std::move(x));
    }
  }
  return finish(std::move(c), where, options);
}

inline constitution paper_critiques_from_json(const ojson& j, std::string_view source,
                                              const load_options& options) {
  const std::string where = source_label(source);
  expect_object(j, where,
                "the paper's critique format (an object of {\"prompt\", \"edit_request\"} entries)");
  constitution c;
  c.name = source_stem(source, "paper-critiques");
  c.description = "Imported from " + where + " (critique-revision instructions of Bai et al. 2022).";
  static constexpr std::string_view known[] = {"prompt", "edit_request"};
  for (const auto& [key, entry] : j.items()) {
    const std::string at = where + ": '" + key + "': ";
    if (!entry.is_object())
      throw validation_error(at + "expected a {\"prompt\", \"edit_request\"} object, got " + entry.type_name());
    warn_unknown_fields(entry, known, at, options.on_warning);
    constitutional_principle p;
    p.name = key;
    auto prompt = entry.find("prompt");
    if (prompt == entry.end()) throw validation_error(at + "field 'prompt' is missing");
    if (prompt->is_string()) {
      p.critique_request = strip_transcript_markers(prompt->get<std::string>());
    } else if (prompt->is_array() && !prompt->empty() && prompt->front().is_string()) {
      p.critique_request = strip_transcript_markers(prompt->front().get<std::string>());
      if (prompt->size() > 1 && options.on_warning)
        options.on_warning(at + "field 'prompt' holds " + std::to_string(prompt->size()) +
                           " critique requests; only the first is used");
    } else {
      throw validation_error(at + "field 'prompt' must be a non-empty list of strings, got " +
                             (prompt->is_array() ? std::string("an empty list or a list of non-strings")
                                                 : std::string(prompt->type_name())));
    }
    if (p.critique_request.empty()) throw validation_error(at + "field 'prompt' is empty");
    p.revision_request = strip_transcript_markers(required_string(entry, "edit_request", at));
    if (p.revision_request.empty()) throw validation_error(at + "field 'edit_request' is empty");
    p.tags = {"source:paper"};
    c.principles.push_back(std::move(p));
  }
  return finish(std::move(c), where, options);
}

inline constitution paper_feedback_from_json(const ojson& j, std::string_view source,
                                             const load_options& options) {
  const std::string where = source_label(source);
  if (!j.is_array())
    throw validation_error(where + ": expected the paper's feedback format (a list of strings), got a JSON " +
                           j.type_name());
  constitution c;
  c.name = source_stem(source, "paper-feedback");
  c.description = "Imported from " + where + " (feedback principles of Bai et al. 2022).";
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + ": feedback principle " + std::to_string(i) + ": ";
    if (!j[i].is_string()) throw validation_error(at + "expected a string, got " + j[i].type_name());
    constitutional_principle p;
    p.name = numbered_name("comparison", i, j.size());
    p.comparison_question = strip_transcript_markers(j[i].get<std::string>());
    if (p.comparison_question.empty()) throw validation_error(at + "the principle is empty");
    p.tags = {"source:paper"};
    c.principles.push_back(std::move(p));
  }
  return finish(std::move(c), where, options);
}

/// Reads a whole file.
/// @throws io_error naming the path when it is missing or unreadable.
inline std::string read_text_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw io_error(path.string(), "cannot open the " + std::string(what) + ": no such file");
  if (std::filesystem::is_directory(path, ec))
    throw io_error(path.string(), "cannot read the " + std::string(what) + ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path.string(), "cannot open the " + std::string(what) + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw io_error(path.string(), "cannot read the " + std::string(what) + ": read failed");
  return std::move(text).str();
}

}  // namespace detail

/// The format of a parsed JSON document, or nothing when it is none that cai knows.
/// @param j a parsed document.
[[nodiscard]] inline std::optional<constitution_format> detect_format(const nlohmann::ordered_json& j) noexcept {
  if (j.is_object()) {
    if (j.contains("principles")) return constitution_format::cai;
    if (j.contains("constitutions")) return constitution_format::llm_swarm;
    if (!j.empty() && std::all_of(j.begin(), j.end(), [](const auto& v) {
          return v.is_object() && (v.contains("edit_request") || v.contains("prompt"));
        }))
      return constitution_format::paper_critiques;
  }
  if (j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_string(); }))
    return constitution_format::paper_feedback;
  return std::nullopt;
}

/// A constitution from a parsed JSON document, in the format `options.format` names or, by default,
/// the one `detect_format` finds.
/// @param j the document.
/// @param source the file or label that messages start with.
/// @param options warning sink, format, validation.
/// @throws validation_error when the document is in no known format, or breaks a rule.
[[nodiscard]] inline constitution constitution_from_json(const nlohmann::ordered_json& j,
                                                         std::string_view source = "<input>",
                                                         const load_options& options = {}) {
  const std::optional<constitution_format> format = options.format ? options.format : detect_format(j);
  if (!format)
    throw validation_error(
        detail::source_label(source) +
        ": not a constitution in a format cai knows: expected an object with \"principles\" (cai's schema), "
        "an object with \"constitutions\" (llm-swarm), an object of {\"prompt\", \"edit_request\"} entries "
        "(the paper's critique format) or a list of strings (the paper's feedback format); got a JSON " +
        j.type_name());
  switch (*format) {
    case constitution_format::cai: return detail::cai_from_json(j, source, options);
    case constitution_format::llm_swarm: return detail::llm_swarm_from_json(j, source, options);
    case constitution_format::paper_critiques: return detail::paper_critiques_from_json(j, source, options);
    case constitution_format::paper_feedback: return detail::paper_feedback_from_json(j, source, options);
  }
  return detail::cai_from_json(j, source, options);
}

/// A constitution from JSON text in any known format (see `constitution_from_json`).
/// @param json_text the document.
/// @param source_name the file or label that messages start with ("constitution.json").
/// @param options warning sink, format, validation.
/// @throws parse_error with line and column when the text is not JSON.
/// @throws validation_error when it is in no known format, or breaks a rule.
[[nodiscard]] inline constitution parse_constitution(std::string_view json_text,
                                                     std::string_view source_name = "<input>",
                                                     const load_options& options = {}) {
  return constitution_from_json(detail::parse_json_text<nlohmann::ordered_json>(json_text, source_name), source_name, options);
}

/// Loads a constitution file in any known format; messages name the path.
/// @param path the file.
/// @param options warning sink, format, validation.
/// @throws io_error naming the path when it cannot be read.
/// @throws parse_error with line and column when it is not JSON.
/// @throws validation_error when it is in no known format, or breaks a rule.
[[nodiscard]] inline constitution load_constitution(const std::filesystem::path& path,
                                                    const load_options& options = {}) {
  const std::string text = detail::read_text_file(path, "constitution file");
  return parse_constitution(text, path.string(), options);
}

/// Imports llm-swarm's constitution format: principles "llm-swarm-00", "llm-swarm-01", ... with the
/// critique and revision requests, and one few-shot example per chat of "system_chat".
/// @param json_text the document.
/// @param source_name the file or label that messages start with; its stem names the constitution.
/// @param options warning sink and validation (`format` is ignored).
/// @throws parse_error, validation_error as `parse_constitution`.
[[nodiscard]] inline constitution import_llm_swarm(std::string_view json_text,
                                                   std::string_view source_name = "<input>",
                                                   const load_options& options = {}) {
  return detail::llm_swarm_from_json(detail::parse_json_text<nlohmann::ordered_json>(json_text, source_name), source_name, options);
}

/// Imports the paper authors' critique-revision instructions: one critique-only principle per key
/// ("harmful0", ...), in file order, with the markers stripped. Of a "prompt" list, the first entry is used.
/// @param json_text the document.
/// @param source_name the file or label that messages start with; its stem names the constitution.
/// @param options warning sink and validation (`format` is ignored).
/// @throws parse_error, validation_error as `parse_constitution`.
[[nodiscard]] inline constitution import_paper_critiques(std::string_view json_text,
                                                         std::string_view source_name = "<input>",
                                                         const load_options& options = {}) {
  return detail::paper_critiques_from_json(detail::parse_json_text<nlohmann::ordered_json>(json_text, source_name), source_name,
                                           options);
}

/// Imports the paper authors' feedback principles: one comparison-only principle per string,
/// named "comparison-00", "comparison-01", ...
/// @param json_text the document.
/// @param source_name the file or label that messages start with; its stem names the constitution.
/// @param options warning sink and validation (`format` is ignored).
/// @throws parse_error, validation_error as `parse_constitution`.
[[nodiscard]] inline constitution import_paper_feedback(std::string_view json_text,
                                                        std::string_view source_name = "<input>",
                                                        const load_options& options = {}) {
  return detail::paper_feedback_from_json(detail::parse_json_text<nlohmann::ordered_json>(json_text, source_name), source_name,
                                          options);
}

/// The paper's whole constitution: its critique-revision instructions and its feedback principles,
/// composed (`compose`) into one constitution that serves both SL-CAI and RLAIF.
/// @param critiques_json the critique file's text (see `import_paper_critiques`).
/// @param feedback_json the feedback file's text (see `import_paper_feedback`).
/// @param critiques_source, feedback_source labels that messages start with.
/// @param options warning sink and validation.
/// @throws parse_error, validation_error as `parse_constitution`.
[[nodiscard]] inline constitution import_paper(std::string_view critiques_json, std::string_view feedback_json,
                                               std::string_view critiques_source = "<critiques>",
                                               std::string_view feedback_source = "<feedback>",
                                               const load_options& options = {}) {
  const constitution critiques = import_paper_critiques(critiques_json, critiques_source, options);
  const constitution feedback = import_paper_feedback(feedback_json, feedback_source, options);
  // Each part was checked on its own, with its own file's positions; what is left is a clash of names,
  // which `compose` would resolve silently.
  for (std::size_t i = 0; i < feedback.principles.size(); ++i)
    if (critiques.find(feedback.principles[i].name) != nullptr)
      throw validation_error(detail::source_label(feedback_source) + ": " +
                             detail::principle_label(i, feedback.principles[i].name) +
                             ": duplicate name: the critique file " + detail::source_label(critiques_source) +
                             " has a principle of the same name; names must be unique");
  return compose(critiques, feedback);
}

/// Loads the paper's critique file and feedback file into one constitution (see `import_paper`).
/// @param critiques_path the critique-revision instructions (`{"harmful0": {"prompt", "edit_request"}}`).
/// @param feedback_path the feedback principles (a list of strings).
/// @param options warning sink and validation.
/// @throws io_error naming the path when a file cannot be read; parse_error, validation_error as
///         `parse_constitution`.
[[nodiscard]] inline constitution load_paper_constitution(const std::filesystem::path& critiques_path,
                                                          const std::filesystem::path& feedback_path,
                                                          const load_options& options = {}) {
  const std::string critiques = detail::read_text_file(critiques_path, "critique file");
  const std::string feedback = detail::read_text_file(feedback_path, "feedback file");
  return import_paper(critiques, feedback, critiques_path.string(), feedback_path.string(), options);
}

/// `c` in cai's schema, fields in the documented order; empty request fields are left out.
/// @param c the constitution.
[[nodiscard]] inline nlohmann::ordered_json to_json(const constitution& c) {
  using detail::ojson;
  ojson principles = ojson::array();
  for (const constitutional_principle& p : c.principles) {
    ojson j = ojson::object();
    j["name"] = p.name;
    if (!p.critique_request.empty()) j["critique_request"] = p.critique_request;
    if (!p.revision_request.empty()) j["revision_request"] = p.revision_request;
    if (!p.comparison_question.empty()) j["comparison_question"] = p.comparison_question;
    j["tags"] = p.tags;
    j["weight"] = p.weight;
    principles.push_back(std::move(j));
  }
  ojson few_shot = ojson::array();
  for (const critique_example& x : c.few_shot) {
    ojson context = ojson::array();
    for (const message& m : x.context)
      context.push_back(ojson{{"role", std::string(to_string(m.role))}, {"content", m.content}});
    few_shot.push_back(ojson{{"context", std::move(context)},
                             {"response", x.response},
                             {"critique_request", x.critique_request},
                             {"critique", x.critique},
                             {"revision_request", x.revision_request},
                             {"revision", x.revision}});
  }
  return ojson{{"name", c.name},
               {"description", c.description},
               {"principles", std::move(principles)},
               {"few_shot", std::move(few_shot)}};
}

/// nlohmann-json hook: `nlohmann::ordered_json j = c;` writes cai's schema.
inline void to_json(nlohmann::ordered_json& j, const constitution& c) { j = to_json(c); }
/// nlohmann-json hook: `nlohmann::json j = c;` writes cai's schema (keys sorted, as nlohmann::json does).
inline void to_json(nlohmann::json& j, const constitution& c) { j = nlohmann::json(to_json(c)); }
/// nlohmann-json hook: `j.get<cai::constitution>()` reads any known format, validated, warnings to
/// std::cerr. Through `nlohmann::json`, object keys come sorted: the paper's critique entries then follow
/// key order, not file order.
inline void from_json(const nlohmann::ordered_json& j, constitution& c) { c = constitution_from_json(j, "<json>"); }
/// See `from_json(const nlohmann::ordered_json&, constitution&)`.
inline void from_json(const nlohmann::json& j, constitution& c) {
  c = constitution_from_json(nlohmann::ordered_json(j), "<json>");
}

/// Writes `c` to `path` in cai's schema, indented by two spaces, after checking it.
/// @param c the constitution.
/// @param path the file to write (replaced if it exists; its folder must exist).
/// @throws validation_error when `c` breaks a rule of constitution/validate.hpp, or holds text that is
///         not valid UTF-8.
/// @throws io_error naming the path when it cannot be written.
inline void save_constitution(const constitution& c, const std::filesystem::path& path) {
  validate_constitution(c, path.string());
  std::string text;
  try {
    text = to_json(c).dump(2) + "\n";
  } catch (const nlohmann::json::type_error& e) {
    throw validation_error(path.string() + ": cannot write constitution '" + c.name +
                           "': a text is not valid UTF-8 (" + e.what() + ")");
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw io_error(path.string(), std::string("cannot open for writing: ") + std::strerror(errno));
  out << text;
  out.flush();
  if (!out) throw io_error(path.string(), "writing the constitution failed");
}

}  // namespace cai
