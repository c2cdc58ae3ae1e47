/// @file model/bpe_trainer.hpp
/// Training a small byte-level BPE vocabulary on a text corpus (Sennrich et al. 2016, arXiv:1508.07909,
/// in GPT-2's byte-level form, Radford et al. 2019). The corpus is cut into words by one of the
/// pre-tokenizers of unicode.hpp; the 256 byte tokens start the vocabulary (after the special tokens);
/// then the most frequent adjacent pair is merged, again and again, until the vocabulary has the size
/// asked for or no pair occurs `min_frequency` times. Ties go to the pair with the smaller ids, so a run
/// is deterministic. The result is a bpe_tokenizer, which save_tokenizer_json() writes as a
/// tokenizer.json that Hugging Face tokenizers loads.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cai/error.hpp"
#include "cai/model/tokenizer.hpp"
#include "cai/model/unicode.hpp"

namespace cai {

/// What train_bpe builds.
struct bpe_trainer_options {
  std::size_t vocab_size = 1000;               ///< special tokens + 256 bytes + merges, at most
  std::size_t min_frequency = 2;               ///< a pair seen fewer times is not merged
  std::vector<std::string> special_tokens{};   ///< ids 0.. in this order, e.g. {"<|endoftext|>"}
  pre_tokenizer_kind pre = pre_tokenizer_kind::gpt2;
};

/// Trains a byte-level BPE tokenizer on `corpus` (each string one document; special tokens in the text
/// are split out and not learned from).
/// @throws config_error when vocab_size cannot hold the special tokens and the 256 bytes.
[[nodiscard]] inline bpe_tokenizer train_bpe(std::span<const std::string> corpus, const bpe_trainer_options& options) {
  const std::size_t base = options.special_tokens.size() + 256;
  if (options.vocab_size < base)
    throw config_error("train_bpe: vocab_size " + std::to_string(options.vocab_size) + " is smaller than the " +
                       std::to_string(options.special_tokens.size()) + " special tokens plus 256 byte tokens");

  // 1. Vocabulary: special tokens, then the bytes in the order of their byte-level characters.
  bpe_tokenizer::spec s;
  s.pre = options.pre;
  s.source = "train_bpe";
  std::unordered_map<std::string, token_id, detail::string_hash, std::equal_to<>> ids;
  for (const auto& t : options.special_tokens) {
    if (t.empty() || ids.count(t)) throw config_error("train_bpe: special token \"" + t + "\" is empty or repeated");
    const auto id = static_cast<token_id>(s.vocab.size());
    s.added.push_back({t, id, true});
    ids.emplace(t, id);
    s.vocab.push_back(t);
  }
  std::array<token_id, 256> byte_id{};
  {
    std::vector<std::pair<std::uint32_t, int>> order;
    for (int b = 0; b < 256; ++b) order.emplace_back(byte_to_code_point()[static_cast<std::size_t>(b)], b);
    std::sort(order.begin(), order.end());
    for (const auto& [cp, b] : order) {
      std::string t;
      append_utf8(t, cp);
      const auto id = static_cast<token_id>(s.vocab.size());
      byte_id[static_cast<std::size_t>(b)] = id;
      ids.emplace(t, id);
      s.vocab.push_back(std::move(t));
    }
  }

  // 2. Word counts, special tokens split out.
  std::unordered_map<std::string, std::uint64_t, detail::string_hash, std::equal_to<>> word_counts;
  auto count_words = [&](std::string_view text) {
    pre_tokenize(text, options.pre, [&](std::string_view w) {
      if (auto it = word_counts.find(w); it != word_counts.end()) ++it->second;
      else word_counts.emplace(std::string(w), 1);
    });
  };
  for (const auto& doc : corpus) {
    std::string_view rest = doc;
    while (!rest.empty()) {
      std::size_t cut = rest.size(), len = 0;
      for (const auto& t : options.special_tokens)
        if (auto p = rest.find(t); p < cut) cut = p, len = t.size();
      count_words(rest.substr(0, cut));
      rest.remove_prefix(std::min(rest.size(), cut + len));
    }
  }
  std::vector<std::vector<token_id>> words;
  std::vector<std::uint64_t> counts;
  words.reserve(word_counts.size());
  for (const auto& [w, c] : word_counts) {
    std::vector<token_id> sym;
    sym.reserve(w.size());
    for (char ch : w) sym.push_back(byte_id[static_cast<unsigned char>(ch)]);
    words.push_back(std::move(sym));
    counts.push_back(c);
  }
  // Deterministic order of words (the hash map's is not).
  {
    std::vector<std::size_t> perm(words.size());
    for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = i;
    std::sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) { return words[a] < words[b]; });
    std::vector<std::vector<token_id>> w2;
    std::vector<std::uint64_t> c2;
    for (std::size_t i : perm) w2.push_back(std::move(words[i])), c2.push_back(counts[i]);
    words = std::move(w2);
    counts = std::move(c2);
  }

  // 3. Pair counts, the words each pair occurs in, and a max-heap of (count, pair) with lazy updates.
  auto key = [](token_id a, token_id b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  };
  std::unordered_map<std::uint64_t, std::int64_t> pair_count;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> where;
  struct item {
    std::int64_t count;
    std::uint64_t pair;
    bool operator<(const item& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::priority_queue<item> heap;
  for (std::uint32_t w = 0; w < words.size(); ++w)
    for (std::size_t i = 0; i + 1 < words[w].size(); ++i) {
      const auto k = key(words[w][i], words[w][i + 1]);
      pair_count[k] += static_cast<std::int64_t>(counts[w]);
      auto& list = where[k];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  for (const auto& [k, c] : pair_count) heap.push({c, k});

  // 4. Merge the most frequent pair until the vocabulary is full.
  std::vector<std::uint32_t> stamp(words.size(), 0);
  std::uint32_t round = 0;
  while (s.vocab.size() < options.vocab_size && !heap.empty()) {
    const item top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.pair);
    const std::int64_t now = it == pair_count.end() ? 0 : it->second;
    if (now != top.count) {
      if (now > 0) heap.push({now, top.pair});
      continue;
    }
    if (now < static_cast<std::int64_t>(options.min_frequency) || now <= 0) break;
    const auto a = static_cast<token_id>(top.pair >> 32), b = static_cast<token_id>(top.pair & 0xFFFFFFFFu);
    const std::string joined = s.vocab[static_cast<std::size_t>(a)] + s.vocab[static_cast<std::size_t>(b)];
    token_id merged;
    if (auto found = ids.find(joined); found != ids.end()) {
      merged = found->second;
    } else {
      merged = static_cast<token_id>(s.vocab.size());
      ids.emplace(joined, merged);
      s.vocab.push_back(joined);
    }
    s.merges.emplace_back(s.vocab[static_cast<std::size_t>(a)], s.vocab[static_cast<std::size_t>(b)]);
    ++round;
    const std::vector<std::uint32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    for (std::uint32_t w : affected) {
      if (stamp[w] == round) continue;
      stamp[w] = round;
      auto& sym = words[w];
      const auto c = static_cast<std::int64_t>(counts[w]);
      bool has = false;
      for (std::size_t i = 0; i + 1 < sym.size() && !has; ++i) has = sym[i] == a && sym[i + 1] == b;
      if (!has) continue;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) pair_count[key(sym[i], sym[i + 1])] -= c;
      std::size_t out = 0;
      for (std::size_t i = 0; i < sym.size(); ++out) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          sym[out] = merged;
          i += 2;
        } else {
          sym[out] = sym[i];
          ++i;
        }
      }
      sym.resize(out);
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto k = key(sym[i], sym[i + 1]);
        const std::int64_t updated = pair_count[k] += c;
        if (k != top.pair) {
          auto& list = where[k];
          if (list.empty() || list.back() != w) list.push_back(w);
          heap.push({updated, k});
        }
      }
    }
    pair_count.erase(top.pair);
  }
  return bpe_tokenizer(std::move(s));
}

}  // namespace cai
