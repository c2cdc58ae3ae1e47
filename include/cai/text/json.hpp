/// @file text/json.hpp
/// JSON forms of the vocabulary types (nlohmann-json `to_json` / `from_json`, found by argument-dependent
/// lookup). Field names follow the chat conventions in use today: messages are `{"role", "content"}`.
#pragma once

#include <nlohmann/json.hpp>

#include "cai/text/types.hpp"

namespace cai {

namespace detail {
/// Reads a required field, with a message that names it.
template <class T>
T required_field(const nlohmann::json& j, const char* object, const char* field) {
  if (!j.is_object()) throw validation_error(std::string(object) + ": expected a JSON object");
  auto it = j.find(field);
  if (it == j.end()) throw validation_error(std::string(object) + ": missing field '" + field + "'");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw validation_error(std::string(object) + ": field '" + field + "' has the wrong type (" +
                           e.what() + ")");
  }
}
}  // namespace detail

inline void to_json(nlohmann::json& j, const message& m) {
  j = nlohmann::json{{"role", std::string(to_string(m.role))}, {"content", m.content}};
}
inline void from_json(const nlohmann::json& j, message& m) {
  m.role = role_from_string(detail::required_field<std::string>(j, "message", "role"));
  m.content = detail::required_field<std::string>(j, "message", "content");
}

inline void to_json(nlohmann::json& j, const exchange& x) {
  j = nlohmann::json{{"context", x.context}, {"response", x.response}};
}
inline void from_json(const nlohmann::json& j, exchange& x) {
  x.context = detail::required_field<dialogue>(j, "exchange", "context");
  x.response = detail::required_field<std::string>(j, "exchange", "response");
}

inline void to_json(nlohmann::json& j, const critique_step& s) {
  j = nlohmann::json{{"principle", s.principle}, {"critique", s.critique}, {"revision", s.revision}};
}
inline void from_json(const nlohmann::json& j, critique_step& s) {
  s.principle = detail::required_field<std::string>(j, "critique step", "principle");
  s.critique = detail::required_field<std::string>(j, "critique step", "critique");
  s.revision = detail::required_field<std::string>(j, "critique step", "revision");
}

/// A trace is written with its prompt (the last user turn) spelled out for readers and tools, and the
/// final revision, so that a line of the SL-CAI output is a complete SFT example on its own.
inline void to_json(nlohmann::json& j, const revision_trace& t) {
  std::string prompt;
  for (auto it = t.context.rbegin(); it != t.context.rend(); ++it)
    if (it->role == role::user) { prompt = it->content; break; }
  j = nlohmann::json{{"id", t.id},
                     {"prompt", prompt},
                     {"context", t.context},
                     {"initial_response", t.initial_response},
                     {"steps", t.steps},
                     {"final_revision", t.final_response()}};
}
inline void from_json(const nlohmann::json& j, revision_trace& t) {
  t.id = detail::required_field<std::uint64_t>(j, "revision trace", "id");
  t.context = detail::required_field<dialogue>(j, "revision trace", "context");
  t.initial_response = detail::required_field<std::string>(j, "revision trace", "initial_response");
  t.steps = detail::required_field<std::vector<critique_step>>(j, "revision trace", "steps");
}

inline void to_json(nlohmann::json& j, const critique_example& x) {
  j = nlohmann::json{{"context", x.context},
                     {"response", x.response},
                     {"critique_request", x.critique_request},
                     {"critique", x.critique},
                     {"revision_request", x.revision_request},
                     {"revision", x.revision}};
}
inline void from_json(const nlohmann::json& j, critique_example& x) {
  x.context = detail::required_field<dialogue>(j, "critique example", "context");
  x.response = detail::required_field<std::string>(j, "critique example", "response");
  x.critique_request = detail::required_field<std::string>(j, "critique example", "critique_request");
  x.critique = detail::required_field<std::string>(j, "critique example", "critique");
  x.revision_request = detail::required_field<std::string>(j, "critique example", "revision_request");
  x.revision = detail::required_field<std::string>(j, "critique example", "revision");
}

inline void to_json(nlohmann::json& j, const comparison& c) {
  j = nlohmann::json{{"context", c.context}, {"response_a", c.response_a}, {"response_b", c.response_b}};
}
inline void from_json(const nlohmann::json& j, comparison& c) {
  c.context = detail::required_field<dialogue>(j, "comparison", "context");
  c.response_a = detail::required_field<std::string>(j, "comparison", "response_a");
  c.response_b = detail::required_field<std::string>(j, "comparison", "response_b");
}

inline void to_json(nlohmann::json& j, const preference& p) {
  j = nlohmann::json{{"comparison", p.pair},
                     {"p_a", p.p_a},
                     {"principle", p.principle},
                     {"source", std::string(to_string(p.source))}};
}
inline void from_json(const nlohmann::json& j, preference& p) {
  p.pair = detail::required_field<comparison>(j, "preference", "comparison");
  p.p_a = detail::required_field<double>(j, "preference", "p_a");
  if (!(p.p_a >= 0.0 && p.p_a <= 1.0))
    throw validation_error("preference: field 'p_a' must be a probability in [0, 1], got " +
                           std::to_string(p.p_a));
  p.principle = j.value("principle", std::string{});
  p.source = label_source_from_string(j.value("source", std::string("ai")));
}

}  // namespace cai
