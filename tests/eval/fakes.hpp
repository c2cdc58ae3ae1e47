// Scripted policies for the evaluation tests: a ranker whose labels follow a written rule (so that win
// rates, ratings and disagreements are known exactly), and principle helpers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/constitution/constitution.hpp"

namespace eval_test {

using P = cai::constitutional_principle;
using task_t = cai::ranking_task<P>;

/// P(A) = clamp(1/2 + (quality[A] - quality[B]) / 2 + first_bias, 0, 1), where the quality table is
/// chosen by the principle's name (the "" table when the principle has none) and unknown texts have
/// quality 0. Records every task it saw and counts its calls.
struct scripted_ranker {
  std::map<std::string, std::map<std::string, double>> quality;  // principle name -> text -> quality
  double first_bias = 0.0;
  std::vector<task_t> seen;
  int calls = 0;

  double q(const std::string& principle, const std::string& text) const {
    auto t = quality.find(principle);
    if (t == quality.end()) t = quality.find("");
    if (t == quality.end()) return 0.0;
    auto it = t->second.find(text);
    return it == t->second.end() ? 0.0 : it->second;
  }
  std::vector<double> rank(std::span<const task_t> tasks) {
    ++calls;
    std::vector<double> out;
    for (const auto& t : tasks) {
      seen.push_back(t);
      const double d = q(t.principle.name, t.pair.response_a) - q(t.principle.name, t.pair.response_b);
      out.push_back(std::clamp(0.5 + d / 2.0 + first_bias, 0.0, 1.0));
    }
    return out;
  }
};

inline P comparison_principle(std::string name, std::string question = "Which response is better?") {
  P p;
  p.name = std::move(name);
  p.comparison_question = std::move(question);
  return p;
}

inline P critique_principle(std::string name) {
  P p;
  p.name = std::move(name);
  p.critique_request = "Identify what is wrong (" + p.name + ").";
  p.revision_request = "Rewrite the response (" + p.name + ").";
  return p;
}

}  // namespace eval_test
