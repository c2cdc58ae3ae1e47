// Tests of cai/model/bpe_trainer.hpp: a small byte-level BPE vocabulary trained on the shared hh-rlhf
// text compresses it, round-trips any bytes, is deterministic and saves a tokenizer.json that loads back.
// A hidden test case writes a trained tokenizer.json and cai's ids for check_trained_with_hf.py, which
// loads the file with Hugging Face tokenizers (CTest "tokenizer: trained tokenizer.json loads in HF").
#include <catch2/catch_test_macros.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cai/data/gzip.hpp"
#include "cai/model/bpe_trainer.hpp"
#include "fixtures.hpp"

namespace {
/// Documents of the shared hh-rlhf file: the "chosen" texts, `bytes` of them at most.
std::vector<std::string> corpus(std::size_t bytes) {
  std::vector<std::string> docs;
  std::size_t total = 0;
  cai::for_each_gzip_line(std::filesystem::path(CAI_SHARED_DATA_DIR) / "hh-rlhf" / "harmless-base-test.jsonl.gz",
                          [&](std::string_view line, std::size_t) {
                            if (total >= bytes || line.empty()) return;
                            docs.push_back(nlohmann::json::parse(line)["chosen"].get<std::string>());
                            total += docs.back().size();
                          });
  return docs;
}

const cai::bpe_tokenizer& trained() {
  static const cai::bpe_tokenizer tok = [] {
    cai::bpe_trainer_options o;
    o.vocab_size = 800;
    o.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    return cai::train_bpe(corpus(200000), o);
  }();
  return tok;
}
}  // namespace

TEST_CASE("A trained vocabulary has the asked size and compresses its corpus", "[tokenizer][trainer]") {
  const auto& tok = trained();
  CHECK(tok.vocab_size() == 800);
  CHECK(tok.merges().size() == 800 - 3 - 256);
  CHECK(tok.added_tokens().size() == 3);
  CHECK(tok.token_to_id("<|endoftext|>") == 0);
  const auto docs = corpus(20000);
  std::size_t bytes = 0, tokens = 0;
  for (const auto& d : docs) {
    const auto ids = tok.encode(d);
    CHECK(tok.decode(ids) == d);
    bytes += d.size();
    tokens += ids.size();
  }
  CHECK(tokens * 2 < bytes);  // at least two bytes per token on text like the training text
}

TEST_CASE("A trained tokenizer round trips arbitrary bytes and special tokens", "[tokenizer][trainer]") {
  const auto& tok = trained();
  std::mt19937 rng(7);
  for (int n = 0; n < 100; ++n) {
    std::string s(static_cast<std::size_t>(rng() % 80), '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  const auto ids = tok.encode("<|im_start|>user\nHello there<|im_end|>");
  CHECK(ids.front() == 1);
  CHECK(ids.back() == 2);
}

TEST_CASE("Training is deterministic and the saved tokenizer.json loads back identical", "[tokenizer][trainer]") {
  cai::bpe_trainer_options o;
  o.vocab_size = 400;
  const auto docs = corpus(50000);
  const auto a = cai::train_bpe(docs, o);
  const auto b = cai::train_bpe(docs, o);
  CHECK(a.merges() == b.merges());
  const auto path = tok_test::temp_dir() / "trained-400.json";
  a.save_tokenizer_json(path);
  const auto back = cai::bpe_tokenizer::from_tokenizer_json(path);
  CHECK(back.merges() == a.merges());
  for (const auto& d : docs) CHECK(back.encode(d) == a.encode(d));
}

TEST_CASE("Training stops at min_frequency and rejects a vocabulary too small for the bytes", "[tokenizer][trainer]") {
  cai::bpe_trainer_options o;
  o.vocab_size = 10000;
  o.min_frequency = 2;
  const std::vector<std::string> tiny{"abab abab", "xyz"};
  const auto tok = cai::train_bpe(tiny, o);
  CHECK(tok.vocab_size() < 270);
  CHECK(tok.encode(" abab").size() <= 2);
  o.vocab_size = 100;
  CHECK_THROWS_AS(cai::train_bpe(tiny, o), cai::config_error);
}

TEST_CASE("Trained tokenizer files are written for the Hugging Face check", "[tokenizer][trainer][.hf_check]") {
  const char* dir = std::getenv("CAI_TOKENIZER_CHECK_DIR");
  if (dir == nullptr) SKIP("set CAI_TOKENIZER_CHECK_DIR (check_trained_with_hf.py does)");
  const std::filesystem::path out(dir);
  std::filesystem::create_directories(out);
  auto texts = corpus(40000);
  texts.push_back("Numbers 12345, emoji 😀👍🏽, Ünïcödé, 你好世界, tabs\t\tand  spaces   \n\n it's IT'S 1234567");
  texts.push_back("<|im_start|>user\nHi<|im_end|>\n<|endoftext|>");
  const std::pair<const char*, cai::pre_tokenizer_kind> kinds[] = {
      {"gpt2", cai::pre_tokenizer_kind::gpt2}, {"smollm", cai::pre_tokenizer_kind::smollm}, {"llama3", cai::pre_tokenizer_kind::llama3}};
  for (const auto& [name, kind] : kinds) {
    cai::bpe_trainer_options o;
    o.vocab_size = 800;
    o.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    o.pre = kind;
    const auto tok = kind == cai::pre_tokenizer_kind::gpt2 ? trained() : cai::train_bpe(corpus(200000), o);
    tok.save_tokenizer_json(out / (std::string("tokenizer-") + name + ".json"));
    nlohmann::json j{{"texts", texts}, {"ids", nlohmann::json::array()}};
    for (const auto& t : texts) j["ids"].push_back(tok.encode(t));
    std::ofstream(out / (std::string("cai_ids-") + name + ".json"), std::ios::binary) << j.dump();
  }
}

TEST_CASE("Tokenizers trained with the SmolLM and Llama 3 pre-tokenizers save and load back as such", "[tokenizer][trainer][json]") {
  const auto docs = corpus(30000);
  for (auto kind : {cai::pre_tokenizer_kind::smollm, cai::pre_tokenizer_kind::llama3}) {
    cai::bpe_trainer_options o;
    o.vocab_size = 350;
    o.pre = kind;
    const auto tok = cai::train_bpe(docs, o);
    const auto back = cai::bpe_tokenizer::from_tokenizer_json_text(tok.to_tokenizer_json().dump(), "saved.json");
    CHECK(back.pre_tokenizer() == kind);
    CHECK(back.merges() == tok.merges());
    for (const auto& d : docs) CHECK(back.encode(d) == tok.encode(d));
  }
}
