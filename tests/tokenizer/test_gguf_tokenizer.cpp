// The tokenizer of SmolLM2-135M-Instruct built straight from its GGUF file's metadata (cai/model/gguf.hpp
// reads tokenizer.ggml.*; bpe_tokenizer's list constructor builds it) against the ids that Hugging Face
// tokenizers gives, and its chat template recognised as ChatML. Skipped when the model is not in
// ${CAI_MODEL_CACHE:-$HOME/.cache/cai} (scripts/fetch-smollm2 puts it there).
#include <catch2/catch_test_macros.hpp>

#include <string>
#include <vector>

#include "cai/model/chat_template.hpp"
#include "cai/model/gguf.hpp"
#include "cai/model/tokenizer.hpp"
#include "fixtures.hpp"

TEST_CASE("SmolLM2 read from its GGUF file encodes as Hugging Face tokenizers does", "[tokenizer][smollm2][gguf]") {
  const auto path = tok_test::model_cache() / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) SKIP("no " << path << ": run scripts/fetch-smollm2");
  const cai::gguf_file file(path);
  const auto meta = cai::read_tokenizer_metadata(file);
  REQUIRE(meta.model == "gpt2");
  CHECK(meta.pre == "smollm");
  const auto tok = cai::bpe_tokenizer::from_gguf_metadata(meta, path.string());
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.pre_tokenizer() == cai::pre_tokenizer_kind::smollm);
  const auto fx = tok_test::load_json(tok_test::data_dir() / "smollm2_expected.json");
  for (std::size_t i = 0; i < fx["texts"].size(); ++i) {
    const std::string text = fx["texts"][i].get<std::string>();
    INFO("text " << i << ": " << text);
    CHECK(tok.encode(text) == fx["ids"][i].get<std::vector<cai::token_id>>());
  }
  const auto chat = cai::chat_template_from_jinja(meta.chat_template);
  REQUIRE(chat.has_value());
  CHECK(chat->default_system() == cai::chatml_template::smollm2().default_system());
  const auto ids = tok.encode(chat->render({{"user", "Hi"}}));
  REQUIRE(meta.bos_token_id.has_value());
  CHECK(ids.front() == 1);  // <|im_start|>
}

TEST_CASE("GGUF metadata of a SentencePiece vocabulary is refused with the file named", "[tokenizer][gguf][errors]") {
  struct fake_metadata {
    std::string model = "llama", pre;
    std::vector<std::string> tokens{"<unk>", "a"}, merges;
    std::vector<std::int32_t> token_types;
  };
  try {
    (void)cai::bpe_tokenizer::from_gguf_metadata(fake_metadata{}, "model.gguf");
    FAIL("no error");
  } catch (const cai::config_error& e) {
    CHECK(std::string(e.what()).find("model.gguf: tokenizer.ggml.model is \"llama\"") != std::string::npos);
  }
}
