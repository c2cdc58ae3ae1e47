/// @file model/chat_template.hpp
/// Chat templates: how a conversation becomes the one string an instruction-tuned model was trained on.
/// cai implements ChatML (OpenAI 2023), the form SmolLM2, Qwen and many others use:
///
///     <|im_start|>system\nYou are ...<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
///
/// rendered natively (no Jinja engine). `chat_template_from_jinja` recognises a ChatML template in the
/// Jinja text that a model ships (GGUF tokenizer.chat_template, tokenizer_config.json chat_template),
/// including the default system prompt that SmolLM2's template inserts when the conversation has none.
/// The rendered text contains the special tokens verbatim; bpe_tokenizer::encode turns them into ids.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cai/error.hpp"

namespace cai {

/// One turn of a conversation.
struct chat_message {
  std::string role;     ///< "system", "user", "assistant" (any text is accepted)
  std::string content;
};

/// The ChatML chat template.
class chatml_template {
 public:
  /// @param default_system the system prompt inserted before a conversation whose first message is not
  ///        a system message (SmolLM2 does this); none inserts nothing.
  explicit chatml_template(std::optional<std::string> default_system = std::nullopt)
      : default_system_(std::move(default_system)) {}

  /// SmolLM2-Instruct's template (HuggingFaceTB/SmolLM2-*-Instruct).
  [[nodiscard]] static chatml_template smollm2() {
    return chatml_template("You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  }

  /// The conversation as the model reads it; `add_generation_prompt` appends the opening of an assistant
  /// turn, for generating the reply.
  [[nodiscard]] std::string render(std::span<const chat_message> messages, bool add_generation_prompt = true) const {
    std::string out;
    if (default_system_ && !messages.empty() && messages.front().role != "system") append(out, "system", *default_system_);
    for (const auto& m : messages) append(out, m.role, m.content);
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }
  /// render() of a braced list or vector.
  [[nodiscard]] std::string render(const std::vector<chat_message>& messages, bool add_generation_prompt = true) const {
    return render(std::span<const chat_message>(messages), add_generation_prompt);
  }

  [[nodiscard]] const std::optional<std::string>& default_system() const noexcept { return default_system_; }

  /// The text that ends every turn (a stop string for generation).
  [[nodiscard]] static constexpr std::string_view end_of_turn() noexcept { return "<|im_end|>"; }

 private:
  static void append(std::string& out, const std::string& role, const std::string& content) {
    out += "<|im_start|>";
    out += role;
    out += '\n';
    out += content;
    out += "<|im_end|>\n";
  }
  std::optional<std::string> default_system_;
};

/// The ChatML template that the Jinja source `jinja` renders, or nullopt when it is not ChatML.
/// Recognises the default system prompt written as a literal `<|im_start|>system\n...<|im_end|>` in a
/// branch taken when the first message is not a system message.
[[nodiscard]] inline std::optional<chatml_template> chat_template_from_jinja(std::string_view jinja) {
  if (jinja.find("<|im_start|>") == std::string_view::npos || jinja.find("<|im_end|>") == std::string_view::npos)
    return std::nullopt;
  const bool inserts_system = jinja.find("!= 'system'") != std::string_view::npos ||
                              jinja.find("!= \"system\"") != std::string_view::npos;
  if (!inserts_system) return chatml_template();
  for (std::string_view head : {std::string_view("<|im_start|>system\n"), std::string_view("<|im_start|>system\\n")}) {
    const std::size_t at = jinja.find(head);
    if (at == std::string_view::npos) continue;
    const std::size_t begin = at + head.size();
    const std::size_t end = jinja.find("<|im_end|>", begin);
    if (end == std::string_view::npos) break;
    return chatml_template(std::string(jinja.substr(begin, end - begin)));
  }
  return chatml_template();
}

/// Jinja source of `t` in the form Hugging Face tokenizers write in tokenizer_config.json (SmolLM2's
/// layout), which `chat_template_from_jinja` reads back as `t`: what `save_policy`-style writers store so
/// that a fine-tuned chat model keeps its template.
[[nodiscard]] inline std::string chatml_jinja(const chatml_template& t) {
  std::string j = "{% for message in messages %}";
  if (t.default_system())
    j += "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n" + *t.default_system() +
         "<|im_end|>\n' }}{% endif %}";
  j += "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
       "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  return j;
}

}  // namespace cai
