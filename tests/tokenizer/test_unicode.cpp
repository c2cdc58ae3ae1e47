// Tests of cai/model/unicode.hpp: UTF-8 decoding that never fails, the \p{L} \p{N} \s classes, GPT-2's
// byte map, and the GPT-2 / SmolLM / Llama-3 pre-tokenizers against Hugging Face's regex splits.
#include <catch2/catch_test_macros.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "cai/model/unicode.hpp"
#include "fixtures.hpp"

TEST_CASE("decode_utf8 reads valid sequences and takes invalid bytes one at a time", "[tokenizer][unicode]") {
  using cai::decode_utf8;
  CHECK(decode_utf8("A", 0).code_point == 'A');
  CHECK(decode_utf8("\xC3\xA9", 0).code_point == 0xE9);
  CHECK(decode_utf8("\xE4\xB8\x96", 0).code_point == 0x4E16);
  CHECK(decode_utf8("\xF0\x9F\x98\x80", 0).code_point == 0x1F600);
  CHECK(decode_utf8("\xF0\x9F\x98\x80", 0).size == 4);
  for (std::string_view bad : {std::string_view("\x80"), std::string_view("\xC0\xAF"), std::string_view("\xED\xA0\x80"),
                               std::string_view("\xF4\x90\x80\x80"), std::string_view("\xE4\xB8"), std::string_view("\xFF")}) {
    const auto d = decode_utf8(bad, 0);
    CHECK(d.code_point == cai::invalid_code_point);
    CHECK(d.size == 1);
  }
}

TEST_CASE("classify puts letters numbers and white space of several scripts in their classes", "[tokenizer][unicode]") {
  using cai::char_class;
  CHECK(cai::classify('a') == char_class::letter);
  CHECK(cai::classify(0x4E16) == char_class::letter);   // CJK
  CHECK(cai::classify(0x05E9) == char_class::letter);   // Hebrew shin
  CHECK(cai::classify(0x0301) == char_class::other);    // combining acute (Mn)
  CHECK(cai::classify(0x0663) == char_class::number);   // Arabic-Indic three
  CHECK(cai::classify(0x00BD) == char_class::number);   // one half (No)
  CHECK(cai::classify(0x216B) == char_class::number);   // Roman twelve (Nl)
  CHECK(cai::classify(0x00A0) == char_class::space);
  CHECK(cai::classify(0x3000) == char_class::space);
  CHECK(cai::classify(0x2028) == char_class::space);
  CHECK(cai::classify(0x0085) == char_class::space);
  CHECK(cai::classify(0x200B) == char_class::other);    // zero width space is Cf
  CHECK(cai::classify(0x1F600) == char_class::other);   // emoji
  CHECK(cai::classify(cai::invalid_code_point) == char_class::other);
  // Unicode 16.0 additions, as HF tokenizers 0.23 (Oniguruma) classes them.
  CHECK(cai::classify(0x1C89) == char_class::letter);   // CYRILLIC CAPITAL LETTER TJE
  CHECK(cai::classify(0x105C0) == char_class::letter);  // TODHRI LETTER A
  CHECK(cai::classify(0x10D40) == char_class::number);  // GARAY DIGIT ZERO
  CHECK(std::string_view(cai::detail::unicode_tables_version) == "16.0.0");
}

TEST_CASE("The byte level map is a bijection that round trips every byte", "[tokenizer][unicode]") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string level = cai::bytes_to_byte_level(all);
  std::string back;
  REQUIRE(cai::byte_level_to_bytes(level, back));
  CHECK(back == all);
  CHECK(cai::bytes_to_byte_level(" ") == "\xC4\xA0");  // Ġ
  CHECK(cai::bytes_to_byte_level("\n") == "\xC4\x8A");  // Ċ
}

TEST_CASE("The pre-tokenizers cut text exactly where Hugging Face regex splits do", "[tokenizer][unicode]") {
  const auto fx = tok_test::load_json(tok_test::data_dir() / "pretokenize_expected.json");
  const auto& texts = fx["texts"];
  const std::pair<const char*, cai::pre_tokenizer_kind> kinds[] = {
      {"gpt2", cai::pre_tokenizer_kind::gpt2}, {"smollm", cai::pre_tokenizer_kind::smollm}, {"llama3", cai::pre_tokenizer_kind::llama3}};
  for (const auto& [name, kind] : kinds) {
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const std::string text = texts[i].get<std::string>();
      std::vector<std::vector<std::size_t>> got;
      cai::pre_tokenize(text, kind, [&](std::string_view piece) {
        const auto begin = static_cast<std::size_t>(piece.data() - text.data());
        got.push_back({begin, begin + piece.size()});
      });
      const auto want = fx["pieces"][name][i].get<std::vector<std::vector<std::size_t>>>();
      INFO(name << " text " << i << ": " << text);
      CHECK(got == want);
    }
  }
}

TEST_CASE("The pre-tokenizers tile any byte string including invalid UTF-8", "[tokenizer][unicode]") {
  const std::string text = "ab\xFF\xFE 12\xC3 \xE4\xB8\n\n x\x80'S's";
  for (auto kind : {cai::pre_tokenizer_kind::gpt2, cai::pre_tokenizer_kind::smollm, cai::pre_tokenizer_kind::llama3}) {
    std::string joined;
    std::size_t pieces = 0;
    cai::pre_tokenize(text, kind, [&](std::string_view p) {
      CHECK(!p.empty());
      joined += p;
      ++pieces;
    });
    CHECK(joined == text);
    CHECK(pieces > 3);
  }
}
