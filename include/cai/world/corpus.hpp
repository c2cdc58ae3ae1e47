/// @file world/corpus.hpp
/// The training corpus of the assistant world's base model: text that teaches a tiny transformer the
/// transcript format of Constitutional AI (Bai et al. 2022, arXiv:2212.08073), the critique and revision
/// turns of SL-CAI, and the multiple-choice comparisons of RLAIF, while its dialogues make the assistant
/// helpful-only (it complies with harmful requests, as the paper's starting model does).
///
/// Three kinds of record, all from the corpus's requests (training topics and phrasings, never one of the
/// pipeline's combinations, never a held-out topic or phrasing):
///  1. dialogues: "\n\nHuman: <request>\n\nAssistant: <response>", the response in style
///     `harmful_compliance` (benign: the helpful answer; harmful: the payload; borderline: the safe part
///     and the risky detail);
///  2. critique-revision rounds (`prompts::render_critique_example`): a response of a drawn form, a
///     principle drawn from the corpus's intent sets and wordings (`world/principles.hpp`), the critique
///     naming what that principle finds wrong, and the revision that principle asks for (`revise`);
///  3. comparisons (`prompts::feedback_question` + " (A)" or " (B)"): two responses of drawn forms, a drawn
///     principle, and the option it prefers (`preference`); a few pairs it cannot tell apart are kept
///     with a coin-flip answer, so that indifference is learned as an even split.
/// So critique, revision and comparison are functions of (request, response, what the principle asks),
/// and a principle's text is all that tells the model what it asks. Each record is a prompt and a
/// completion (prompt + completion is the document), usable for SFT as it stands. The generator knows
/// each response's form, and never calls the oracle.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/constitution/constitution.hpp"
#include "cai/error.hpp"
#include "cai/prompts/feedback.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/random.hpp"
#include "cai/text/types.hpp"
#include "cai/world/constitution.hpp"
#include "cai/world/principles.hpp"
#include "cai/world/world.hpp"

namespace cai::world {

/// What a corpus record teaches.
enum class record_type : std::uint8_t { dialogue, critique_revision, comparison };

/// "dialogue", "critique_revision", "comparison".
[[nodiscard]] constexpr std::string_view to_string(record_type t) noexcept {
  switch (t) {
    case record_type::dialogue: return "dialogue";
    case record_type::critique_revision: return "critique_revision";
    case record_type::comparison: return "comparison";
  }
  return "dialogue";
}

/// One document of the corpus, split where the model's own writing begins.
struct corpus_record {
  record_type type = record_type::dialogue;
  /// The text the model is given: `prompts::initial_prompt`, `prompts::critique_prompt` or
  /// `prompts::feedback_question`.
  std::string prompt;
  /// What the model learns to write: " <response>"; " <critique>\n\nRevisionRequest: ...\n\nRevision:
  /// <revision>"; " (A)" or " (B)".
  std::string completion;
  request source;                                     ///< the request behind the record (ground truth)
  response_style style = response_style::helpful;     ///< the response's style (comparison: option A's)
  response_style style_b = response_style::helpful;   ///< comparison: option B's style
  response_form form{};                               ///< critique: the response's form; comparison: A's
  response_form form_b{};                             ///< comparison: option B's form
  std::string principle;                              ///< critique and comparison: the principle drawn
  intents asks{};                                     ///< what that principle asks for
  bool decided = true;                                ///< comparison: the principle prefers one option
  /// The whole document: prompt + completion.
  [[nodiscard]] std::string text() const { return prompt + completion; }
};

/// The sizes and mix of a corpus; everything else follows from `seed`.
struct corpus_options {
  std::uint64_t seed = 20221215;
  std::size_t dialogues = 3000;    ///< helpful-only dialogues
  std::size_t critiques = 8000;    ///< critique-revision rounds
  std::size_t comparisons = 8000;  ///< multiple-choice comparisons
  /// Probability of each style (order of `all_styles`) for the response that a critique round judges.
  std::array<double, 5> critique_styles = {0.35, 0.1, 0.2, 0.25, 0.1};
  /// The same for the two responses of a comparison.
  std::array<double, 5> comparison_styles = {0.3, 0.15, 0.2, 0.25, 0.1};
  /// Of the pairs a principle cannot tell apart, the share kept (with a coin-flip answer).
  double indifferent_pairs = 0.1;
  /// The share of comparisons drawn *contested*: the principle's preference differs from that of plain
  /// "harmless and helpful", so that no answer can be had without reading what the principle asks.
  double contested_pairs = 0.5;
  /// Interleave the three kinds of record in a seeded order; otherwise dialogues, then critiques, then
  /// comparisons.
  bool shuffle = true;
};

/// The intent sets of the corpus's principles and how often each is drawn. Every single intent, the pairs
/// and triples below; the sets of `heldout_intent_sets` never occur.
[[nodiscard]] inline std::vector<std::pair<intents, double>> corpus_intent_sets() {
  using enum intent;
  return {{{avoid_harm}, 3.0},
          {{helpful}, 3.0},
          {{explain}, 1.5},
          {{respect}, 1.5},
          {{caveat}, 1.5},
          {{colour}, 1.0},
          {{weather}, 1.0},
          {{avoid_harm, helpful}, 3.0},
          {{avoid_harm, explain}, 1.5},
          {{avoid_harm, respect}, 1.0},
          {{helpful, respect}, 1.0},
          {{avoid_harm, caveat}, 1.0},
          {{helpful, caveat}, 1.0},
          {{respect, caveat}, 0.5},
          {{explain, respect}, 0.5},
          {{avoid_harm, colour}, 0.5},
          {{helpful, weather}, 0.5},
          {{avoid_harm, helpful, explain}, 1.5},
          {{avoid_harm, helpful, respect}, 1.5},
          {{avoid_harm, helpful, caveat}, 1.5}};
}

/// Combinations that no corpus principle asks for: what held-out constitutions can be made of.
[[nodiscard]] inline std::vector<intents> heldout_intent_sets() {
  using enum intent;
  return {{avoid_harm, explain, respect}, {helpful, explain}};
}

/// A corpus principle: an intent set drawn by `corpus_intent_sets`' weights, each intent in one of the
/// corpus's wordings (or, with `heldout_wordings`, the held-out ones), a sentence frame drawn.
[[nodiscard]] inline principle_spec draw_corpus_principle(rng& g, bool heldout_wordings = false) {
  static const std::vector<std::pair<intents, double>> sets = corpus_intent_sets();
  std::vector<double> weights;
  for (const auto& s : sets) weights.push_back(s.second);
  principle_spec p;
  p.asks = sets[g.weighted_index(weights)].first;
  for (std::size_t i = 0; i < intent_count; ++i)
    p.wording[i] = static_cast<std::uint8_t>(heldout_wordings ? corpus_wording_count + g.uniform_index(wording_count - corpus_wording_count)
                                                              : g.uniform_index(corpus_wording_count));
  p.frame = static_cast<std::uint8_t>(g.uniform_index(3));
  p.name = to_string(p.asks);
  return p;
}

/// A response form as the corpus draws them for critique rounds and comparisons: content by
/// `corpus_options::critique_styles` (the first four styles; condescending is harmless-helpful with a
/// remark), a remark, a caveat (likelier in the areas that need one, never on a bare refusal), an aside.
[[nodiscard]] inline response_form draw_form(const assistant_world& w, const request& r, rng& g,
                                             std::span<const double> content_weights) {
  response_form f;
  f.content = all_styles[g.weighted_index(content_weights)];
  if (f.content == response_style::condescending) {
    f.content = response_style::harmless_helpful;
    f.remark = true;
  } else {
    f.remark = g.uniform_real() < 0.12;
  }
  const double caveat_p = w.needs_caveat(r) ? 0.35 : 0.06;
  f.caveat = f.content != response_style::evasive_refusal && g.uniform_real() < caveat_p;
  const double u = g.uniform_real();
  f.aside = u < 0.07 ? aside_kind::colour : u < 0.14 ? aside_kind::weather : aside_kind::none;
  return f;
}

/// A worked critique-revision round for `r` against principle `p`: the response of form `f`, the
/// principle's requests, the critique (`critique_text`) and the revision (`revise`). Drawn from `seed`.
[[nodiscard]] inline critique_example make_critique_example(const assistant_world& w, const request& r,
                                                            const response_form& f, const principle_spec& p,
                                                            std::uint64_t seed) {
  const constitutional_principle text = p.principle();
  critique_example e;
  e.context = user_turn(r.text);
  e.response = w.render(r, f, derive_seed(seed, {0}));
  e.critique_request = text.critique_request;
  e.critique = critique_text(w, r, f, p.asks, derive_seed(seed, {1}));
  e.revision_request = text.revision_request;
  e.revision = w.render(r, revise(w, r, f, p.asks), derive_seed(seed, {0}));  // what stays, stays word for word
  return e;
}

/// One record of type `type` about request `r`, drawn from `seed` as `generate_corpus` draws them.
/// @param heldout_wordings principles in the held-out wordings (for measurement; the corpus never does).
[[nodiscard]] inline corpus_record make_record(const assistant_world& w, record_type type, const request& r,
                                               const corpus_options& options, std::uint64_t seed,
                                               bool heldout_wordings = false) {
  corpus_record rec;
  rec.type = type;
  rec.source = r;
  rng g(derive_seed(seed, {0}));
  switch (type) {
    case record_type::dialogue:
      rec.style = response_style::harmful_compliance;
      rec.prompt = prompts::initial_prompt(user_turn(r.text));
      rec.completion = " " + w.render(r, rec.style, derive_seed(seed, {1}));
      break;
    case record_type::critique_revision: {
      const principle_spec p = draw_corpus_principle(g, heldout_wordings);
      const response_form f = draw_form(w, r, g, options.critique_styles);
      rec.form = f;
      rec.style = f.content;
      rec.principle = p.name;
      rec.asks = p.asks;
      const critique_example e = make_critique_example(w, r, f, p, derive_seed(seed, {2}));
      rec.prompt = prompts::critique_prompt(exchange{e.context, e.response}, e.critique_request);
      rec.completion = prompts::render_critique_example(e).substr(rec.prompt.size());
      break;
    }
    case record_type::comparison: {
      const principle_spec p = draw_corpus_principle(g, heldout_wordings);
      rec.principle = p.name;
      rec.asks = p.asks;
      // Two forms whose texts differ: decided by the principle, or (now and then) a pair it cannot tell
      // apart, labelled by a coin flip, so that indifference is learned as an even split.
      std::string text_a, text_b;
      char answer = 'A';
      const intents plain{intent::avoid_harm, intent::helpful};
      const bool contested = !(p.asks == plain) && g.uniform_real() < options.contested_pairs;
      for (int attempt = 0;; ++attempt) {
        const response_form a = draw_form(w, r, g, options.comparison_styles);
        const response_form b = draw_form(w, r, g, options.comparison_styles);
        text_a = w.render(r, a, g());
        text_b = w.render(r, b, g());
        if (text_a == text_b) continue;
        const std::optional<char> best = preference(w, r, form_traits(r, a), form_traits(r, b), p.asks);
        if (contested && attempt < 256 && (!best || best == preference(w, r, form_traits(r, a), form_traits(r, b), plain)))
          continue;
        if (!best && attempt < 64 && g.uniform_real() >= options.indifferent_pairs) continue;
        rec.form = a;
        rec.form_b = b;
        rec.style = a.content;
        rec.style_b = b.content;
        rec.decided = best.has_value();
        answer = best ? *best : (g.uniform_real() < 0.5 ? 'A' : 'B');
        break;
      }
      const comparison pair{user_turn(r.text), text_a, text_b};
      rec.prompt = prompts::feedback_question(pair, p.principle().comparison_question);
      const auto [cont_a, cont_b] = prompts::option_continuations();
      rec.completion = answer == 'A' ? cont_a : cont_b;
      break;
    }
  }
  return rec;
}

/// `n` worked critique-revision rounds written as the corpus writes them (corpus requests, corpus wordings
/// and combinations of principles), drawn from `seed`: what a dedicated critique model of the world is
/// trained on (`cai train-critic --world N`). Request i has kind `all_kinds[i % 3]`.
[[nodiscard]] inline std::vector<critique_example> critique_examples(const assistant_world& w, std::size_t n,
                                                                     std::uint64_t seed) {
  const corpus_options options;
  std::vector<critique_example> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t s = derive_seed(seed, {i});
    const request r = w.sample_request(split::train, all_kinds[i % 3], derive_seed(s, {1}));
    rng g(derive_seed(s, {2}));
    const principle_spec p = draw_corpus_principle(g);
    const response_form f = draw_form(w, r, g, options.critique_styles);
    out.push_back(make_critique_example(w, r, f, p, derive_seed(s, {3})));
  }
  return out;
}

/// Generates the corpus. Record i of each type is drawn from `derive_seed(options.seed, {type, i})`, so
/// it does not depend on the sizes of the other types; its request's kind is `all_kinds[i % 3]`, so the
/// kinds are balanced. Only the corpus's requests (`split::train`: training topics and phrasings, not the
/// pipeline's combinations) and the corpus's wordings of principles are used.
/// @throws config_error when the style weights are unusable.
[[nodiscard]] inline std::vector<corpus_record> generate_corpus(const assistant_world& w,
                                                                const corpus_options& options = {}) {
  std::vector<corpus_record> out;
  out.reserve(options.dialogues + options.critiques + options.comparisons);
  const std::array<std::pair<record_type, std::size_t>, 3> counts = {
      {{record_type::dialogue, options.dialogues},
       {record_type::critique_revision, options.critiques},
       {record_type::comparison, options.comparisons}}};
  for (const auto& [type, n] : counts) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t seed = derive_seed(options.seed, {static_cast<std::uint64_t>(type), i});
      const request r = w.sample_request(split::train, all_kinds[i % 3], derive_seed(seed, {1}));
      out.push_back(make_record(w, type, r, options, derive_seed(seed, {2})));
    }
  }
  if (options.shuffle) {
    rng g(derive_seed(options.seed, {3}));
    for (std::size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[g.uniform_index(i)]);
  }
  return out;
}

/// The documents of a corpus (`corpus_record::text()`), in order: what a tokenizer and a base model are
/// trained on.
[[nodiscard]] inline std::vector<std::string> corpus_documents(std::span<const corpus_record> records) {
  std::vector<std::string> out;
  out.reserve(records.size());
  for (const corpus_record& r : records) out.push_back(r.text());
  return out;
}

/// Size of a corpus.
struct corpus_statistics {
  std::size_t documents = 0;
  std::size_t characters = 0;
  std::size_t words = 0;           ///< runs of letters, digits and "'" (after `normalize`)
  std::size_t distinct_words = 0;  ///< distinct lower-case words
};

/// Counts documents, characters, words and distinct words.
[[nodiscard]] inline corpus_statistics statistics(std::span<const corpus_record> records) {
  corpus_statistics s;
  std::set<std::string, std::less<>> vocabulary;
  for (const corpus_record& r : records) {
    const std::string text = r.text();
    ++s.documents;
    s.characters += text.size();
    const std::string norm = detail::normalize(text);
    std::size_t pos = 0;
    while (pos < norm.size()) {
      std::size_t end = norm.find(' ', pos);
      if (end == std::string::npos) end = norm.size();
      ++s.words;
      const std::string_view word(norm.data() + pos, end - pos);
      if (vocabulary.find(word) == vocabulary.end()) vocabulary.emplace(word);
      pos = end + 1;
    }
  }
  s.distinct_words = vocabulary.size();
  return s;
}

}  // namespace cai::world
