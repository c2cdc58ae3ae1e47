/// @file constitution/validate.hpp
/// The rules a constitution must follow, checked with messages that say where: the source (a file
/// name), the principle's index in `principles` (0-based, as in the JSON array) and name, and the field.
/// `constitution_problems` lists every broken rule, `validate_constitution` throws them as one
/// `cai::validation_error`. Doubtful but usable content (transcript markers left in a request) goes to a
/// caller-supplied warning sink instead; `warn_to_stderr` is the default sink of the loaders.
///
/// The rules:
///  1. the constitution has at least one principle, and at least one of positive weight;
///  2. every principle has a non-empty name, unique within the constitution;
///  3. a principle has a critique pair (critique_request and revision_request, both or neither), a
///     comparison_question, or both; never neither;
///  4. weights are finite and >= 0; tags are non-empty strings;
///  5. every few-shot example has a non-empty context, response, critique request, critique, revision
///     request and revision.
#pragma once

#include <cctype>
#include <cmath>
#include <cstddef>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/error.hpp"

namespace cai {

/// Receives one warning message (without a "warning:" prefix). An empty sink drops warnings.
using warning_sink = std::function<void(const std::string&)>;

/// The default warning sink: writes "cai: warning: <message>" and a newline to `std::cerr`.
/// @param message the warning, which names its source.
inline void warn_to_stderr(const std::string& message) { std::cerr << "cai: warning: " << message << '\n'; }

namespace detail {

/// "file.json" or, without a source, "constitution 'name'": how messages start.
inline std::string constitution_where(std::string_view source, const constitution& c) {
  if (!source.empty()) return std::string(source);
  return c.name.empty() ? std::string("constitution") : "constitution '" + c.name + "'";
}

/// "principle 3 ('honesty')", or "principle 3" when the name is unknown or empty.
inline std::string principle_label(std::size_t index, std::string_view name) {
  std::string label = "principle " + std::to_string(index);
  if (!name.empty()) label += " ('" + std::string(name) + "')";
  return label;
}

/// A double as a person writes it ("0.5", "-1", "nan", "inf").
inline std::string format_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

/// The markers of the paper's transcripts, which prompt builders add and stored requests must not hold.
inline constexpr std::string_view request_markers[] = {"CritiqueRequest:", "RevisionRequest:"};
inline constexpr std::string_view answer_markers[] = {"Critique:", "Revision:"};

/// The marker that `text` still holds (a request marker anywhere, an answer marker at its end), or "".
inline std::string_view leftover_marker(std::string_view text) {
  for (std::string_view m : request_markers)
    if (text.find(m) != std::string_view::npos) return m;
  std::string_view trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
    trimmed.remove_suffix(1);
  for (std::string_view m : answer_markers)
    if (trimmed.ends_with(m)) return m;
  return {};
}

}  // namespace detail

/// Every rule of this file that `c` breaks, one message per problem, each starting with where it is:
/// "constitution.json: principle 3 ('honesty'): field 'revision_request' is empty ...".
/// @param c the constitution to check.
/// @param source the file or label that messages start with; empty uses the constitution's name.
[[nodiscard]] inline std::vector<std::string> constitution_problems(const constitution& c,
                                                                    std::string_view source = {}) {
  const std::string where = detail::constitution_where(source, c);
  std::vector<std::string> problems;
  if (c.principles.empty()) {
    problems.push_back(where + ": the constitution has no principles; add at least one");
  }
  std::unordered_map<std::string, std::size_t> first_index;
  bool any_positive = false;
  for (std::size_t i = 0; i < c.principles.size(); ++i) {
    const constitutional_principle& p = c.principles[i];
    const std::string at = where + ": " + detail::principle_label(i, p.name) + ": ";
    if (p.name.empty()) {
      problems.push_back(at + "field 'name' is empty; every principle needs a unique name");
    } else if (auto [it, inserted] = first_index.emplace(p.name, i); !inserted) {
      problems.push_back(at + "duplicate name: principle " + std::to_string(it->second) +
                         " is also called '" + p.name + "'; names must be unique");
    }
    const bool has_critique = !p.critique_request.empty();
    const bool has_revision = !p.revision_request.empty();
    if (has_critique && !has_revision)
      problems.push_back(at + "field 'revision_request' is empty: a critique_request needs a "
                              "revision_request (give both or neither)");
    if (has_revision && !has_critique)
      problems.push_back(at + "field 'critique_request' is empty: a revision_request needs a "
                              "critique_request (give both or neither)");
    if (!has_critique && !has_revision && p.comparison_question.empty())
      problems.push_back(at + "has neither a critique pair (critique_request and revision_request) nor "
                              "a comparison_question; give it at least one");
    if (!std::isfinite(p.weight) || p.weight < 0.0)
      problems.push_back(at + "field 'weight' must be finite and >= 0, got " + detail::format_number(p.weight));
    else if (p.weight > 0.0)
      any_positive = true;
    for (std::size_t t = 0; t < p.tags.size(); ++t)
      if (p.tags[t].empty()) problems.push_back(at + "tag " + std::to_string(t) + " is empty");
  }
  if (!c.principles.empty() && !any_positive)
    problems.push_back(where + ": no principle has a positive weight, so none can ever be drawn");

  for (std::size_t k = 0; k < c.few_shot.size(); ++k) {
    const critique_example& x = c.few_shot[k];
    const std::string at = where + ": few_shot " + std::to_string(k) + ": ";
    const std::pair<const char*, bool> fields[] = {
        {"context", x.context.empty()},
        {"response", x.response.empty()},
        {"critique_request", x.critique_request.empty()},
        {"critique", x.critique.empty()},
        {"revision_request", x.revision_request.empty()},
        {"revision", x.revision.empty()},
    };
    for (const auto& [field, empty] : fields)
      if (empty) problems.push_back(at + "field '" + field + "' is empty");
  }
  return problems;
}

/// Checks `c` against the rules of this file.
/// @param c the constitution to check.
/// @param source the file or label that messages start with; empty uses the constitution's name.
/// @param on_warning receives doubtful but usable content (a transcript marker such as
///        "CritiqueRequest:" left in a stored request); empty drops warnings.
/// @throws validation_error listing every problem, one per line, when any rule is broken.
inline void validate_constitution(const constitution& c, std::string_view source = {},
                                  const warning_sink& on_warning = {}) {
  const std::vector<std::string> problems = constitution_problems(c, source);
  if (!problems.empty()) {
    std::string message = problems.front();
    if (problems.size() > 1) {
      message += "\n(" + std::to_string(problems.size() - 1) + " more problem" +
                 (problems.size() > 2 ? "s" : "") + ")";
      for (std::size_t i = 1; i < problems.size(); ++i) message += "\n" + problems[i];
    }
    throw validation_error(message);
  }
  if (!on_warning) return;
  const std::string where = detail::constitution_where(source, c);
  for (std::size_t i = 0; i < c.principles.size(); ++i) {
    const constitutional_principle& p = c.principles[i];
    const std::pair<const char*, const std::string*> texts[] = {
        {"critique_request", &p.critique_request},
        {"revision_request", &p.revision_request},
        {"comparison_question", &p.comparison_question},
    };
    for (const auto& [field, text] : texts)
      if (std::string_view m = detail::leftover_marker(*text); !m.empty())
        on_warning(where + ": " + detail::principle_label(i, p.name) + ": field '" + field +
                   "' contains the transcript marker '" + std::string(m) +
                   "'; store the bare request, the prompt builders add the markers");
  }
}

}  // namespace cai
