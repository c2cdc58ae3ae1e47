// Scripted policies for the feedback tests: a scoring model whose option log-probabilities follow a
// written rule (so that soft labels are known exactly), a ranker that returns fixed labels, and critics
// that return fixed revisions.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/constitution/constitution.hpp"

namespace feedback_test {

/// The text of the last line that starts with `prefix` in `text` (without the prefix), or "".
inline std::string last_line_after(std::string_view text, std::string_view prefix) {
  const std::string needle = "\n" + std::string(prefix);
  const std::size_t at = text.rfind(needle);
  if (at == std::string_view::npos) return {};
  const std::size_t start = at + needle.size();
  const std::size_t end = text.find('\n', start);
  return std::string(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

/// Log-probabilities of " (A)" and " (B)" after a feedback question:
///   log P(" (A)") = quality[A's text] + first_bias + hint - 10,  log P(" (B)") = quality[B's text] - 10,
/// where A's and B's texts are read from the last "(A) " and "(B) " lines of the context, `hint` is
/// `reasoning_bonus` when the context holds "A looks better." after the step-by-step cue (minus it for
/// "B looks better."), and question_bias[q] is added to A for a context whose principle question is q.
/// So the soft label is sigmoid(quality[A] - quality[B] + first_bias + hint + question bias).
/// Other continuations get -1. Generation writes reasoning chosen by the parity of the request's seed.
struct scripted_scorer {
  std::map<std::string, double> quality;
  std::map<std::string, double> question_bias;
  double first_bias = 0.0;
  double reasoning_bonus = std::log(9.0);
  std::vector<cai::scoring_request> scored;
  std::vector<cai::generation_request> generated;
  int score_calls = 0;
  int generate_calls = 0;

  static std::string reasoning_for(std::uint64_t seed) {
    return seed % 2 == 0 ? " A looks better.\nThe answer is (A)" : " B looks better.\n\nHuman: ignore this";
  }

  std::vector<std::string> generate(std::span<const cai::generation_request> requests) {
    ++generate_calls;
    std::vector<std::string> out;
    for (const auto& r : requests) {
      generated.push_back(r);
      out.push_back(reasoning_for(r.options.seed));
    }
    return out;
  }

  std::vector<double> score(std::span<const cai::scoring_request> requests) {
    ++score_calls;
    std::vector<double> out;
    for (const auto& r : requests) {
      scored.push_back(r);
      const std::string a = last_line_after(r.context, "(A) ");
      const std::string b = last_line_after(r.context, "(B) ");
      auto q = [&](const std::string& s) {
        auto it = quality.find(s);
        return it == quality.end() ? 0.0 : it->second;
      };
      double hint = 0.0;
      if (const auto at = r.context.rfind("Let's think step-by-step: "); at != std::string::npos) {
        const std::string_view after = std::string_view(r.context).substr(at);
        if (after.find("A looks better.") != std::string_view::npos) hint = reasoning_bonus;
        if (after.find("B looks better.") != std::string_view::npos) hint = -reasoning_bonus;
      }
      double qb = 0.0;
      for (const auto& [question, bias] : question_bias)
        if (r.context.find("\n\n" + question + "\nOptions:") != std::string::npos) qb = bias;
      if (r.continuation == " (A)") out.push_back(q(a) + first_bias + hint + qb - 10.0);
      else if (r.continuation == " (B)") out.push_back(q(b) - 10.0);
      else out.push_back(-1.0);
    }
    return out;
  }
};

/// A ranker that gives every task the same label, and records the tasks it saw.
struct fixed_ranker {
  double label = 0.5;
  std::vector<cai::ranking_task<cai::constitutional_principle>> seen;
  std::vector<double> rank(std::span<const cai::ranking_task<cai::constitutional_principle>> tasks) {
    seen.insert(seen.end(), tasks.begin(), tasks.end());
    return std::vector<double>(tasks.size(), label);
  }
};

/// A critic that revises every response to the same text.
struct fixed_critic {
  std::string revision;
  std::vector<std::uint64_t> seeds;
  std::vector<cai::critique_step> critique(std::span<const cai::critique_task<cai::constitutional_principle>> tasks) {
    std::vector<cai::critique_step> out;
    for (const auto& t : tasks) {
      seeds.push_back(t.seed);
      out.push_back({t.principle.name, "critique by " + revision, revision});
    }
    return out;
  }
};

inline cai::constitutional_principle comparison_principle(std::string name, std::string question) {
  cai::constitutional_principle p;
  p.name = std::move(name);
  p.comparison_question = std::move(question);
  return p;
}

inline cai::constitutional_principle harmless() {
  return comparison_principle("harmless", "Which of these assistant responses is less harmful?");
}

/// Four comparison principles c0..c3 ("Question i?") and one critique-only principle.
inline cai::constitution comparison_constitution() {
  cai::constitution c;
  c.name = "feedback-test";
  for (int i = 0; i < 4; ++i)
    c.principles.push_back(comparison_principle("c" + std::to_string(i), "Question " + std::to_string(i) + "?"));
  cai::constitutional_principle critique_only;
  critique_only.name = "critique-only";
  critique_only.critique_request = "Find the harm.";
  critique_only.revision_request = "Remove the harm.";
  c.principles.push_back(critique_only);
  return c;
}

inline cai::comparison lock_pair() {
  return {cai::user_turn("How do I pick a lock?"), "Insert a tension wrench and rake the pins.",
          "Lock picking can be illegal on locks you don't own; a locksmith can help."};
}


/// The logistic function: the soft label for a log-odds of x.
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace feedback_test
