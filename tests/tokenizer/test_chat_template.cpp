// Tests of cai/model/chat_template.hpp: ChatML rendered natively equals SmolLM2's Jinja template rendered
// by jinja2 (committed fixture from tests/data/tokenizer/gen_expected.py), and the rendered special
// tokens encode to their ids.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "cai/model/chat_template.hpp"
#include "fixtures.hpp"

namespace {
std::vector<cai::chat_message> messages_of(const nlohmann::json& j) {
  std::vector<cai::chat_message> out;
  for (const auto& m : j) out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return out;
}
}  // namespace

TEST_CASE("The SmolLM2 ChatML template renders exactly as its Jinja template does", "[tokenizer][chat]") {
  const auto fx = tok_test::load_json(tok_test::data_dir() / "chat_expected.json");
  const auto from_jinja = cai::chat_template_from_jinja(fx["template"].get<std::string>());
  REQUIRE(from_jinja.has_value());
  CHECK(from_jinja->default_system() == cai::chatml_template::smollm2().default_system());
  for (const auto& c : fx["cases"]) {
    const auto messages = messages_of(c["messages"]);
    const bool gen = c["add_generation_prompt"].get<bool>();
    CHECK(from_jinja->render(messages, gen) == c["rendered"].get<std::string>());
    CHECK(cai::chatml_template::smollm2().render(messages, gen) == c["rendered"].get<std::string>());
  }
}

TEST_CASE("Plain ChatML inserts no system prompt and other templates are not taken for ChatML", "[tokenizer][chat]") {
  const cai::chatml_template plain;
  CHECK(plain.render({{"user", "Hi"}}) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(plain.render({{"user", "Hi"}}, false) == "<|im_start|>user\nHi<|im_end|>\n");
  CHECK(plain.render(std::vector<cai::chat_message>{}, false).empty());
  const auto qwen_like = cai::chat_template_from_jinja(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}");
  REQUIRE(qwen_like.has_value());
  CHECK(!qwen_like->default_system().has_value());
  CHECK(!cai::chat_template_from_jinja("{{ bos_token }}[INST] {{ message['content'] }} [/INST]").has_value());
}

TEST_CASE("A rendered SmolLM2 conversation encodes its turn markers as special tokens", "[tokenizer][chat][smollm2]") {
  if (!std::filesystem::exists(tok_test::smollm2_json()))
    SKIP("no " << tok_test::smollm2_json() << ": run scripts/fetch-smollm2 then tests/data/tokenizer/gen_expected.py");
  const auto tok = cai::bpe_tokenizer::from_tokenizer_json(tok_test::smollm2_json());
  const std::string text = cai::chatml_template::smollm2().render({{"user", "Hi"}});
  const auto ids = tok.encode(text);
  REQUIRE(ids.size() > 4);
  CHECK(ids.front() == 1);  // <|im_start|>
  CHECK(std::count(ids.begin(), ids.end(), 2) == 2);  // <|im_end|> after system and user
  CHECK(tok.decode(ids) == text);
}
