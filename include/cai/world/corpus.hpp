/// @file world/corpus.hpp
/// The training corpus of the assistant world's base model: text that teaches a tiny transformer the
/// transcript format of Constitutional AI (Bai et al. 2022, arXiv:2212.08073), the critique and revision
/// turns of SL-CAI, and the multiple-choice comparisons of RLAIF, while its dialogues make the assistant
/// helpful-only (it complies with harmful requests, as the paper's starting model does).
///
/// Three kinds of record, all from the training split (no held-out topic or phrasing appears):
///  1. dialogues: "\n\nHuman: <request>\n\nAssistant: <response>", the response in style
///     `harmful_compliance` (benign: the helpful answer; harmful: the payload; borderline: the safe part
///     and the risky detail);
///  2. critique-revision rounds (`prompts::render_critique_example`): a response in a drawn style, a
///     principle drawn from the constitution, a critique that names what is wrong with the response (or
///     says that nothing is), and a revision in style `harmless_helpful`;
///  3. comparisons (`prompts::feedback_question` + " (A)" or " (B)"): two responses in different styles,
///     a drawn comparison principle, and the better option by the world's ground truth: the less harmful;
///     when both are equally harmful, the one at least as helpful, as little evasive and as respectful and
///     better in one of these (pairs where neither dominates are not used).
/// Each record is a prompt and a completion (prompt + completion is the document), usable for SFT as it
/// stands. The generator knows each response's style, and never calls the oracle.
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
  std::string principle;                              ///< critique and comparison: the principle drawn
  /// The whole document: prompt + completion.
  [[nodiscard]] std::string text() const { return prompt + completion; }
};

/// The sizes and mix of a corpus; everything else follows from `seed`.
struct corpus_options {
  std::uint64_t seed = 20221215;
  std::size_t dialogues = 6000;    ///< helpful-only dialogues
  std::size_t critiques = 3000;    ///< critique-revision rounds
  std::size_t comparisons = 3000;  ///< multiple-choice comparisons
  /// Probability of each style (order of `all_styles`) for the response that a critique round judges.
  std::array<double, 5> critique_styles = {0.45, 0.1, 0.15, 0.15, 0.15};
  /// Interleave the three kinds of record in a seeded order; otherwise dialogues, then critiques, then
  /// comparisons.
  bool shuffle = true;
};

namespace detail {

inline constexpr std::array<std::string_view, 2> harm_critiques = {
    "The response is harmful: it gives steps for {h}, and {r}.",
    "The response helps with {h}. That is harmful, since {r}."};
inline constexpr std::array<std::string_view, 2> risky_critiques = {
    "The response is partly harmful: its last detail could be misused. The safe advice is fine.",
    "The response is mostly safe, but one harmful detail could be misused."};
inline constexpr std::array<std::string_view, 2> evasive_harmful_critiques = {
    "The response refuses without saying why and gives no safe alternative.",
    "The refusal is evasive: it gives no reason and no other way to help."};
inline constexpr std::array<std::string_view, 2> evasive_safe_critiques = {
    "The request is harmless, but the response refuses to answer it. That is evasive.",
    "The response is evasive: it refuses a safe question instead of helping."};
inline constexpr std::array<std::string_view, 2> disrespect_critiques = {
    "The response talks down to the person and assumes the worst about them.",
    "The tone is condescending and suggests bad intent without reason."};
inline constexpr std::array<std::string_view, 2> fine_critiques = {
    "The response is fine: it is harmless, helpful and respectful.",
    "No problems found. The response is safe, helpful and polite."};

/// 'A' when labels `a` are better than `b` by the corpus's rule (less harmful first; then Pareto
/// dominance on helpful, evasive, disrespectful), 'B' when `b` is better, nothing when neither is.
[[nodiscard]] constexpr std::optional<char> better_option(const labels& a, const labels& b) noexcept {
  if (a.harmful != b.harmful) return a.harmful ? 'B' : 'A';
  auto dominates = [](const labels& x, const labels& y) {
    const bool no_worse = x.helpful >= y.helpful && x.evasive <= y.evasive && x.disrespectful <= y.disrespectful;
    const bool better = x.helpful > y.helpful || x.evasive < y.evasive || x.disrespectful < y.disrespectful;
    return no_worse && better;
  };
  if (dominates(a, b)) return 'A';
  if (dominates(b, a)) return 'B';
  return std::nullopt;
}

}  // namespace detail

/// The critique of a response in style `style` to `r`: one sentence for each flaw of the style (harm,
/// evasiveness, disrespect), or one saying that nothing is wrong. Wording drawn from `seed`.
[[nodiscard]] inline std::string critique_text(const assistant_world& w, const request& r, response_style style,
                                               std::uint64_t seed) {
  rng g(seed);
  const labels l = style_labels(r.kind, style);
  std::string out;
  auto add = [&](std::string s) {
    if (!out.empty()) out.push_back(' ');
    out.append(s);
  };
  if (l.harmful) {
    if (r.kind == request_kind::harmful) {
      const harmful_task& h = w.harmful_of(r);
      const std::string& topic_name = w.topics().at(r.topic).name;
      std::string s = detail::fill(detail::pick(g, detail::harm_critiques), "{h}", h.harm);
      add(detail::fill(detail::fill(s, "{r}", h.reason.text), "{t}", topic_name));
    } else {
      add(std::string(detail::pick(g, detail::risky_critiques)));
    }
  }
  if (l.evasive) {
    add(std::string(r.kind == request_kind::harmful ? detail::pick(g, detail::evasive_harmful_critiques)
                                                    : detail::pick(g, detail::evasive_safe_critiques)));
  }
  if (l.disrespectful) add(std::string(detail::pick(g, detail::disrespect_critiques)));
  if (out.empty()) add(std::string(detail::pick(g, detail::fine_critiques)));
  return out;
}

/// A worked critique-revision round for `r`: the response in style `style`, the requests of principle
/// `p`, the critique (`critique_text`) and the revision in style `harmless_helpful`. Drawn from `seed`.
[[nodiscard]] inline critique_example make_critique_example(const assistant_world& w, const request& r,
                                                            response_style style,
                                                            const constitutional_principle& p,
                                                            std::uint64_t seed) {
  critique_example e;
  e.context = user_turn(r.text);
  e.response = w.render(r, style, derive_seed(seed, {0}));
  e.critique_request = p.critique_request;
  e.critique = critique_text(w, r, style, derive_seed(seed, {1}));
  e.revision_request = p.revision_request;
  e.revision = w.render(r, response_style::harmless_helpful, derive_seed(seed, {2}));
  return e;
}

/// Generates the corpus. Record i of each type is drawn from `derive_seed(options.seed, {type, i})`, so
/// it does not depend on the sizes of the other types; its request's kind is `all_kinds[i % 3]`, so the
/// kinds are balanced. Only training topics and phrasings are used.
/// @param w the world
/// @param options sizes, style mix, seed
/// @param c the constitution whose principles are drawn for critiques and comparisons
/// @throws validation_error when `c` has no critique principle (with critiques > 0) or no comparison
///         principle (with comparisons > 0); config_error when the style weights are unusable.
[[nodiscard]] inline std::vector<corpus_record> generate_corpus(const assistant_world& w,
                                                                const corpus_options& options = {},
                                                                const constitution& c = world_constitution()) {
  std::vector<corpus_record> out;
  out.reserve(options.dialogues + options.critiques + options.comparisons);
  const auto type_key = [](record_type t) { return static_cast<std::uint64_t>(t); };

  for (std::size_t i = 0; i < options.dialogues; ++i) {
    const std::uint64_t seed = derive_seed(options.seed, {type_key(record_type::dialogue), i});
    corpus_record rec;
    rec.type = record_type::dialogue;
    rec.source = w.sample_request(split::train, all_kinds[i % 3], derive_seed(seed, {0}));
    rec.style = response_style::harmful_compliance;
    rec.prompt = prompts::initial_prompt(user_turn(rec.source.text));
    rec.completion = " " + w.render(rec.source, rec.style, derive_seed(seed, {1}));
    out.push_back(std::move(rec));
  }

  for (std::size_t i = 0; i < options.critiques; ++i) {
    const std::uint64_t seed = derive_seed(options.seed, {type_key(record_type::critique_revision), i});
    rng g(derive_seed(seed, {0}));
    corpus_record rec;
    rec.type = record_type::critique_revision;
    rec.source = w.sample_request(split::train, all_kinds[i % 3], derive_seed(seed, {1}));
    rec.style = all_styles[g.weighted_index(options.critique_styles)];
    const constitutional_principle& p = c.draw_critique(g);
    rec.principle = p.name;
    const critique_example e = make_critique_example(w, rec.source, rec.style, p, derive_seed(seed, {2}));
    rec.prompt = prompts::critique_prompt(exchange{e.context, e.response}, e.critique_request);
    const std::string full = prompts::render_critique_example(e);
    rec.completion = full.substr(rec.prompt.size());
    out.push_back(std::move(rec));
  }

  for (std::size_t i = 0; i < options.comparisons; ++i) {
    const std::uint64_t seed = derive_seed(options.seed, {type_key(record_type::comparison), i});
    rng g(derive_seed(seed, {0}));
    corpus_record rec;
    rec.type = record_type::comparison;
    rec.source = w.sample_request(split::train, all_kinds[i % 3], derive_seed(seed, {1}));
    const constitutional_principle& p = c.draw_comparison(g);
    rec.principle = p.name;
    // Draw two styles whose rendered texts differ and whose ground truth orders them.
    std::string text_a;
    std::string text_b;
    char answer = 'A';
    bool found = false;
    for (int attempt = 0; attempt < 64 && !found; ++attempt) {
      const response_style a = all_styles[g.uniform_index(all_styles.size())];
      const response_style b = all_styles[g.uniform_index(all_styles.size())];
      const std::optional<char> best = detail::better_option(style_labels(rec.source.kind, a),
                                                             style_labels(rec.source.kind, b));
      if (!best) continue;
      text_a = w.render(rec.source, a, g());
      text_b = w.render(rec.source, b, g());
      if (text_a == text_b) continue;
      rec.style = a;
      rec.style_b = b;
      answer = *best;
      found = true;
    }
    if (!found) {  // practically unreachable; a pair that is always ordered
      rec.style = response_style::evasive_refusal;
      rec.style_b = response_style::harmless_helpful;
      text_a = w.render(rec.source, rec.style, g());
      text_b = w.render(rec.source, rec.style_b, g());
      answer = 'B';
    }
    const comparison pair{user_turn(rec.source.text), text_a, text_b};
    rec.prompt = prompts::feedback_question(pair, p.comparison_question);
    const auto [cont_a, cont_b] = prompts::option_continuations();
    rec.completion = answer == 'A' ? cont_a : cont_b;
    out.push_back(std::move(rec));
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
