// Tests of cai/feedback/pairs.hpp: two samples per prompt from a policy, with their own seeds and
// sampling settings, cleaned, as comparisons ready to label.
#include <catch2/catch_test_macros.hpp>

#include <string>
#include <vector>

#include "cai/feedback/pairs.hpp"

namespace {
/// Answers with the seed and temperature it was given, then runs on into a new turn.
struct echo_policy {
  std::vector<cai::generation_request> seen;
  int calls = 0;
  std::vector<std::string> generate(std::span<const cai::generation_request> requests) {
    ++calls;
    std::vector<std::string> out;
    for (const auto& r : requests) {
      seen.push_back(r);
      out.push_back(" seed " + std::to_string(r.options.seed % 1000) + " t " + std::to_string(r.options.temperature) +
                    "\n\nHuman: and more");
    }
    return out;
  }
};
}  // namespace

TEST_CASE("sample_pairs asks the policy for two differently seeded answers per prompt", "[feedback][pairs]") {
  STATIC_REQUIRE(cai::language_model<echo_policy>);
  echo_policy policy;
  const std::vector<cai::dialogue> contexts{cai::user_turn("How do I pick a lock?"), cai::user_turn("Hi")};
  cai::pair_options o;
  o.seed = 5;
  o.second.temperature = 0.7;
  const auto pairs = cai::sample_pairs(policy, std::span<const cai::dialogue>(contexts), o);
  CHECK(policy.calls == 1);
  REQUIRE(policy.seen.size() == 4);
  CHECK(policy.seen[0].prompt == "\n\nHuman: How do I pick a lock?\n\nAssistant:");
  CHECK(policy.seen[1].prompt == policy.seen[0].prompt);
  CHECK(policy.seen[0].options.seed == cai::derive_seed(5, {0, 0}));
  CHECK(policy.seen[1].options.seed == cai::derive_seed(5, {0, 1}));
  CHECK(policy.seen[3].options.seed == cai::derive_seed(5, {1, 1}));
  CHECK(policy.seen[1].options.temperature == 0.7);
  CHECK(policy.seen[0].messages.empty());
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0].context == contexts[0]);
  CHECK(pairs[0].response_a == "seed " + std::to_string(cai::derive_seed(5, {0, 0}) % 1000) + " t 1.000000");
  CHECK(pairs[0].response_b == "seed " + std::to_string(cai::derive_seed(5, {0, 1}) % 1000) + " t 0.700000");

  SECTION("the pair of a prompt does not depend on the batch") {
    echo_policy again;
    const auto tail = cai::sample_pairs(again, std::span<const cai::dialogue>(contexts).subspan(1), o, 1);
    REQUIRE(tail.size() == 1);
    CHECK(tail[0] == pairs[1]);
  }
  SECTION("chat models get the dialogue as messages") {
    o.chat_messages = true;
    echo_policy chat;
    (void)cai::sample_pairs(chat, std::span<const cai::dialogue>(contexts), o);
    CHECK(chat.seen[0].messages == contexts[0]);
  }
}
