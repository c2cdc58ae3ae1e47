// Tests of cai/model/tokenizer.hpp with real vocabularies: GPT-2 from the shared encoder.json + vocab.bpe
// and SmolLM2-135M-Instruct, against the ids that Hugging Face tokenizers gives (committed fixtures made
// by tests/data/tokenizer/gen_expected.py), and round trips of arbitrary bytes.
#include <catch2/catch_test_macros.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cai/model/tokenizer.hpp"
#include "fixtures.hpp"

namespace {
void check_fixture(const cai::bpe_tokenizer& tok, const nlohmann::json& fx) {
  const auto& texts = fx["texts"];
  REQUIRE(texts.size() == fx["ids"].size());
  REQUIRE(texts.size() > 100);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const auto want = fx["ids"][i].get<std::vector<cai::token_id>>();
    INFO("text " << i << ": " << text);
    const auto got = tok.encode(text);
    CHECK(got == want);
    CHECK(tok.decode(got) == text);
  }
}
}  // namespace

TEST_CASE("GPT-2 encoding matches Hugging Face tokenizers token for token", "[tokenizer][gpt2]") {
  check_fixture(tok_test::gpt2(), tok_test::load_json(tok_test::data_dir() / "gpt2_expected.json"));
}

TEST_CASE("GPT-2 encodes a known sentence to its known ids", "[tokenizer][gpt2]") {
  const auto& tok = tok_test::gpt2();
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.encode("Hello world") == std::vector<cai::token_id>{15496, 995});
  CHECK(tok.encode("<|endoftext|>") == std::vector<cai::token_id>{50256});
  CHECK(tok.encode("<|endoftext|>", false).size() > 1);
  CHECK(tok.token_to_id("\xC4\xA0the") == 262);
  CHECK(tok.id_to_token(262) == "\xC4\xA0the");
  CHECK(tok.token_bytes(262) == " the");
}

TEST_CASE("Encoding then decoding gives back any byte string including invalid UTF-8", "[tokenizer][roundtrip]") {
  const auto& tok = tok_test::gpt2();
  std::mt19937 rng(42);
  for (int n = 0; n < 300; ++n) {
    std::string s(static_cast<std::size_t>(rng() % 64), '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  const std::string edge = std::string("\0\xFF\xC3(\xE2\x82 \xF0\x9F\x98", 10) + std::string(300, ' ') + std::string(500, 'z');
  CHECK(tok.decode(tok.encode(edge)) == edge);
}

TEST_CASE("Batched encoding on several threads equals one by one encoding", "[tokenizer][batch]") {
  const auto& tok = tok_test::gpt2();
  const auto fx = tok_test::load_json(tok_test::data_dir() / "gpt2_expected.json");
  const auto texts = fx["texts"].get<std::vector<std::string>>();
  for (std::size_t threads : {std::size_t{1}, std::size_t{3}}) {
    const auto batch = tok.encode_batch(texts, threads);
    REQUIRE(batch.size() == texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) CHECK(batch[i] == fx["ids"][i].get<std::vector<cai::token_id>>());
  }
  CHECK(tok.encode_batch(std::vector<std::string>{}, 2).empty());
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  const auto from_views = tok.encode_batch(views, 2);
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(from_views[i] == fx["ids"][i].get<std::vector<cai::token_id>>());
}

TEST_CASE("Decode can skip special tokens and rejects unknown ids", "[tokenizer][decode]") {
  const auto& tok = tok_test::gpt2();
  const auto ids = tok.encode("a<|endoftext|>b");
  CHECK(tok.decode(ids) == "a<|endoftext|>b");
  CHECK(tok.decode(ids, true) == "ab");
  CHECK_THROWS_AS(tok.decode(std::vector<cai::token_id>{50257}), cai::config_error);
  CHECK_THROWS_AS(tok.decode(std::vector<cai::token_id>{-1}), cai::config_error);
}

TEST_CASE("A saved tokenizer.json loads back to the same tokenizer", "[tokenizer][json]") {
  const auto& tok = tok_test::gpt2();
  const auto path = tok_test::temp_dir() / "gpt2-tokenizer.json";
  tok.save_tokenizer_json(path);
  const auto back = cai::bpe_tokenizer::from_tokenizer_json(path);
  CHECK(back.vocab_size() == tok.vocab_size());
  CHECK(back.merges() == tok.merges());
  CHECK(back.added_tokens().size() == 1);
  const std::string text = "It's 2024 and <|endoftext|> naïve 😀  ok\n";
  CHECK(back.encode(text) == tok.encode(text));
}

TEST_CASE("SmolLM2 encoding from its tokenizer.json matches Hugging Face tokenizers", "[tokenizer][smollm2]") {
  if (!std::filesystem::exists(tok_test::smollm2_json()))
    SKIP("no " << tok_test::smollm2_json() << ": run scripts/fetch-smollm2 then tests/data/tokenizer/gen_expected.py");
  const auto tok = cai::bpe_tokenizer::from_tokenizer_json(tok_test::smollm2_json());
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.pre_tokenizer() == cai::pre_tokenizer_kind::smollm);
  CHECK(tok.added_tokens().size() == 17);
  check_fixture(tok, tok_test::load_json(tok_test::data_dir() / "smollm2_expected.json"));
}

TEST_CASE("SmolLM2 built from GGUF style token and merge lists matches Hugging Face tokenizers", "[tokenizer][smollm2][gguf]") {
  if (!std::filesystem::exists(tok_test::smollm2_json()))
    SKIP("no " << tok_test::smollm2_json() << ": run scripts/fetch-smollm2 then tests/data/tokenizer/gen_expected.py");
  // The lists as tokenizer.ggml.tokens / merges / token_type hold them.
  const auto j = tok_test::load_json(tok_test::smollm2_json());
  std::vector<std::string> tokens(j["model"]["vocab"].size());
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it) tokens[it.value().get<std::size_t>()] = it.key();
  std::vector<std::string> merges;
  for (const auto& m : j["model"]["merges"]) merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  std::vector<std::int32_t> types(tokens.size(), 1);
  for (const auto& a : j["added_tokens"]) types[a["id"].get<std::size_t>()] = 3;
  const cai::bpe_tokenizer tok(tokens, merges, types, "smollm");
  CHECK(tok.added_tokens().size() == 17);
  check_fixture(tok, tok_test::load_json(tok_test::data_dir() / "smollm2_expected.json"));
}

TEST_CASE("Texts given by the Hugging Face fuzz check are encoded to a file", "[tokenizer][.hf_fuzz]") {
  const char* dir = std::getenv("CAI_TOKENIZER_CHECK_DIR");
  if (dir == nullptr) SKIP("set CAI_TOKENIZER_CHECK_DIR (fuzz_with_hf.py does)");
  const std::filesystem::path folder(dir);
  const auto texts = tok_test::load_json(folder / "texts.json").get<std::vector<std::string>>();
  nlohmann::json out{{"gpt2", tok_test::gpt2().encode_batch(texts, 2)}};
  if (std::filesystem::exists(tok_test::smollm2_json()))
    out["smollm2"] = cai::bpe_tokenizer::from_tokenizer_json(tok_test::smollm2_json()).encode_batch(texts, 2);
  // Llama 3 has no vocabulary here: its pre-tokenizer's pieces, as byte offsets.
  out["llama3_pieces"] = nlohmann::json::array();
  for (const auto& t : texts) {
    std::vector<std::vector<std::size_t>> pieces;
    cai::pre_tokenize(t, cai::pre_tokenizer_kind::llama3, [&](std::string_view p) {
      const auto b = static_cast<std::size_t>(p.data() - t.data());
      pieces.push_back({b, b + p.size()});
    });
    out["llama3_pieces"].push_back(pieces);
  }
  std::ofstream(folder / "cai_ids.json", std::ios::binary) << out.dump();
}
