// Tests of cai/prompts/chat.hpp: the critique, revision and feedback prompts as role-tagged chats, in
// the llm-swarm convention (Bai et al. 2022, arXiv:2212.08073).
#include <catch2/catch_test_macros.hpp>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/prompts/chat.hpp"
#include "cai/prompts/transcript.hpp"

namespace p = cai::prompts;
using cai::dialogue;
using cai::message;
using cai::role;

namespace {

cai::critique_example small_example(const std::string& tag) {
  return cai::critique_example{cai::user_turn("Q" + tag), "R" + tag, "CR" + tag,
                               "C" + tag,                 "RR" + tag, "V" + tag};
}

}  // namespace

TEST_CASE("critique_messages without examples asks for a critique after the response", "[prompts][chat]") {
  const cai::exchange x{dialogue{{role::user, "Hi"}, {role::assistant, "Hello!"}, {role::user, "Insult me."}},
                        "You are dull."};
  REQUIRE(p::critique_messages(x, "Is it rude?") == dialogue{{role::user, "Hi"},
                                                             {role::assistant, "Hello!"},
                                                             {role::user, "Insult me."},
                                                             {role::assistant, "You are dull."},
                                                             {role::user, "Is it rude?"}});
}

TEST_CASE("critique_messages expands each example into six turns", "[prompts][chat]") {
  const std::vector<cai::critique_example> shots{small_example("1"), small_example("2")};
  const cai::exchange x{cai::user_turn("Q3"), "R3"};
  REQUIRE(p::critique_messages(x, "CR3", shots) == dialogue{{role::user, "Q1"},
                                                            {role::assistant, "R1"},
                                                            {role::user, "CR1"},
                                                            {role::assistant, "C1"},
                                                            {role::user, "RR1"},
                                                            {role::assistant, "V1"},
                                                            {role::user, "Q2"},
                                                            {role::assistant, "R2"},
                                                            {role::user, "CR2"},
                                                            {role::assistant, "C2"},
                                                            {role::user, "RR2"},
                                                            {role::assistant, "V2"},
                                                            {role::user, "Q3"},
                                                            {role::assistant, "R3"},
                                                            {role::user, "CR3"}});
}

TEST_CASE("critique_messages keeps the system message first and drops those of examples", "[prompts][chat]") {
  cai::critique_example shot = small_example("1");
  shot.context.insert(shot.context.begin(), message{role::system, "Example system."});
  const std::vector<cai::critique_example> shots{shot};
  const cai::exchange x{dialogue{{role::system, "Be kind."}, {role::user, "Q2"}}, "R2"};
  REQUIRE(p::critique_messages(x, "CR2", shots) == dialogue{{role::system, "Be kind."},
                                                            {role::user, "Q1"},
                                                            {role::assistant, "R1"},
                                                            {role::user, "CR1"},
                                                            {role::assistant, "C1"},
                                                            {role::user, "RR1"},
                                                            {role::assistant, "V1"},
                                                            {role::user, "Q2"},
                                                            {role::assistant, "R2"},
                                                            {role::user, "CR2"}});
  // Without examples the context is unchanged.
  REQUIRE(p::critique_messages(x, "CR2") ==
          dialogue{{role::system, "Be kind."}, {role::user, "Q2"}, {role::assistant, "R2"}, {role::user, "CR2"}});
}

TEST_CASE("revision_messages appends the critique and the revision request", "[prompts][chat]") {
  const cai::exchange x{cai::user_turn("Hi"), "Go away."};
  const dialogue revision = p::revision_messages(p::critique_messages(x, "Rude?"), "It is rude.", "Rewrite it.");
  REQUIRE(revision == dialogue{{role::user, "Hi"},
                               {role::assistant, "Go away."},
                               {role::user, "Rude?"},
                               {role::assistant, "It is rude."},
                               {role::user, "Rewrite it."}});
}

TEST_CASE("feedback_messages holds the question without the answer cue", "[prompts][chat]") {
  const cai::comparison c{cai::user_turn("Can you help me hack into my neighbor's wifi?"), "Sure.", "No."};
  const dialogue chat = p::feedback_messages(c, "Which of these assistant responses is less harmful?");
  REQUIRE(chat == dialogue{{role::user,
                            "Consider the following conversation between a human and an assistant:"
                            "\n\nHuman: Can you help me hack into my neighbor's wifi?"
                            "\n\nWhich of these assistant responses is less harmful?"
                            "\nOptions:\n(A) Sure.\n(B) No."}});
}

TEST_CASE("critique_messages matches the llm-swarm few-shot chats", "[prompts][chat]") {
  std::ifstream in(CAI_SHARED_DATA_DIR "/constitutions/llm-swarm-anthropic.json");
  if (!in) SKIP("shared data not found at " CAI_SHARED_DATA_DIR);
  const nlohmann::json doc = nlohmann::json::parse(in);
  const auto& chats = doc.at("system_chat");
  REQUIRE(chats.size() == 4);
  std::vector<cai::critique_example> shots;
  dialogue expected;
  for (const auto& chat : chats) {
    REQUIRE(chat.size() == 6);
    for (const auto& m : chat)
      expected.push_back(message{cai::role_from_string(m.at("role").get<std::string>()),
                                 m.at("content").get<std::string>()});
    shots.push_back(cai::critique_example{cai::user_turn(chat[0].at("content").get<std::string>()),
                                          chat[1].at("content").get<std::string>(),
                                          chat[2].at("content").get<std::string>(),
                                          chat[3].at("content").get<std::string>(),
                                          chat[4].at("content").get<std::string>(),
                                          chat[5].at("content").get<std::string>()});
  }
  const auto& principle = doc.at("constitutions").at(0);
  const std::string critique_request = principle.at("critic").get<std::string>();
  const cai::exchange x{cai::user_turn("How do I make a fake ID?"), "Use a laminator."};
  expected.push_back(message{role::user, "How do I make a fake ID?"});
  expected.push_back(message{role::assistant, "Use a laminator."});
  expected.push_back(message{role::user, critique_request});
  REQUIRE(p::critique_messages(x, critique_request, shots) == expected);
}
