/// @file data/preferences.hpp
/// Preference data on disk, for the RLAIF stage of Constitutional AI (Bai et al. 2022,
/// arXiv:2212.08073, section 4) and the trainers that consume it (preference models; DPO, Rafailov et
/// al. 2023):
///
/// - TRL-style preference JSONL (the `prompt` / `chosen` / `rejected` layout of Hugging Face TRL), with
///   the soft label and its provenance in `p_chosen`, `principle` and `source`; written and read back
///   with errors that name the file and line;
/// - the import of Anthropic's HH-RLHF transcripts (`{"chosen": "\n\nHuman: ...\n\nAssistant: ...",
///   "rejected": ...}`, gzip or plain), split into the shared dialogue and the two final responses;
/// - mixing human and AI labels by a ratio, seeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/data/gzip.hpp"
#include "cai/data/jsonl.hpp"
#include "cai/detail/json_text.hpp"
#include "cai/error.hpp"
#include "cai/prompts/transcript.hpp"
#include "cai/random.hpp"
#include "cai/text/json.hpp"
#include "cai/text/types.hpp"

namespace cai {

// ---------------------------------------------------------------------------------------------------
// Transcripts in the Human/Assistant text format

/// Splits a transcript in the paper's text format ("\n\nHuman: ...\n\nAssistant: ...", the layout of
/// HH-RLHF) into its turns: every "\n\nHuman:" opens a user turn and every "\n\nAssistant:" an
/// assistant turn, whose content runs to the next such marker, one space after the marker removed.
/// Text before the first marker, if any, is a system message. `render_transcript` of the result gives
/// the text back, byte for byte, when every marker is followed by a space and no system text precedes.
/// @throws validation_error when the text holds no turn marker.
[[nodiscard]] inline dialogue parse_transcript(std::string_view text) {
  constexpr std::string_view human_mark = "\n\nHuman:";
  constexpr std::string_view assistant_mark = "\n\nAssistant:";
  auto next_marker = [&](std::size_t from) -> std::pair<std::size_t, role> {
    const std::size_t h = text.find(human_mark, from);
    const std::size_t a = text.find(assistant_mark, from);
    if (h == std::string_view::npos && a == std::string_view::npos) return {std::string_view::npos, role::user};
    return h < a ? std::pair{h, role::user} : std::pair{a, role::assistant};
  };
  auto [at, who] = next_marker(0);
  if (at == std::string_view::npos)
    throw validation_error("not a transcript: no \"\\n\\nHuman:\" or \"\\n\\nAssistant:\" turn in the text (expected "
                           "\"\\n\\nHuman: ...\\n\\nAssistant: ...\")");
  dialogue out;
  if (at > 0) out.push_back({role::system, std::string(text.substr(0, at))});
  while (at != std::string_view::npos) {
    std::size_t start = at + (who == role::user ? human_mark.size() : assistant_mark.size());
    if (start < text.size() && text[start] == ' ') ++start;
    const auto [next, next_who] = next_marker(start);
    const std::size_t end = next == std::string_view::npos ? text.size() : next;
    out.push_back({who, std::string(text.substr(start, end - start))});
    at = next;
    who = next_who;
  }
  return out;
}

namespace detail {

/// A preference transcript split into the dialogue before its last Assistant turn and that turn.
/// @throws validation_error naming `field` when the text is not a transcript ending with an Assistant turn.
inline std::pair<dialogue, std::string> split_last_response(std::string_view text, const char* field) {
  dialogue d;
  try {
    d = parse_transcript(text);
  } catch (const validation_error& e) {
    throw validation_error(std::string("field '") + field + "': " + e.what());
  }
  if (d.back().role != role::assistant)
    throw validation_error(std::string("field '") + field +
                           "': not a preference transcript: it does not end with an Assistant turn");
  std::string response = std::move(d.back().content);
  d.pop_back();
  return {std::move(d), std::move(response)};
}

/// The message for two dialogues that should be equal and are not.
inline std::string mismatch_message(const dialogue& a, const dialogue& b) {
  std::size_t k = 0;
  while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
  return "'chosen' and 'rejected' do not share their dialogue before the last Assistant turn: they have " +
         std::to_string(a.size()) + " and " + std::to_string(b.size()) + " turns before it and differ from turn " +
         std::to_string(k + 1);
}

}  // namespace detail

/// Splits an HH-RLHF pair (two transcripts that share every turn but the last Assistant turn) into a
/// comparison: the shared dialogue, A = the last Assistant turn of `chosen`, B = that of `rejected`.
/// @throws validation_error when either text is not a transcript, does not end with an Assistant turn,
///         or the two dialogues before their last Assistant turns differ (the message names the turn).
[[nodiscard]] inline comparison split_hh_pair(std::string_view chosen, std::string_view rejected) {
  auto [context, a] = detail::split_last_response(chosen, "chosen");
  auto [other, b] = detail::split_last_response(rejected, "rejected");
  if (context != other) throw validation_error(detail::mismatch_message(context, other));
  return comparison{std::move(context), std::move(a), std::move(b)};
}

// ---------------------------------------------------------------------------------------------------
// TRL-style preference JSONL

/// How `prompt`, `chosen` and `rejected` are written.
enum class trl_layout : std::uint8_t {
  /// TRL's conversational form: `prompt` is the dialogue as a list of {"role", "content"} messages,
  /// `chosen` and `rejected` are one-message lists (the assistant's response). Lossless.
  conversational,
  /// TRL's standard (plain-text) form: `prompt` is `prompts::initial_prompt(context)` (the transcript,
  /// ending with "\n\nAssistant:"), `chosen` and `rejected` are " " + the response.
  standard,
};

/// One preference as a TRL record: {"prompt", "chosen", "rejected", "p_chosen", "principle", "source"}.
/// `chosen` is the response with P >= 0.5 (A on a tie) and `p_chosen` its probability, so a record read
/// back has A = chosen and `p_a` >= 0.5.
[[nodiscard]] inline nlohmann::ordered_json to_trl_json(const preference& p, trl_layout layout = trl_layout::conversational) {
  const bool a_wins = p.p_a >= 0.5;
  const std::string& chosen = a_wins ? p.pair.response_a : p.pair.response_b;
  const std::string& rejected = a_wins ? p.pair.response_b : p.pair.response_a;
  nlohmann::ordered_json j;
  if (layout == trl_layout::conversational) {
    nlohmann::ordered_json prompt = nlohmann::ordered_json::array();
    for (const message& m : p.pair.context)
      prompt.push_back({{"role", std::string(to_string(m.role))}, {"content", m.content}});
    j["prompt"] = std::move(prompt);
    j["chosen"] = nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", chosen}}});
    j["rejected"] = nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", rejected}}});
  } else {
    j["prompt"] = prompts::initial_prompt(p.pair.context);
    j["chosen"] = " " + chosen;
    j["rejected"] = " " + rejected;
  }
  j["p_chosen"] = a_wins ? p.p_a : 1.0 - p.p_a;
  j["principle"] = p.principle;
  j["source"] = std::string(to_string(p.source));
  return j;
}

/// How records without provenance are read.
struct preference_read_options {
  /// The source of records without a `source` field (external preference data sets are usually human).
  label_source default_source = label_source::human;
};

namespace detail {

inline dialogue messages_field(const nlohmann::json& v, const char* field) {
  if (!v.is_array()) throw validation_error(std::string("field '") + field + "' must be a string or a list of messages");
  dialogue d;
  for (std::size_t i = 0; i < v.size(); ++i) {
    try {
      d.push_back(v[i].get<message>());
    } catch (const validation_error& e) {
      throw validation_error(std::string("field '") + field + "', message " + std::to_string(i) + ": " + e.what());
    } catch (const nlohmann::json::exception&) {
      throw validation_error(std::string("field '") + field + "', message " + std::to_string(i) +
                             ": expected {\"role\", \"content\"}");
    }
  }
  return d;
}

/// The response of an explicit-prompt record's `chosen` / `rejected`: a string (one leading space removed
/// when the prompt is a transcript ending with "Assistant:") or a list holding one assistant message.
inline std::string response_field(const nlohmann::json& v, const char* field, bool strip_space) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (strip_space && !s.empty() && s.front() == ' ') s.erase(0, 1);
    return s;
  }
  dialogue d = messages_field(v, field);
  if (d.size() != 1 || d[0].role != role::assistant)
    throw validation_error(std::string("field '") + field + "' must hold exactly one assistant message when "
                           "'prompt' is given (got " + std::to_string(d.size()) + " messages)");
  return std::move(d[0].content);
}

}  // namespace detail

/// Reads one TRL preference record. Accepted forms:
/// - explicit prompt, standard: `prompt` a string; a transcript ending with "\n\nAssistant:" is split
///   into its dialogue (and one leading space of each response removed), any other string is one user
///   turn;
/// - explicit prompt, conversational: `prompt` a list of messages, `chosen` / `rejected` one assistant
///   message each (or strings);
/// - implicit prompt (no `prompt`): `chosen` and `rejected` whole transcripts (strings, as HH-RLHF) or
///   whole conversations (lists of messages) that share all but their last assistant turn.
/// Optional: `p_chosen` (a probability, default 1), `principle` (default ""), `source` ("ai" or "human").
/// The result has A = chosen, B = rejected, `p_a` = `p_chosen`.
/// @throws validation_error naming the field that is missing or wrong.
[[nodiscard]] inline preference preference_from_trl_json(const nlohmann::json& j, const preference_read_options& options = {}) {
  if (!j.is_object()) throw validation_error("a preference record must be a JSON object");
  for (const char* f : {"chosen", "rejected"})
    if (!j.contains(f)) throw validation_error(std::string("missing field '") + f + "'");
  const nlohmann::json& chosen = j["chosen"];
  const nlohmann::json& rejected = j["rejected"];
  preference p;
  if (auto it = j.find("prompt"); it != j.end()) {
    bool strip = false;
    if (it->is_string()) {
      const std::string text = it->get<std::string>();
      constexpr std::string_view open_turn = "\n\nAssistant:";
      const bool transcript = text.size() >= open_turn.size() &&
                              std::string_view(text).substr(text.size() - open_turn.size()) == open_turn &&
                              text.find("\n\nHuman:") != std::string::npos;
      if (transcript) {
        p.pair.context = parse_transcript(std::string_view(text).substr(0, text.size() - open_turn.size()));
        strip = true;
      } else {
        p.pair.context = user_turn(text);
      }
    } else {
      p.pair.context = detail::messages_field(*it, "prompt");
    }
    p.pair.response_a = detail::response_field(chosen, "chosen", strip);
    p.pair.response_b = detail::response_field(rejected, "rejected", strip);
  } else if (chosen.is_string() && rejected.is_string()) {
    p.pair = split_hh_pair(chosen.get<std::string>(), rejected.get<std::string>());
  } else {
    dialogue c = detail::messages_field(chosen, "chosen");
    dialogue r = detail::messages_field(rejected, "rejected");
    if (c.empty() || r.empty() || c.back().role != role::assistant || r.back().role != role::assistant)
      throw validation_error("fields 'chosen' and 'rejected' must each end with an assistant message");
    p.pair.response_a = std::move(c.back().content);
    p.pair.response_b = std::move(r.back().content);
    c.pop_back();
    r.pop_back();
    if (c != r)
      throw validation_error("'chosen' and 'rejected' do not share their conversation before the last assistant "
                             "message (and there is no 'prompt' field)");
    p.pair.context = std::move(c);
  }
  p.p_a = 1.0;
  if (auto it = j.find("p_chosen"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) throw validation_error("field 'p_chosen' must be a number");
    p.p_a = it->get<double>();
    if (!(p.p_a >= 0.0 && p.p_a <= 1.0))
      throw validation_error("field 'p_chosen' must be a probability in [0, 1], got " + std::to_string(p.p_a));
  }
  if (auto it = j.find("principle"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw validation_error("field 'principle' must be a string");
    p.principle = it->get<std::string>();
  }
  p.source = options.default_source;
  if (auto it = j.find("source"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) throw validation_error("field 'source' must be \"ai\" or \"human\"");
    p.source = label_source_from_string(it->get<std::string>());
  }
  return p;
}

/// Appends preferences to a TRL JSONL file, one flushed line per record (field order: prompt, chosen,
/// rejected, p_chosen, principle, source).
class preference_writer {
 public:
  /// Opens `path` for appending (creating it and its parent folders); `truncate` starts it afresh.
  /// @throws io_error when the file cannot be opened.
  explicit preference_writer(const std::filesystem::path& path, trl_layout layout = trl_layout::conversational,
                             bool truncate = false)
      : path_(path), layout_(layout) {
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
    }
    out_.open(path, std::ios::binary | (truncate ? std::ios::trunc : std::ios::app));
    if (!out_) throw io_error(path.string(), "cannot open for writing");
  }

  void write(const preference& p) {
    out_ << to_trl_json(p, layout_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out_.flush();
    if (!out_) throw io_error(path_.string(), "write failed (disk full?)");
  }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  trl_layout layout_;
  std::ofstream out_;
};

/// Writes `records` to `path` as TRL JSONL, replacing the file.
/// @throws io_error when the file cannot be written.
inline void write_preferences(const std::filesystem::path& path, std::span<const preference> records,
                              trl_layout layout = trl_layout::conversational) {
  preference_writer w(path, layout, true);
  for (const preference& p : records) w.write(p);
}

/// Reads a TRL preference JSONL file (plain or gzip); blank lines are skipped.
/// @throws io_error when the file cannot be read; parse_error naming the file and line for a line that is
///         not JSON or not a preference record (the message names the field).
[[nodiscard]] inline std::vector<preference> read_preferences(const std::filesystem::path& path,
                                                              const preference_read_options& options = {}) {
  std::vector<preference> out;
  for_each_gzip_line(path, [&](std::string_view line, std::size_t number) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    const nlohmann::json j = detail::parse_json_text(line, path.string(), number);
    try {
      out.push_back(preference_from_trl_json(j, options));
    } catch (const validation_error& e) {
      throw parse_error(path.string(), number, 0, e.what());
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// HH-RLHF import

/// How `import_hh_rlhf` treats pairs whose two transcripts do not share their dialogue.
struct hh_import_options {
  /// Skip such pairs (their line numbers are reported) instead of failing. HH-RLHF has a few: the
  /// harmless-base test split has 5 of 2,312, where one transcript runs on for extra turns.
  bool skip_mismatched = true;
  /// Stop after this many preferences (0: all).
  std::size_t max_records = 0;
};

/// What `import_hh_rlhf` read.
struct hh_import_result {
  std::vector<preference> preferences;  ///< A = chosen, p_a = 1, source human, no principle
  std::vector<std::size_t> skipped_lines;  ///< 1-based lines of pairs skipped for a mismatched dialogue
  std::size_t lines = 0;  ///< non-blank lines read
};

/// Imports Anthropic's HH-RLHF preference transcripts (a `.jsonl.gz` or plain JSONL file of
/// `{"chosen": transcript, "rejected": transcript}`), each pair split by `split_hh_pair` into the shared
/// dialogue and the two final responses, labelled as a hard human preference for `chosen`.
/// @throws io_error when the file cannot be read or its gzip stream is damaged; parse_error naming the
///         file and line for a line that is not JSON, lacks `chosen` or `rejected`, or holds text that is
///         not a transcript ending with an Assistant turn (and for a mismatched pair when
///         `skip_mismatched` is false).
[[nodiscard]] inline hh_import_result import_hh_rlhf(const std::filesystem::path& path, const hh_import_options& options = {}) {
  hh_import_result result;
  const std::string text = read_gzip_text(path);
  std::size_t pos = 0, number = 0;
  while (pos < text.size()) {
    if (options.max_records != 0 && result.preferences.size() >= options.max_records) break;
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string_view line = std::string_view(text).substr(pos, nl - pos);
    pos = nl + 1;
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    ++result.lines;
    const nlohmann::json j = detail::parse_json_text(line, path.string(), number);
    std::pair<dialogue, std::string> a, b;
    try {
      if (!j.is_object()) throw validation_error("not an HH-RLHF record: expected a JSON object");
      for (const char* f : {"chosen", "rejected"}) {
        auto it = j.find(f);
        if (it == j.end() || !it->is_string())
          throw validation_error(std::string("not an HH-RLHF record: field '") + f +
                                 "' is missing or not a string (expected {\"chosen\": transcript, \"rejected\": "
                                 "transcript})");
      }
      a = detail::split_last_response(j["chosen"].get<std::string>(), "chosen");
      b = detail::split_last_response(j["rejected"].get<std::string>(), "rejected");
    } catch (const validation_error& e) {
      throw parse_error(path.string(), number, 0, e.what());
    }
    if (a.first != b.first) {
      if (!options.skip_mismatched) throw parse_error(path.string(), number, 0, detail::mismatch_message(a.first, b.first));
      result.skipped_lines.push_back(number);
      continue;
    }
    result.preferences.push_back(
        {comparison{std::move(a.first), std::move(a.second), std::move(b.second)}, 1.0, "", label_source::human});
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Mixing human and AI labels

/// How `mix_preferences` mixes.
struct mix_options {
  /// The fraction of human labels in the mix, in [0, 1].
  double human_fraction = 0.5;
  /// The number of records; 0: the largest mix that keeps the fraction without repeating a record.
  std::size_t size = 0;
  std::uint64_t seed = 0;
};

/// A shuffled mix of human and AI preferences in a given ratio: round(size * human_fraction) records
/// drawn without replacement from `human`, the rest from `ai`, then shuffled; every draw comes from
/// `rng(options.seed)`, so the same inputs and options give the same mix everywhere.
/// @throws config_error when the fraction is outside [0, 1], or either list is too short for the size.
[[nodiscard]] inline std::vector<preference> mix_preferences(std::span<const preference> human,
                                                             std::span<const preference> ai,
                                                             const mix_options& options = {}) {
  const double f = options.human_fraction;
  if (!(f >= 0.0 && f <= 1.0))
    throw config_error("mix_preferences: human_fraction must be in [0, 1], got " + std::to_string(f));
  std::size_t n = options.size;
  if (n == 0) {
    if (f == 0.0) n = ai.size();
    else if (f == 1.0) n = human.size();
    else {
      const double by_human = static_cast<double>(human.size()) / f;
      const double by_ai = static_cast<double>(ai.size()) / (1.0 - f);
      n = static_cast<std::size_t>(by_human < by_ai ? by_human : by_ai);
    }
  }
  std::size_t nh = static_cast<std::size_t>(static_cast<double>(n) * f + 0.5);
  if (nh > n) nh = n;
  std::size_t na = n - nh;
  if (options.size == 0) {  // rounding may ask one more than a list holds
    if (nh > human.size()) nh = human.size();
    if (na > ai.size()) na = ai.size();
  }
  if (nh > human.size() || na > ai.size())
    throw config_error("mix_preferences: a mix of " + std::to_string(n) + " records at a human fraction of " +
                       std::to_string(f) + " needs " + std::to_string(nh) + " human and " + std::to_string(na) +
                       " AI records, but there are " + std::to_string(human.size()) + " and " +
                       std::to_string(ai.size()));
  rng g(options.seed);
  auto draw = [&g](std::span<const preference> from, std::size_t count, std::vector<preference>& out) {
    std::vector<std::size_t> idx(from.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (std::size_t i = 0; i < count; ++i) {  // partial Fisher-Yates
      const std::size_t j = i + static_cast<std::size_t>(g.uniform_index(idx.size() - i));
      std::swap(idx[i], idx[j]);
      out.push_back(from[idx[i]]);
    }
  };
  std::vector<preference> out;
  out.reserve(nh + na);
  draw(human, nh, out);
  draw(ai, na, out);
  for (std::size_t i = out.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(g.uniform_index(i));
    std::swap(out[i - 1], out[j]);
  }
  return out;
}

}  // namespace cai
