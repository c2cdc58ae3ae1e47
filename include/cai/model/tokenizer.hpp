/// @file model/tokenizer.hpp
/// Byte-level BPE (Sennrich et al. 2016, arXiv:1508.07909; byte-level form of GPT-2, Radford et al.
/// 2019), the tokenizer of GPT-2, SmolLM2, Llama 3 and most GGUF models whose tokenizer.ggml.model is
/// "gpt2". One class, `bpe_tokenizer`, built from any of:
///   - GPT-2's original files: encoder.json (or vocab.json) and vocab.bpe (or merges.txt);
///   - a Hugging Face tokenizer.json of a BPE model with the byte-level pre-tokenizer (alone, after
///     Digits(individual_digits) as SmolLM does, or after the Llama-3 Split pattern), with its added and
///     special tokens;
///   - the lists a GGUF file stores (tokenizer.ggml.tokens / merges / token_type / pre).
/// Encoding matches Hugging Face tokenizers token for token (`encode(text, add_special_tokens=False)`),
/// works on any byte string (invalid UTF-8 included) and round-trips through decode(). Batched encoding
/// runs on several threads. `save_tokenizer_json` writes a tokenizer.json that Hugging Face reads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/detail/json_text.hpp"
#include "cai/error.hpp"
#include "cai/model/unicode.hpp"

namespace cai {

/// A token's index in the vocabulary.
using token_id = std::int32_t;

/// A token matched verbatim in the input before pre-tokenization (<|endoftext|>, <|im_start|>).
struct added_token {
  std::string content;  ///< its exact bytes in the text
  token_id id = 0;
  bool special = true;  ///< special tokens are dropped by decode(ids, true)
};

/// The token types of GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum class gguf_token_type : std::int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,       ///< a special added token
  user_defined = 4,  ///< a non-special added token
  unused = 5,
  byte = 6,
};

namespace detail {

/// Transparent string hash so that maps keyed by std::string are searched with a string_view.
struct string_hash {
  using is_transparent = void;
  [[nodiscard]] std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// Open-addressing map from a (left id, right id) pair to (rank, merged id): the BPE merge table.
class merge_table {
 public:
  struct entry {
    std::uint64_t key = empty_key;
    std::uint32_t rank = 0;
    token_id merged = 0;
  };

  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, entry{});
    mask_ = cap - 1;
    size_ = 0;
  }
  /// Inserts the pair unless present; returns false when it was present.
  bool insert(token_id left, token_id right, std::uint32_t rank, token_id merged) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::uint64_t key = make_key(left, right);
    for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
      if (slots_[i].key == empty_key) {
        slots_[i] = entry{key, rank, merged};
        ++size_;
        return true;
      }
    }
  }
  /// The entry of the pair, or nullptr.
  [[nodiscard]] const entry* find(token_id left, token_id right) const noexcept {
    if (size_ == 0) return nullptr;
    const std::uint64_t key = make_key(left, right);
    for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == empty_key) return nullptr;
    }
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  static constexpr std::uint64_t empty_key = ~std::uint64_t{0};
  static std::uint64_t make_key(token_id l, token_id r) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32) | static_cast<std::uint32_t>(r);
  }
  [[nodiscard]] std::size_t slot(std::uint64_t key) const noexcept {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
  }
  void grow() {
    std::vector<entry> old = std::move(slots_);
    reserve(std::max<std::size_t>(old.size(), 8));
    for (const entry& e : old)
      if (e.key != empty_key) insert(static_cast<token_id>(e.key >> 32), static_cast<token_id>(e.key & 0xFFFFFFFFu), e.rank, e.merged);
  }
  std::vector<entry> slots_ = std::vector<entry>(16);
  std::size_t mask_ = 15;
  std::size_t size_ = 0;
};

/// Reads a whole file; io_error when it cannot.
inline std::string read_tokenizer_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(path.string(), "cannot open for reading");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw io_error(path.string(), "read failed");
  return std::move(s).str();
}

inline constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view llama3_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace detail

/// Byte-level BPE tokenizer. Immutable after construction; encode and decode are const and safe to
/// call from several threads at once.
class bpe_tokenizer {
 public:
  /// The parts of a tokenizer before its tables are built: what every loader produces.
  struct spec {
    std::vector<std::string> vocab;                         ///< token text (byte-level form) by id; "" = no token
    std::vector<std::pair<std::string, std::string>> merges;  ///< in rank order
    std::vector<added_token> added;
    pre_tokenizer_kind pre = pre_tokenizer_kind::gpt2;
    std::optional<std::string> unk_token;
    bool ignore_merges = false;
    std::string source = "<memory>";  ///< named in error messages
  };

  /// Builds the tables of `s`.
  /// @throws validation_error naming `s.source` for a merge of an unknown token, a merge whose result
  ///         is not in the vocabulary, or an added token whose id the vocabulary gives to another text.
  explicit bpe_tokenizer(spec s) { build(std::move(s)); }

  /// From the lists of a GGUF file's metadata.
  /// @param tokens tokenizer.ggml.tokens (byte-level form, index = id)
  /// @param merges tokenizer.ggml.merges ("left right", in rank order)
  /// @param token_types tokenizer.ggml.token_type (gguf_token_type values; empty = all normal): control
  ///        tokens become special added tokens, user-defined ones non-special added tokens
  /// @param pre tokenizer.ggml.pre: "gpt2" (also "default", "mpt", "olmo", "jais"), "smollm" (also
  ///        "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva") or "llama-bpe"
  ///        ("llama3"; it also turns on ignore_merges: a word that is a token is taken whole)
  /// @throws config_error for another pre-tokenizer name; validation_error for inconsistent lists.
  bpe_tokenizer(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                const std::vector<std::int32_t>& token_types, std::string_view pre,
                std::string source = "<gguf metadata>") {
    spec s;
    s.source = std::move(source);
    s.pre = pre_tokenizer_from_name(pre, s.source);
    s.ignore_merges = s.pre == pre_tokenizer_kind::llama3;  // as llama.cpp and Llama 3's tokenizer.json do
    if (!token_types.empty() && token_types.size() != tokens.size())
      throw validation_error(s.source + ": tokenizer.ggml.token_type has " + std::to_string(token_types.size()) +
                             " entries but tokenizer.ggml.tokens has " + std::to_string(tokens.size()));
    s.vocab = tokens;
    for (std::size_t i = 0; i < token_types.size(); ++i) {
      const auto type = static_cast<gguf_token_type>(token_types[i]);
      if (type == gguf_token_type::control || type == gguf_token_type::user_defined)
        s.added.push_back({tokens[i], static_cast<token_id>(i), type == gguf_token_type::control});
      else if (type == gguf_token_type::unknown && !s.unk_token)
        s.unk_token = tokens[i];
    }
    s.merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) s.merges.push_back(split_merge(merges[i], s.source, i));
    build(std::move(s));
  }

  /// From a GGUF file's tokenizer metadata as cai/model/gguf.hpp reads it (`read_tokenizer_metadata`);
  /// any type with the members `model`, `pre`, `tokens`, `merges` and `token_types` works.
  /// @throws config_error when `model` is not "gpt2" (byte-level BPE), naming `source`; as the list
  ///         constructor otherwise.
  template <class Metadata>
  [[nodiscard]] static bpe_tokenizer from_gguf_metadata(const Metadata& meta, std::string source = "<gguf metadata>") {
    if (meta.model != "gpt2")
      throw config_error(source + ": tokenizer.ggml.model is \"" + std::string(meta.model) +
                         "\"; cai's bpe_tokenizer reads only byte-level BPE (\"gpt2\") vocabularies");
    return bpe_tokenizer(meta.tokens, meta.merges, meta.token_types, meta.pre, std::move(source));
  }

  /// From GPT-2's encoder.json (vocab.json) and vocab.bpe (merges.txt). `<|endoftext|>` becomes a special
  /// added token when the vocabulary holds it, as in Hugging Face's gpt2 tokenizer.json.
  /// @throws io_error, parse_error (with line:column), validation_error naming the file.
  [[nodiscard]] static bpe_tokenizer from_gpt2_files(const std::filesystem::path& encoder_json,
                                                     const std::filesystem::path& vocab_bpe) {
    spec s;
    s.source = encoder_json.string();
    const nlohmann::json vocab = detail::parse_json_text(detail::read_tokenizer_file(encoder_json), s.source);
    if (!vocab.is_object()) throw validation_error(s.source + ": expected a JSON object mapping tokens to ids");
    s.vocab = vocab_from_object(vocab, s.source, "", 0);
    const std::string merges_text = detail::read_tokenizer_file(vocab_bpe);
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < merges_text.size();) {
      std::size_t end = merges_text.find('\n', pos);
      if (end == std::string::npos) end = merges_text.size();
      std::string_view line(merges_text.data() + pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
          line.find(' ', space + 1) != std::string_view::npos)
        throw parse_error(vocab_bpe.string(), line_no, 0, "expected a merge \"left right\", got \"" + std::string(line) + "\"");
      s.merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
    }
    for (std::size_t i = 0; i < s.vocab.size(); ++i)
      if (s.vocab[i] == "<|endoftext|>") s.added.push_back({s.vocab[i], static_cast<token_id>(i), true});
    s.source = encoder_json.string() + " + " + vocab_bpe.string();
    return bpe_tokenizer(std::move(s));
  }

  /// From a Hugging Face tokenizer.json file.
  /// @throws io_error; parse_error with line:column for bad JSON; validation_error naming the file and the
  ///         field for missing fields, duplicate or out-of-range ids, merges of unknown tokens; config_error
  ///         for features cai does not implement (another model type, a normalizer, prefix spaces).
  [[nodiscard]] static bpe_tokenizer from_tokenizer_json(const std::filesystem::path& path) {
    return from_tokenizer_json_text(detail::read_tokenizer_file(path), path.string());
  }

  /// As from_tokenizer_json, from the JSON text; `source` names it in errors.
  [[nodiscard]] static bpe_tokenizer from_tokenizer_json_text(std::string_view text, const std::string& source) {
    const nlohmann::json root = detail::parse_json_text(text, source);
    try {
      return from_tokenizer_json_value(root, source);
    } catch (const nlohmann::json::exception& e) {  // a field of the wrong type somewhere
      throw validation_error(source + ": a field has the wrong type (" + e.what() + ")");
    }
  }

  /// As from_tokenizer_json, from a parsed document.
  [[nodiscard]] static bpe_tokenizer from_tokenizer_json_value(const nlohmann::json& root, const std::string& source) {
    auto fail = [&](const std::string& what) -> validation_error { return validation_error(source + ": " + what); };
    if (!root.is_object()) throw fail("expected a JSON object at the top level");
    if (!root.contains("model") || !root["model"].is_object()) throw fail("missing object field \"model\"");
    const nlohmann::json& model = root["model"];
    if (!model.contains("type") || !model["type"].is_string())
      throw fail("missing string field \"model.type\"");
    if (model["type"] != "BPE")
      throw config_error(source + ": model.type is \"" + model["type"].get<std::string>() +
                         "\"; cai's bpe_tokenizer reads only \"BPE\" models");
    if (!model.contains("vocab") || !model["vocab"].is_object()) throw fail("missing object field \"model.vocab\"");
    if (!model.contains("merges") || !model["merges"].is_array()) throw fail("missing array field \"model.merges\"");
    auto check_absent = [&](const char* field) {
      if (model.contains(field) && !model[field].is_null() && !(model[field].is_string() && model[field].get<std::string>().empty()))
        throw config_error(source + ": model." + field + " is set; cai's bpe_tokenizer does not implement it");
    };
    check_absent("continuing_subword_prefix");
    check_absent("end_of_word_suffix");
    if (model.value("byte_fallback", false))
      throw config_error(source + ": model.byte_fallback is true; cai's bpe_tokenizer does not implement it");

    spec s;
    s.source = source;
    const std::size_t n_added = root.contains("added_tokens") && root["added_tokens"].is_array() ? root["added_tokens"].size() : 0;
    s.vocab = vocab_from_object(model["vocab"], source, "model.vocab", n_added);
    if (model.contains("unk_token") && model["unk_token"].is_string()) s.unk_token = model["unk_token"].get<std::string>();
    s.ignore_merges = model.value("ignore_merges", false);
    const auto& merges = model["merges"];
    s.merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const auto& m = merges[i];
      if (m.is_string()) {
        s.merges.push_back(split_merge(m.get<std::string>(), source, i));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        s.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        throw fail("model.merges[" + std::to_string(i) + "] is neither \"left right\" nor [\"left\", \"right\"]");
      }
    }
    if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
      if (!root["added_tokens"].is_array()) throw fail("\"added_tokens\" is not an array");
      std::size_t i = 0;
      for (const auto& t : root["added_tokens"]) {
        const std::string where = "added_tokens[" + std::to_string(i++) + "]";
        if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
            !t["content"].is_string())
          throw fail(where + " needs an integer \"id\" and a string \"content\"");
        for (const char* flag : {"single_word", "lstrip", "rstrip"})
          if (t.value(flag, false))
            throw config_error(source + ": " + where + " sets \"" + flag + "\"; cai's bpe_tokenizer does not implement it");
        const auto id = t["id"].get<std::int64_t>();
        if (id < 0 || id > 0x7FFFFFFF) throw fail(where + " has id " + std::to_string(id) + ", out of range");
        s.added.push_back({t["content"].get<std::string>(), static_cast<token_id>(id), t.value("special", false)});
      }
    }
    if (root.contains("normalizer") && !root["normalizer"].is_null())
      throw config_error(source + ": a normalizer is set; cai's bpe_tokenizer implements tokenizers without one");
    if (!root.contains("pre_tokenizer")) throw fail("missing field \"pre_tokenizer\"");
    s.pre = pre_tokenizer_from_json(root["pre_tokenizer"], source);
    if (root.contains("decoder") && !root["decoder"].is_null() &&
        !(root["decoder"].is_object() && root["decoder"].value("type", "") == "ByteLevel"))
      throw config_error(source + ": the decoder is not ByteLevel; cai's bpe_tokenizer decodes byte-level tokens only");
    return bpe_tokenizer(std::move(s));
  }

  /// Token ids of `text`. With `split_special` (the default, as Hugging Face does), added tokens found
  /// verbatim in the text become their ids; otherwise they are encoded as ordinary text. Never adds
  /// BOS/EOS. Any bytes are accepted; decode() gives them back.
  [[nodiscard]] std::vector<token_id> encode(std::string_view text, bool split_special = true) const {
    std::vector<token_id> out;
    out.reserve(text.size() / 3 + 4);
    word_cache cache;
    encode_into(text, out, cache, split_special);
    return out;
  }

  /// encode() of each text, on `threads` threads (0 = hardware concurrency); results in input order.
  /// Each thread keeps its own cache of words, so a batch is faster than the same texts one by one.
  [[nodiscard]] std::vector<std::vector<token_id>> encode_batch(std::span<const std::string> texts, std::size_t threads = 1,
                                                                bool split_special = true) const {
    return encode_many(texts, threads, split_special);
  }
  /// encode_batch() of views.
  [[nodiscard]] std::vector<std::vector<token_id>> encode_batch(std::span<const std::string_view> texts, std::size_t threads = 1,
                                                                bool split_special = true) const {
    return encode_many(texts, threads, split_special);
  }

  /// The bytes of `ids` joined; `skip_special` drops special added tokens.
  /// @throws config_error for an id outside the vocabulary.
  [[nodiscard]] std::string decode(std::span<const token_id> ids, bool skip_special = false) const {
    std::string out;
    for (token_id id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= bytes_.size() || !present_[static_cast<std::size_t>(id)])
        throw config_error("decode: token id " + std::to_string(id) + " is not in the vocabulary of " + source_);
      if (skip_special && special_[static_cast<std::size_t>(id)]) continue;
      out += bytes_[static_cast<std::size_t>(id)];
    }
    return out;
  }
  /// decode() of a braced list or vector.
  [[nodiscard]] std::string decode(const std::vector<token_id>& ids, bool skip_special = false) const {
    return decode(std::span<const token_id>(ids), skip_special);
  }

  /// One more than the largest id (vocabulary and added tokens).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return tokens_.size(); }
  /// The id of a token given in its byte-level spelling (or an added token's content), if any.
  [[nodiscard]] std::optional<token_id> token_to_id(std::string_view token) const {
    if (auto it = token_ids_.find(token); it != token_ids_.end()) return it->second;
    return std::nullopt;
  }
  /// The spelling of token `id` (byte-level form; an added token's content). @pre id < vocab_size()
  [[nodiscard]] const std::string& id_to_token(token_id id) const { return tokens_.at(static_cast<std::size_t>(id)); }
  /// The raw bytes that token `id` stands for. @pre id < vocab_size()
  [[nodiscard]] const std::string& token_bytes(token_id id) const { return bytes_.at(static_cast<std::size_t>(id)); }
  /// The added tokens, in the order given.
  [[nodiscard]] const std::vector<added_token>& added_tokens() const noexcept { return added_; }
  /// The merges as id pairs, in rank order.
  [[nodiscard]] const std::vector<std::pair<token_id, token_id>>& merges() const noexcept { return merge_list_; }
  [[nodiscard]] pre_tokenizer_kind pre_tokenizer() const noexcept { return pre_; }
  /// What the tokenizer was loaded from.
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

  /// A Hugging Face tokenizer.json describing this tokenizer.
  [[nodiscard]] nlohmann::ordered_json to_tokenizer_json() const {
    using oj = nlohmann::ordered_json;
    oj added = oj::array();
    for (const auto& a : added_)
      added.push_back({{"id", a.id}, {"content", a.content}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", a.special}});
    const oj byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", pre_ != pre_tokenizer_kind::llama3}};
    oj pre;
    switch (pre_) {
      case pre_tokenizer_kind::gpt2: pre = byte_level; break;
      case pre_tokenizer_kind::smollm:
        pre = {{"type", "Sequence"},
               {"pretokenizers", oj::array({oj{{"type", "Digits"}, {"individual_digits", true}}, byte_level})}};
        break;
      case pre_tokenizer_kind::llama3:
        pre = {{"type", "Sequence"},
               {"pretokenizers",
                oj::array({oj{{"type", "Split"}, {"pattern", {{"Regex", std::string(detail::llama3_pattern)}}},
                              {"behavior", "Isolated"}, {"invert", false}},
                           byte_level})}};
        break;
    }
    oj vocab = oj::object();
    std::vector<bool> is_added(tokens_.size(), false);
    for (const auto& a : added_) is_added[static_cast<std::size_t>(a.id)] = !in_vocab_[static_cast<std::size_t>(a.id)];
    {
      // Appended to the ordered map's vector directly: operator[] would search linearly for each key.
      auto& entries = static_cast<std::vector<std::pair<const std::string, oj>>&>(vocab.get_ref<oj::object_t&>());
      entries.reserve(tokens_.size());
      for (std::size_t i = 0; i < tokens_.size(); ++i)
        if (present_[i] && !is_added[i]) entries.emplace_back(tokens_[i], i);
    }
    oj merges = oj::array();
    for (const auto& [l, r] : merge_list_) merges.push_back(tokens_[static_cast<std::size_t>(l)] + " " + tokens_[static_cast<std::size_t>(r)]);
    oj model = {{"type", "BPE"},          {"dropout", nullptr},         {"unk_token", unk_token_ ? oj(*unk_token_) : oj(nullptr)},
                {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                {"byte_fallback", false}, {"ignore_merges", ignore_merges_}, {"vocab", std::move(vocab)},
                {"merges", std::move(merges)}};
    return oj{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", std::move(added)},
              {"normalizer", nullptr},
              {"pre_tokenizer", std::move(pre)},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
              {"model", std::move(model)}};
  }

  /// Writes to_tokenizer_json() to `path`. @throws io_error.
  void save_tokenizer_json(const std::filesystem::path& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw io_error(path.string(), "cannot open for writing");
    out << to_tokenizer_json().dump(2) << '\n';
    out.flush();
    if (!out) throw io_error(path.string(), "write failed");
  }

  /// The pre-tokenizer that a GGUF tokenizer.ggml.pre name stands for. @throws config_error.
  [[nodiscard]] static pre_tokenizer_kind pre_tokenizer_from_name(std::string_view name, const std::string& source = "") {
    for (std::string_view n : {"gpt2", "default", "mpt", "olmo", "jais", ""})
      if (name == n) return pre_tokenizer_kind::gpt2;
    for (std::string_view n : {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"})
      if (name == n) return pre_tokenizer_kind::smollm;
    if (name == "llama-bpe" || name == "llama3") return pre_tokenizer_kind::llama3;
    throw config_error((source.empty() ? std::string() : source + ": ") + "pre-tokenizer \"" + std::string(name) +
                       "\" is not implemented (cai knows gpt2, smollm and its aliases, llama-bpe)");
  }

 private:
  /// Remembers the ids of words already encoded (one per encoding thread): open addressing over an
  /// arena of word bytes and an arena of ids, emptied when it holds max_entries words.
  struct word_cache {
    struct slot {
      std::uint64_t hash = 0;
      std::uint32_t key_offset = 0, key_size = 0, ids_offset = 0, ids_size = 0;
      bool used = false;
    };
    static constexpr std::size_t max_entries = 1u << 16;
    std::vector<slot> slots;
    std::string keys;
    std::vector<token_id> store;
    std::vector<token_id> work;  // symbols of the word being merged
    std::size_t size = 0;

    static std::uint64_t hash_of(std::string_view w) noexcept {
      std::uint64_t h = 0x9E3779B97F4A7C15ull ^ w.size();
      std::size_t i = 0;
      for (; i + 8 <= w.size(); i += 8) {
        std::uint64_t v;
        std::memcpy(&v, w.data() + i, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
      }
      std::uint64_t tail = 0;
      std::memcpy(&tail, w.data() + i, w.size() - i);
      h = (h ^ tail) * 0x94D049BB133111EBull;
      return h ^ (h >> 29);
    }
    /// The cached ids of `w`, or nullptr; `h` is hash_of(w).
    [[nodiscard]] const slot* find(std::string_view w, std::uint64_t h) const noexcept {
      if (slots.empty()) return nullptr;
      const std::size_t mask = slots.size() - 1;
      for (std::size_t i = h & mask;; i = (i + 1) & mask) {
        const slot& s = slots[i];
        if (!s.used) return nullptr;
        if (s.hash == h && s.key_size == w.size() && std::memcmp(keys.data() + s.key_offset, w.data(), w.size()) == 0) return &s;
      }
    }
    void insert(std::string_view w, std::uint64_t h, const token_id* ids, std::size_t n) {
      if (slots.empty() || size >= max_entries) {
        slots.assign(max_entries * 2, slot{});
        keys.clear();
        store.clear();
        size = 0;
      }
      const std::size_t mask = slots.size() - 1;
      std::size_t i = h & mask;
      while (slots[i].used) i = (i + 1) & mask;
      slots[i] = slot{h, static_cast<std::uint32_t>(keys.size()), static_cast<std::uint32_t>(w.size()),
                      static_cast<std::uint32_t>(store.size()), static_cast<std::uint32_t>(n), true};
      keys.append(w);
      store.insert(store.end(), ids, ids + n);
      ++size;
    }
  };

  template <class Text>
  std::vector<std::vector<token_id>> encode_many(std::span<const Text> texts, std::size_t threads, bool split_special) const {
    std::vector<std::vector<token_id>> out(texts.size());
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads = std::min(threads, std::max<std::size_t>(texts.size(), 1));
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> failures(threads);
    auto work = [&](std::size_t worker) {
      try {
        word_cache cache;
        for (std::size_t i; (i = next.fetch_add(1)) < texts.size();) encode_into(texts[i], out[i], cache, split_special);
      } catch (...) {  // bad_alloc: handed to the caller, never left to std::terminate
        failures[worker] = std::current_exception();
        next.store(texts.size());
      }
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& t : pool) t.join();
    for (const auto& f : failures)
      if (f) std::rethrow_exception(f);
    return out;
  }

  static std::pair<std::string, std::string> split_merge(const std::string& m, const std::string& source, std::size_t i) {
    const std::size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (space == std::string::npos || space + 1 >= m.size())
      throw validation_error(source + ": merge " + std::to_string(i) + " \"" + m + "\" is not \"left right\"");
    return {m.substr(0, space), m.substr(space + 1)};
  }

  /// Vocabulary by id from a {token: id} object; ids must be distinct and below size + extra.
  static std::vector<std::string> vocab_from_object(const nlohmann::json& obj, const std::string& source,
                                                    const std::string& field, std::size_t extra) {
    const std::string where = field.empty() ? std::string() : field + ": ";
    const std::size_t limit = obj.size() + extra;
    std::vector<std::string> vocab(limit);
    std::vector<bool> seen(limit, false);
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      if (!it.value().is_number_integer())
        throw validation_error(source + ": " + where + "token \"" + it.key() + "\" has a non-integer id");
      const auto id = it.value().get<std::int64_t>();
      if (id < 0 || static_cast<std::uint64_t>(id) >= limit)
        throw validation_error(source + ": " + where + "token \"" + it.key() + "\" has id " + std::to_string(id) +
                               ", out of range [0, " + std::to_string(limit) + ")");
      const auto u = static_cast<std::size_t>(id);
      if (seen[u])
        throw validation_error(source + ": " + where + "id " + std::to_string(id) + " is given to both \"" + vocab[u] +
                               "\" and \"" + it.key() + "\"");
      seen[u] = true;
      vocab[u] = it.key();
    }
    while (!vocab.empty() && !seen[vocab.size() - 1]) {
      vocab.pop_back();
      seen.pop_back();
    }
    return vocab;
  }

  static pre_tokenizer_kind pre_tokenizer_from_json(const nlohmann::json& p, const std::string& source) {
    auto unsupported = [&](const std::string& what) {
      return config_error(source + ": pre_tokenizer " + what +
                          " is not implemented (cai reads ByteLevel, Sequence[Digits(individual_digits), ByteLevel] "
                          "and Sequence[Split(Llama-3 pattern), ByteLevel(use_regex=false)])");
    };
    auto byte_level = [&](const nlohmann::json& b, bool regex) {
      if (!b.is_object() || b.value("type", "") != "ByteLevel") return false;
      if (b.value("add_prefix_space", false)) throw unsupported("ByteLevel with add_prefix_space=true");
      return b.value("use_regex", true) == regex;
    };
    if (p.is_null()) throw unsupported("null");
    if (byte_level(p, true)) return pre_tokenizer_kind::gpt2;
    if (p.is_object() && p.value("type", "") == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array() &&
        p["pretokenizers"].size() == 2) {
      const auto& a = p["pretokenizers"][0];
      const auto& b = p["pretokenizers"][1];
      if (a.is_object() && a.value("type", "") == "Digits" && a.value("individual_digits", false) && byte_level(b, true))
        return pre_tokenizer_kind::smollm;
      if (a.is_object() && a.value("type", "") == "Split" && a.contains("pattern") && a["pattern"].is_object() &&
          a["pattern"].value("Regex", "") == detail::llama3_pattern && a.value("behavior", "") == "Isolated" &&
          !a.value("invert", false) && byte_level(b, false))
        return pre_tokenizer_kind::llama3;
    }
    throw unsupported(p.dump().substr(0, 200));
  }

  void build(spec s) {
    source_ = std::move(s.source);
    pre_ = s.pre;
    ignore_merges_ = s.ignore_merges;
    std::size_t size = s.vocab.size();
    for (const auto& a : s.added) size = std::max(size, static_cast<std::size_t>(a.id) + 1);
    tokens_ = std::move(s.vocab);
    tokens_.resize(size);
    bytes_.assign(size, std::string());
    present_.assign(size, false);
    in_vocab_.assign(size, false);
    special_.assign(size, false);
    byte_ids_.fill(-1);
    token_ids_.reserve(size);
    const auto& byte_map = byte_to_code_point();
    std::array<std::string, 256> byte_spelling;
    for (int b = 0; b < 256; ++b) append_utf8(byte_spelling[static_cast<std::size_t>(b)], byte_map[static_cast<std::size_t>(b)]);
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      if (tokens_[i].empty()) continue;
      present_[i] = in_vocab_[i] = true;
      const auto id = static_cast<token_id>(i);
      token_ids_.emplace(tokens_[i], id);  // the first id wins when a list repeats a token
      if (!byte_level_to_bytes(tokens_[i], bytes_[i])) bytes_[i] = tokens_[i];
      raw_ids_.emplace(bytes_[i], id);
    }
    for (int b = 0; b < 256; ++b)
      if (auto it = token_ids_.find(byte_spelling[static_cast<std::size_t>(b)]); it != token_ids_.end())
        byte_ids_[static_cast<std::size_t>(b)] = it->second;
    for (auto& a : s.added) {
      const auto i = static_cast<std::size_t>(a.id);
      if (a.content.empty()) throw validation_error(source_ + ": added token " + std::to_string(a.id) + " has empty content");
      if (in_vocab_[i] && tokens_[i] != a.content)
        throw validation_error(source_ + ": added token \"" + a.content + "\" has id " + std::to_string(a.id) +
                               ", which the vocabulary gives to \"" + tokens_[i] + "\"");
      tokens_[i] = a.content;
      bytes_[i] = a.content;
      present_[i] = true;
      special_[i] = a.special;
      token_ids_.insert_or_assign(a.content, a.id);
      added_first_bytes_[static_cast<unsigned char>(a.content[0])] = true;
    }
    added_ = std::move(s.added);
    added_by_length_ = added_;
    std::stable_sort(added_by_length_.begin(), added_by_length_.end(),
                     [](const added_token& x, const added_token& y) { return x.content.size() > y.content.size(); });
    if (s.unk_token) {
      auto it = token_ids_.find(*s.unk_token);
      if (it == token_ids_.end())
        throw validation_error(source_ + ": unk_token \"" + *s.unk_token + "\" is not in the vocabulary");
      unk_id_ = it->second;
      unk_token_ = s.unk_token;
    }
    merges_.reserve(s.merges.size());
    merge_list_.reserve(s.merges.size());
    for (std::size_t r = 0; r < s.merges.size(); ++r) {
      const auto& [l, rt] = s.merges[r];
      auto id_of = [&](const std::string& t, const char* side) {
        auto it = token_ids_.find(t);
        if (it == token_ids_.end() || !in_vocab_[static_cast<std::size_t>(it->second)])
          throw validation_error(source_ + ": merge " + std::to_string(r) + " \"" + l + " " + rt + "\": " + side +
                                 " token \"" + t + "\" is not in the vocabulary");
        return it->second;
      };
      const token_id a = id_of(l, "left");
      const token_id b = id_of(rt, "right");
      const std::string joined = l + rt;
      auto it = token_ids_.find(joined);
      if (it == token_ids_.end())
        throw validation_error(source_ + ": merge " + std::to_string(r) + " \"" + l + " " + rt + "\": the merged token \"" +
                               joined + "\" is not in the vocabulary");
      if (merges_.insert(a, b, static_cast<std::uint32_t>(r), it->second)) merge_list_.emplace_back(a, b);
    }
  }

  void encode_into(std::string_view text, std::vector<token_id>& out, word_cache& cache, bool split_special) const {
    if (!split_special || added_.empty()) {
      encode_ordinary(text, out, cache);
      return;
    }
    std::size_t start = 0;
    for (std::size_t pos = 0; pos < text.size(); ++pos) {
      if (!added_first_bytes_[static_cast<unsigned char>(text[pos])]) continue;
      for (const auto& a : added_by_length_) {
        if (text.compare(pos, a.content.size(), a.content) == 0) {
          if (pos > start) encode_ordinary(text.substr(start, pos - start), out, cache);
          out.push_back(a.id);
          start = pos + a.content.size();
          pos = start - 1;
          break;
        }
      }
    }
    if (start < text.size()) encode_ordinary(text.substr(start), out, cache);
  }

  void encode_ordinary(std::string_view text, std::vector<token_id>& out, word_cache& cache) const {
    pre_tokenize(text, pre_, [&](std::string_view word) { encode_word(word, out, cache); });
  }

  void encode_word(std::string_view word, std::vector<token_id>& out, word_cache& cache) const {
    if (word.size() == 1) {
      const token_id id = byte_ids_[static_cast<unsigned char>(word[0])];
      if (id >= 0) out.push_back(id);
      else if (unk_id_) out.push_back(*unk_id_);
      return;
    }
    const std::uint64_t h = word_cache::hash_of(word);
    if (const auto* hit = cache.find(word, h)) {
      const token_id* ids = cache.store.data() + hit->ids_offset;
      out.insert(out.end(), ids, ids + hit->ids_size);
      return;
    }
    const std::size_t before = out.size();
    bpe_word(word, out, cache.work);
    if (word.size() <= 4096) cache.insert(word, h, out.data() + before, out.size() - before);
  }

  /// Appends the BPE ids of one pre-tokenized word.
  void bpe_word(std::string_view word, std::vector<token_id>& out, std::vector<token_id>& sym) const {
    if (ignore_merges_) {
      if (auto it = raw_ids_.find(word); it != raw_ids_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    sym.clear();
    for (char c : word) {
      const token_id id = byte_ids_[static_cast<unsigned char>(c)];
      if (id >= 0) sym.push_back(id);
      else if (unk_id_) sym.push_back(*unk_id_);
    }
    if (sym.size() > 48) {
      bpe_long(sym);
    } else {
      while (sym.size() > 1) {
        std::uint32_t best_rank = ~0u;
        std::size_t best = 0;
        token_id merged = 0;
        for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
          const auto* e = merges_.find(sym[i], sym[i + 1]);
          if (e && e->rank < best_rank) {
            best_rank = e->rank;
            best = i;
            merged = e->merged;
          }
        }
        if (best_rank == ~0u) break;
        sym[best] = merged;
        sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      }
    }
    out.insert(out.end(), sym.begin(), sym.end());
  }

  /// BPE on a long word: a heap of candidate pairs over a linked list, O(n log n).
  void bpe_long(std::vector<token_id>& sym) const {
    const std::size_t n = sym.size();
    std::vector<std::int32_t> prev(n), next(n);
    for (std::size_t i = 0; i < n; ++i) {
      prev[i] = static_cast<std::int32_t>(i) - 1;
      next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
    }
    struct cand {
      std::uint32_t rank;
      std::int32_t left;
      token_id left_id, right_id;
      bool operator>(const cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::vector<cand> heap;
    auto push = [&](std::int32_t l) {
      if (l < 0 || next[static_cast<std::size_t>(l)] < 0) return;
      const token_id a = sym[static_cast<std::size_t>(l)], b = sym[static_cast<std::size_t>(next[static_cast<std::size_t>(l)])];
      if (const auto* e = merges_.find(a, b)) {
        heap.push_back({e->rank, l, a, b});
        std::push_heap(heap.begin(), heap.end(), std::greater<>{});
      }
    };
    for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<std::int32_t>(i));
    std::vector<bool> dead(n, false);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
      const cand c = heap.back();
      heap.pop_back();
      const auto l = static_cast<std::size_t>(c.left);
      if (dead[l] || sym[l] != c.left_id || next[l] < 0) continue;
      const auto r = static_cast<std::size_t>(next[l]);
      if (sym[r] != c.right_id) continue;
      const auto* e = merges_.find(c.left_id, c.right_id);
      sym[l] = e->merged;
      dead[r] = true;
      next[l] = next[r];
      if (next[r] >= 0) prev[static_cast<std::size_t>(next[r])] = static_cast<std::int32_t>(l);
      push(prev[l]);
      push(static_cast<std::int32_t>(l));
    }
    std::size_t w = 0;
    for (std::int32_t i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) sym[w++] = sym[static_cast<std::size_t>(i)];
    sym.resize(w);
  }

  std::string source_;
  pre_tokenizer_kind pre_ = pre_tokenizer_kind::gpt2;
  bool ignore_merges_ = false;
  std::vector<std::string> tokens_;  // spelling by id
  std::vector<std::string> bytes_;   // raw bytes by id
  std::vector<bool> present_, in_vocab_, special_;
  std::unordered_map<std::string, token_id, detail::string_hash, std::equal_to<>> token_ids_;
  std::unordered_map<std::string, token_id, detail::string_hash, std::equal_to<>> raw_ids_;
  std::array<token_id, 256> byte_ids_{};
  std::array<bool, 256> added_first_bytes_{};
  std::vector<added_token> added_, added_by_length_;
  std::optional<token_id> unk_id_;
  std::optional<std::string> unk_token_;
  detail::merge_table merges_;
  std::vector<std::pair<token_id, token_id>> merge_list_;
};

}  // namespace cai
