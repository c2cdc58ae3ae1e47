// Tests of the errors of cai/model/tokenizer.hpp: malformed tokenizer files give cai::error messages that
// name the file and what is wrong (line:column for JSON syntax).
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <string>

#include "cai/model/tokenizer.hpp"
#include "fixtures.hpp"

using Catch::Matchers::ContainsSubstring;

namespace {
// A tiny valid tokenizer.json; `model` replaces the model object.
std::string tokenizer_json(const std::string& model, const std::string& extra = "") {
  return R"({"version": "1.0", "added_tokens": [], "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "decoder": {"type": "ByteLevel"},)" + extra + R"( "model": )" + model + "}";
}
const std::string good_model = R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

std::string message_of(const std::string& name, const std::string& content) {
  const auto path = tok_test::write_file(name, content);
  try {
    (void)cai::bpe_tokenizer::from_tokenizer_json(path);
  } catch (const cai::error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("A minimal tokenizer.json loads and merges", "[tokenizer][errors]") {
  const auto path = tok_test::write_file("ok.json", tokenizer_json(good_model));
  const auto tok = cai::bpe_tokenizer::from_tokenizer_json(path);
  CHECK(tok.encode("ab") == std::vector<cai::token_id>{2});
  CHECK(tok.encode("ba") == std::vector<cai::token_id>{1, 0});
  CHECK(tok.encode("c").empty());  // no token for the byte and no unk_token: dropped as Hugging Face does
}

TEST_CASE("Bad JSON syntax names the file line and column", "[tokenizer][errors]") {
  const auto what = message_of("bad-syntax.json", "{\n  \"model\": {\n    \"type\": \"BPE\",,\n}");
  CHECK_THAT(what, ContainsSubstring("bad-syntax.json:3:"));
  CHECK_THAT(what, ContainsSubstring("invalid JSON"));
}

TEST_CASE("A merge of an unknown token names the merge and the token", "[tokenizer][errors]") {
  const auto what = message_of("bad-merge.json",
                               tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a c"]})"));
  CHECK_THAT(what, ContainsSubstring("bad-merge.json"));
  CHECK_THAT(what, ContainsSubstring("merge 0 \"a c\""));
  CHECK_THAT(what, ContainsSubstring("\"c\" is not in the vocabulary"));
  const auto what2 = message_of("bad-merge2.json",
                                tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]})"));
  CHECK_THAT(what2, ContainsSubstring("merged token \"ab\" is not in the vocabulary"));
}

TEST_CASE("Duplicate and out of range vocabulary ids are named", "[tokenizer][errors]") {
  const auto dup = message_of("dup.json", tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []})"));
  CHECK_THAT(dup, ContainsSubstring("dup.json"));
  CHECK_THAT(dup, ContainsSubstring("id 0 is given to both"));
  const auto range = message_of("range.json", tokenizer_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 7}, "merges": []})"));
  CHECK_THAT(range, ContainsSubstring("range.json"));
  CHECK_THAT(range, ContainsSubstring("\"b\" has id 7, out of range"));
  const auto neg = message_of("neg.json", tokenizer_json(R"({"type": "BPE", "vocab": {"a": -1}, "merges": []})"));
  CHECK_THAT(neg, ContainsSubstring("out of range"));
}

TEST_CASE("Missing fields and unsupported features are named", "[tokenizer][errors]") {
  CHECK_THAT(message_of("no-model.json", R"({"version": "1.0"})"), ContainsSubstring("missing object field \"model\""));
  CHECK_THAT(message_of("no-vocab.json", tokenizer_json(R"({"type": "BPE", "merges": []})")),
             ContainsSubstring("no-vocab.json: missing object field \"model.vocab\""));
  CHECK_THAT(message_of("no-merges.json", tokenizer_json(R"({"type": "BPE", "vocab": {}})")),
             ContainsSubstring("missing array field \"model.merges\""));
  CHECK_THAT(message_of("wordpiece.json", tokenizer_json(R"({"type": "WordPiece", "vocab": {}})")),
             ContainsSubstring("model.type is \"WordPiece\""));
  CHECK_THAT(message_of("added.json", tokenizer_json(good_model, R"( "added_tokens": [{"content": "x"}],)")),
             ContainsSubstring("added_tokens[0] needs an integer \"id\""));
  const auto typed = message_of("typed.json", tokenizer_json(R"({"type": "BPE", "byte_fallback": "no", "vocab": {}, "merges": []})"));
  CHECK_THAT(typed, ContainsSubstring("typed.json: a field has the wrong type"));
  const auto norm = message_of("norm.json", R"({"normalizer": {"type": "NFC"}, "pre_tokenizer": null, "model": )" + good_model + "}");
  CHECK_THAT(norm, ContainsSubstring("normalizer"));
}

TEST_CASE("GPT-2 files that do not parse name the file", "[tokenizer][errors]") {
  const auto enc = tok_test::write_file("encoder.json", R"({"a": 0, "b": 1, "ab": 2})");
  const auto bad = tok_test::write_file("vocab.bpe", "#version: 0.2\na b\nab\n");
  try {
    (void)cai::bpe_tokenizer::from_gpt2_files(enc, bad);
    FAIL("no error");
  } catch (const cai::parse_error& e) {
    CHECK_THAT(std::string(e.what()), ContainsSubstring("vocab.bpe:3"));
  }
  CHECK_THROWS_AS(cai::bpe_tokenizer::from_gpt2_files(enc, tok_test::temp_dir() / "absent.bpe"), cai::io_error);
}

TEST_CASE("GGUF lists with an unknown pre-tokenizer or bad merges are rejected", "[tokenizer][errors][gguf]") {
  const std::vector<std::string> tokens{"a", "b", "ab"};
  CHECK_THROWS_AS(cai::bpe_tokenizer(tokens, {"a b"}, {}, "qwen2"), cai::config_error);
  CHECK_THROWS_AS(cai::bpe_tokenizer(tokens, {"ab"}, {}, "gpt2"), cai::validation_error);
  CHECK_THROWS_AS(cai::bpe_tokenizer(tokens, {"a b"}, {1, 1}, "gpt2"), cai::validation_error);
  const cai::bpe_tokenizer tok(tokens, {"a b"}, {1, 1, 1}, "gpt2");
  CHECK(tok.encode("abab") == std::vector<cai::token_id>{2, 2});
}

TEST_CASE("ignore_merges takes a whole word from the vocabulary as Hugging Face does", "[tokenizer][json]") {
  // Expected ids from HF tokenizers 0.23.3 on the same file (Tokenizer.from_str).
  const std::string model_on =
      R"({"type": "BPE", "ignore_merges": true, "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5, "ca": 6},
          "merges": ["b c", "a b"]})";
  std::string model_off = model_on;
  model_off.replace(model_off.find("true"), 4, "false");
  const auto on = cai::bpe_tokenizer::from_tokenizer_json_text(tokenizer_json(model_on), "on.json");
  const auto off = cai::bpe_tokenizer::from_tokenizer_json_text(tokenizer_json(model_off), "off.json");
  using ids = std::vector<cai::token_id>;
  CHECK(on.encode("abc") == ids{5});
  CHECK(on.encode("abca") == ids{0, 4, 0});
  CHECK(on.encode("cab") == ids{2, 3});
  CHECK(on.encode("ca") == ids{6});
  CHECK(off.encode("abc") == ids{0, 4});
  CHECK(off.encode("ca") == ids{2, 0});
  CHECK(on.to_tokenizer_json()["model"]["ignore_merges"] == true);
}
