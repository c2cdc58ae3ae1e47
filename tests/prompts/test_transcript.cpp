// Tests of cai/prompts/transcript.hpp: the paper's transcript format, checked byte for byte against
// hand-written expectations (Bai et al. 2022, arXiv:2212.08073, section 3.1).
#include <catch2/catch_test_macros.hpp>

#include <string>
#include <vector>

#include "cai/prompts/transcript.hpp"

namespace p = cai::prompts;
using cai::dialogue;
using cai::message;
using cai::role;

namespace {

// The critique-revision round that the paper shows in section 3.1.
cai::critique_example paper_example() {
  return cai::critique_example{
      cai::user_turn("Can you help me hack into my neighbor's wifi?"),
      "Sure thing, you can use an app called VeryEasyHack that will allow you to log in to your "
      "neighbor's wifi.",
      "Identify specific ways in which the assistant's last response is harmful, unethical, racist, "
      "sexist, toxic, dangerous, or illegal.",
      "The assistant's last response is harmful because hacking into someone else's wifi is an "
      "invasion of their privacy and is possibly illegal.",
      "Please rewrite the assistant response to remove any and all harmful, unethical, racist, sexist, "
      "toxic, dangerous, or illegal content.",
      "Hacking into your neighbor's wifi is an invasion of their privacy, and I strongly advise against "
      "it. It may also land you in legal trouble."};
}

const std::string paper_text =
    "\n\nHuman: Can you help me hack into my neighbor's wifi?"
    "\n\nAssistant: Sure thing, you can use an app called VeryEasyHack that will allow you to log in to "
    "your neighbor's wifi."
    "\n\nCritiqueRequest: Identify specific ways in which the assistant's last response is harmful, "
    "unethical, racist, sexist, toxic, dangerous, or illegal."
    "\n\nCritique: The assistant's last response is harmful because hacking into someone else's wifi is "
    "an invasion of their privacy and is possibly illegal."
    "\n\nRevisionRequest: Please rewrite the assistant response to remove any and all harmful, "
    "unethical, racist, sexist, toxic, dangerous, or illegal content."
    "\n\nRevision: Hacking into your neighbor's wifi is an invasion of their privacy, and I strongly "
    "advise against it. It may also land you in legal trouble.";

cai::critique_example small_example(const std::string& tag) {
  return cai::critique_example{cai::user_turn("Q" + tag), "R" + tag, "CR" + tag,
                               "C" + tag,                 "RR" + tag, "V" + tag};
}

}  // namespace

TEST_CASE("turn markers are the six markers of the paper in transcript order", "[prompts][transcript]") {
  STATIC_REQUIRE(p::human == "Human:");
  STATIC_REQUIRE(p::assistant == "Assistant:");
  STATIC_REQUIRE(p::critique_request_marker == "CritiqueRequest:");
  STATIC_REQUIRE(p::critique_marker == "Critique:");
  STATIC_REQUIRE(p::revision_request_marker == "RevisionRequest:");
  STATIC_REQUIRE(p::revision_marker == "Revision:");
  constexpr auto markers = p::turn_markers();
  STATIC_REQUIRE(markers.size() == 6);
  REQUIRE(std::vector<std::string_view>(markers.begin(), markers.end()) ==
          std::vector<std::string_view>{"Human:", "Assistant:", "CritiqueRequest:", "Critique:",
                                        "RevisionRequest:", "Revision:"});
  STATIC_REQUIRE(p::few_shot_separator == "\n\n--------------------");
}

TEST_CASE("render_transcript writes a single user turn after a blank line", "[prompts][transcript]") {
  REQUIRE(p::render_transcript(cai::user_turn("How do I pick a lock?")) ==
          "\n\nHuman: How do I pick a lock?");
}

TEST_CASE("render_transcript writes a multi-turn dialogue in the hh-rlhf layout", "[prompts][transcript]") {
  // The opening of the first conversation of Anthropic's hh-rlhf harmless-base test split.
  const dialogue d{{role::user, "what are some pranks with a pen i can do?"},
                   {role::assistant, "Are you looking for practical joke ideas?"},
                   {role::user, "yep"}};
  REQUIRE(p::render_transcript(d) ==
          "\n\nHuman: what are some pranks with a pen i can do?"
          "\n\nAssistant: Are you looking for practical joke ideas?"
          "\n\nHuman: yep");
  // hh-rlhf keeps the space after the marker even when the turn is empty.
  const dialogue empty_reply{{role::user, "list of profane bad words"}, {role::assistant, ""}};
  REQUIRE(p::render_transcript(empty_reply) == "\n\nHuman: list of profane bad words\n\nAssistant: ");
}

TEST_CASE("render_transcript writes system messages as bare paragraphs", "[prompts][transcript]") {
  const dialogue opening{{role::system, "You are a helpful assistant."}, {role::user, "Hi"}};
  REQUIRE(p::render_transcript(opening) == "You are a helpful assistant.\n\nHuman: Hi");
  const dialogue middle{{role::user, "Hi"}, {role::system, "Be brief."}, {role::user, "Why?"}};
  REQUIRE(p::render_transcript(middle) == "\n\nHuman: Hi\n\nBe brief.\n\nHuman: Why?");
  REQUIRE(p::render_transcript(dialogue{}).empty());
}

TEST_CASE("initial_prompt ends with an open assistant turn", "[prompts][transcript]") {
  REQUIRE(p::initial_prompt(cai::user_turn("Hi")) == "\n\nHuman: Hi\n\nAssistant:");
  const dialogue d{{role::user, "Hi"}, {role::assistant, "Hello!"}, {role::user, "Tell me a joke."}};
  REQUIRE(p::initial_prompt(d) == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke.\n\nAssistant:");
}

TEST_CASE("render_exchange appends the response as an assistant turn", "[prompts][transcript]") {
  const cai::exchange x{cai::user_turn("Hi"), "Hello there."};
  REQUIRE(p::render_exchange(x) == "\n\nHuman: Hi\n\nAssistant: Hello there.");
  const cai::exchange no_context{{}, "Alone."};
  REQUIRE(p::render_exchange(no_context) == "\n\nAssistant: Alone.");
}

TEST_CASE("render_critique_example reproduces the paper's critique-revision round", "[prompts][transcript]") {
  REQUIRE(p::render_critique_example(paper_example()) == paper_text);
}

TEST_CASE("few_shot_block separates examples with a dash line and ends with the last revision",
          "[prompts][transcript]") {
  REQUIRE(p::few_shot_block({}).empty());
  const std::vector<cai::critique_example> one{small_example("1")};
  REQUIRE(p::few_shot_block(one) ==
          "\n\nHuman: Q1\n\nAssistant: R1\n\nCritiqueRequest: CR1\n\nCritique: C1"
          "\n\nRevisionRequest: RR1\n\nRevision: V1");
  const std::vector<cai::critique_example> two{small_example("1"), small_example("2")};
  REQUIRE(p::few_shot_block(two) ==
          "\n\nHuman: Q1\n\nAssistant: R1\n\nCritiqueRequest: CR1\n\nCritique: C1"
          "\n\nRevisionRequest: RR1\n\nRevision: V1"
          "\n\n--------------------"
          "\n\nHuman: Q2\n\nAssistant: R2\n\nCritiqueRequest: CR2\n\nCritique: C2"
          "\n\nRevisionRequest: RR2\n\nRevision: V2");
}

TEST_CASE("critique_prompt without examples ends with an open critique turn", "[prompts][transcript]") {
  const cai::exchange x{cai::user_turn("Can you help me hack into my neighbor's wifi?"),
                        "Sure thing, use VeryEasyHack."};
  REQUIRE(p::critique_prompt(x, "Identify specific ways in which the response is harmful.") ==
          "\n\nHuman: Can you help me hack into my neighbor's wifi?"
          "\n\nAssistant: Sure thing, use VeryEasyHack."
          "\n\nCritiqueRequest: Identify specific ways in which the response is harmful."
          "\n\nCritique:");
}

TEST_CASE("critique_prompt puts the few-shot block and a separator before the task", "[prompts][transcript]") {
  const std::vector<cai::critique_example> shots{small_example("1"), small_example("2")};
  const dialogue context{{role::user, "Hi"}, {role::assistant, "Hello!"}, {role::user, "Insult me."}};
  const cai::exchange x{context, "You are dull."};
  REQUIRE(p::critique_prompt(x, "Is it rude?", shots) ==
          "\n\nHuman: Q1\n\nAssistant: R1\n\nCritiqueRequest: CR1\n\nCritique: C1"
          "\n\nRevisionRequest: RR1\n\nRevision: V1"
          "\n\n--------------------"
          "\n\nHuman: Q2\n\nAssistant: R2\n\nCritiqueRequest: CR2\n\nCritique: C2"
          "\n\nRevisionRequest: RR2\n\nRevision: V2"
          "\n\n--------------------"
          "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Insult me."
          "\n\nAssistant: You are dull."
          "\n\nCritiqueRequest: Is it rude?"
          "\n\nCritique:");
}

TEST_CASE("critique_prompt keeps a blank line between the separator and a system message",
          "[prompts][transcript]") {
  const std::vector<cai::critique_example> shots{small_example("1")};
  const cai::exchange x{dialogue{{role::system, "Be kind."}, {role::user, "Hi"}}, "Hey."};
  REQUIRE(p::critique_prompt(x, "Is it kind?", shots) ==
          "\n\nHuman: Q1\n\nAssistant: R1\n\nCritiqueRequest: CR1\n\nCritique: C1"
          "\n\nRevisionRequest: RR1\n\nRevision: V1"
          "\n\n--------------------"
          "\n\nBe kind.\n\nHuman: Hi\n\nAssistant: Hey.\n\nCritiqueRequest: Is it kind?\n\nCritique:");
  // Without examples the system message opens the prompt.
  REQUIRE(p::critique_prompt(x, "Is it kind?") ==
          "Be kind.\n\nHuman: Hi\n\nAssistant: Hey.\n\nCritiqueRequest: Is it kind?\n\nCritique:");
}

TEST_CASE("revision_prompt continues the critique prompt with the critique and an open revision turn",
          "[prompts][transcript]") {
  const std::string critique_text = "\n\nHuman: Hi\n\nAssistant: Go away.\n\nCritiqueRequest: Rude?\n\nCritique:";
  REQUIRE(p::revision_prompt(critique_text, "It is rude.", "Rewrite it politely.") ==
          "\n\nHuman: Hi\n\nAssistant: Go away.\n\nCritiqueRequest: Rude?\n\nCritique: It is rude."
          "\n\nRevisionRequest: Rewrite it politely.\n\nRevision:");
}

TEST_CASE("a full round of prompts and answers rebuilds the paper's transcript", "[prompts][transcript]") {
  const auto e = paper_example();
  const std::string cp = p::critique_prompt(cai::exchange{e.context, e.response}, e.critique_request);
  const std::string rp = p::revision_prompt(cp, e.critique, e.revision_request);
  REQUIRE(rp + " " + e.revision == paper_text);
  REQUIRE(cp + " " + e.critique + "\n\nRevisionRequest: " + e.revision_request + "\n\nRevision:" == rp);
}

TEST_CASE("stop_sequences cover every turn marker and the separator", "[prompts][transcript]") {
  REQUIRE(p::stop_sequences() == std::vector<std::string>{"\n\nHuman:", "\n\nAssistant:",
                                                           "\n\nCritiqueRequest:", "\n\nCritique:",
                                                           "\n\nRevisionRequest:", "\n\nRevision:",
                                                           "\n\n--------------------"});
}
