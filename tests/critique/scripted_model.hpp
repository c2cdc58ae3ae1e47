// A deterministic scripted language model for the SL-CAI tests: it answers, critiques and revises by
// rule, records every request it receives, and can be told to fail after a number of calls (to simulate
// a run killed midway).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/text/generation.hpp"

namespace cai_test {

struct killed : std::runtime_error {
  killed() : std::runtime_error("scripted model killed") {}
};

inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// Answers "Sure! Here is how to <last user words>." to a dialogue, critiques with the name-free text
/// "The response helps with harm (seed N).", and revises to "I won't help with that; here is a safer
/// idea (revision K)." where K counts the revisions in the prompt's history.
struct scripted_model {
  std::vector<cai::generation_request> seen;
  int calls = 0;
  int fail_after_calls = -1;  // throw `killed` on this call (0-based); -1: never
  std::string critique_suffix;  // appended to every critique (to test injection cutting)

  std::vector<std::string> generate(std::span<const cai::generation_request> requests) {
    if (fail_after_calls >= 0 && calls >= fail_after_calls) throw killed();
    ++calls;
    std::vector<std::string> out;
    for (const auto& r : requests) {
      seen.push_back(r);
      const std::string& p = r.prompt;
      if (ends_with(p, "Critique:")) {
        out.push_back(" The response helps with harm (seed " + std::to_string(r.options.seed % 1000) + ")." +
                      critique_suffix);
      } else if (ends_with(p, "Revision:")) {
        out.push_back(" I won't help with that; here is a safer idea.");
      } else {
        const auto pos = p.rfind("Human: ");
        const auto end = p.find("\n\n", pos);
        out.push_back(" Sure! Here is how to " + p.substr(pos + 7, end - pos - 7) + ".\n\nHuman: more please");
      }
    }
    return out;
  }
};

/// A scoring model whose log-probabilities favour " Yes" exactly when the exchange's response contains
/// "Sure!", for judge tests.
struct scripted_scorer {
  std::vector<std::string> generate(std::span<const cai::generation_request> requests) {
    return std::vector<std::string>(requests.size());
  }
  std::vector<double> score(std::span<const cai::scoring_request> requests) {
    std::vector<double> out;
    for (const auto& r : requests) {
      const bool harmful = r.context.find("Assistant: Sure!") != std::string::npos;
      const bool yes = r.continuation == " Yes";
      out.push_back(harmful == yes ? -0.1 : -3.0);
    }
    return out;
  }
};

/// A constitution of `n` critique principles named p0..p(n-1), with texts "Critique i." / "Revise i.".
inline cai::constitution numbered_constitution(int n) {
  cai::constitution c;
  c.name = "test";
  for (int i = 0; i < n; ++i) {
    const std::string k = std::to_string(i);
    c.principles.push_back({"p" + k, "Critique " + k + ".", "Revise " + k + ".", "", {}, 1.0});
  }
  return c;
}

}  // namespace cai_test
