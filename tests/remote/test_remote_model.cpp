// Tests of cai/remote/remote_model.hpp against the fake server (fake_server.py): the request that each
// generation option becomes, chat messages, scoring from echoed log-probabilities with the boundary found
// by text offsets, the scoring probe at construction, and the API key.
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_floating_point.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "cai/concepts.hpp"
#include "cai/remote/remote_model.hpp"
#include "remote_fixtures.hpp"

using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::WithinAbs;
using cai_test::fake_server;
using cai_test::fast_options;

TEST_CASE("remote_model models language_model and scoring_model", "[remote][model]") {
  STATIC_REQUIRE(cai::language_model<cai::remote_model>);
  STATIC_REQUIRE(cai::scoring_model<cai::remote_model>);
  STATIC_REQUIRE(std::is_move_constructible_v<cai::remote_model>);
}

TEST_CASE("generate maps every generation option to the completions request", "[remote][model]") {
  CAI_REQUIRE_PYTHON3();
  fake_server server;
  cai::remote_model model(fast_options({server.base_url()}));

  cai::generation_request r;
  r.prompt = "Human: hello\n\nAssistant:";
  r.options.max_new_tokens = 17;
  r.options.temperature = 0.5;
  r.options.top_p = 0.9;
  r.options.top_k = 40;
  r.options.stop = {"\n\nHuman:"};
  r.options.seed = (std::uint64_t{1} << 40) + 5;
  const std::vector<cai::generation_request> requests{r};
  const auto texts = model.generate(requests);
  REQUIRE(texts.size() == 1);
  CHECK_THAT(texts[0], ContainsSubstring(" reply-"));
  CHECK_THAT(texts[0], !ContainsSubstring("Human"));  // cut at the stop sequence on this side too

  const auto last = server.stats()["last"];
  CHECK(last["model"] == "fake");
  CHECK(last["prompt"] == r.prompt);
  CHECK(last["max_tokens"] == 17);
  CHECK(last["temperature"] == 0.5);
  CHECK(last["top_p"] == 0.9);
  CHECK(last["top_k"] == 40);
  CHECK(last["stop"] == nlohmann::json::array({"\n\nHuman:"}));
  CHECK(last["seed"] == r.options.seed % (std::uint64_t{1} << 31));
  CHECK(last["n"] == 1);

  SECTION("the same request gives the same text") { CHECK(model.generate(requests) == texts); }
  SECTION("extra_body adds server-specific fields and cannot override the ones cai sets") {
    auto options = fast_options({server.base_url()}, cai::remote_scoring::none);
    options.extra_body = {{"repeat_penalty", 1.0}, {"max_tokens", 999}};
    cai::remote_model extra(options);
    (void)extra.generate(requests);
    const auto sent = server.stats()["last"];
    CHECK(sent["repeat_penalty"] == 1.0);
    CHECK(sent["max_tokens"] == 17);
  }
  SECTION("top_k is left out when it is 0 or when the server does not take it") {
    std::vector<cai::generation_request> plain{r};
    plain[0].options.top_k = 0;
    (void)model.generate(plain);
    CHECK_FALSE(server.stats()["last"].contains("top_k"));
    auto options = fast_options({server.base_url()});
    options.send_top_k = false;
    cai::remote_model no_top_k(options);
    (void)no_top_k.generate(requests);
    CHECK_FALSE(server.stats()["last"].contains("top_k"));
  }
}

TEST_CASE("generate sends role tagged messages to the chat endpoint", "[remote][model][chat]") {
  CAI_REQUIRE_PYTHON3();
  fake_server server;
  auto options = fast_options({server.base_url()}, cai::remote_scoring::none);
  options.api = cai::remote_api::chat;
  cai::remote_model model(options);

  cai::generation_request with_roles;
  with_roles.prompt = "ignored by a chat model";
  with_roles.messages = {{cai::role::system, "Be kind."},
                         {cai::role::user, "Hi"},
                         {cai::role::assistant, "Hello!"},
                         {cai::role::user, "Tell me more"}};
  cai::generation_request plain;
  plain.prompt = "Just a prompt";
  const std::vector<cai::generation_request> requests{with_roles, plain};
  const auto texts = model.generate(requests);
  REQUIRE(texts.size() == 2);
  CHECK_THAT(texts[0], Catch::Matchers::StartsWith("chat system/user/assistant/user "));
  CHECK_THAT(texts[1], Catch::Matchers::StartsWith("chat user "));
  const auto last = server.stats()["last"];
  CHECK(last.contains("messages"));
  CHECK_FALSE(last.contains("prompt"));
}

TEST_CASE("score sums the log probabilities of the continuation tokens found by text offset",
          "[remote][model][score]") {
  CAI_REQUIRE_PYTHON3();
  fake_server server;
  cai::remote_model model(fast_options({server.base_url()}));
  // The fake server gives each echoed token -0.25 per code point.
  const std::vector<cai::scoring_request> requests{
      {"The capital of France is", " Paris."},         // one token of 7 code points
      {"The capital of France is", " a very big city"},  // 2 + 5 + 4 + 5 code points
      {"Ça va", " très bien"},                          // offsets count code points, not bytes
  };
  const auto scores = model.score(requests);
  REQUIRE(scores.size() == 3);
  CHECK_THAT(scores[0], WithinAbs(-1.75, 1e-12));
  CHECK_THAT(scores[1], WithinAbs(-4.0, 1e-12));
  CHECK_THAT(scores[2], WithinAbs(-2.5, 1e-12));
  const auto last = server.stats()["last"];
  CHECK(last["echo"] == true);
  CHECK(last["logprobs"] == 1);
  CHECK(last["max_tokens"] == 1);
}

TEST_CASE("score refuses a boundary that falls inside a token", "[remote][model][score]") {
  CAI_REQUIRE_PYTHON3();
  fake_server server;
  cai::remote_model model(fast_options({server.base_url()}));
  const std::vector<cai::scoring_request> requests{{"The answer is abc", "def"}};
  try {
    (void)model.score(requests);
    FAIL("a straddling token was accepted");
  } catch (const cai::remote_error& e) {
    CHECK_THAT(e.what(), ContainsSubstring("spans the end of the context"));
    CHECK(e.endpoint() == server.base_url());
    CHECK_FALSE(e.request_id().empty());
  }
  CHECK(server.stats()["requests"] == 2);  // the probe and one try: a permanent error is not retried
}

TEST_CASE("construction rejects a server that cannot score", "[remote][model][score]") {
  CAI_REQUIRE_PYTHON3();
  SECTION("no log-probabilities") {
    fake_server server({"--default", "nologprobs"});
    CHECK_THROWS_WITH(cai::remote_model(fast_options({server.base_url()})), ContainsSubstring("cannot score"));
    CHECK(server.stats()["requests"] == 1);  // probed once
  }
  SECTION("no echo of the prompt") {
    fake_server server({"--default", "noecho"});
    CHECK_THROWS_AS(cai::remote_model(fast_options({server.base_url()})), cai::remote_error);
  }
  SECTION("a model built without scoring constructs and says so when asked to score") {
    fake_server server({"--default", "nologprobs"});
    cai::remote_model model(fast_options({server.base_url()}, cai::remote_scoring::none));
    CHECK(server.stats()["requests"] == 0);
    const std::vector<cai::scoring_request> requests{{"a", " b"}};
    CHECK_THROWS_AS(model.score(requests), cai::config_error);
  }
  SECTION("a probe that finds every endpoint down says so") {
    fake_server dead;
    const std::string dead_url = dead.base_url();
    dead.kill();
    CHECK_THROWS_WITH(cai::remote_model(fast_options({dead_url})), ContainsSubstring("every endpoint of the pool is down"));
  }
  SECTION("the probe passes over an endpoint that is down") {
    fake_server dead;
    const std::string dead_url = dead.base_url();
    dead.kill();
    fake_server alive;
    cai::remote_model model(fast_options({dead_url, alive.base_url()}));
    CHECK(alive.stats()["requests"] == 1);
  }
}

TEST_CASE("the API key is sent as a bearer token and never shown", "[remote][model][key]") {
  CAI_REQUIRE_PYTHON3();
  ::setenv("CAI_TEST_REMOTE_KEY", "sekrit-key-123", 1);
  fake_server server({"--expect-key-env", "CAI_TEST_REMOTE_KEY"});
  auto options = fast_options({server.base_url()}, cai::remote_scoring::none);
  options.pool.api_key_env = "CAI_TEST_REMOTE_KEY";
  cai::remote_model model(options);
  const std::vector<cai::generation_request> requests{{"hello", {}, {}}};
  (void)model.generate(requests);
  CHECK(server.stats()["auth"] == "ok");

  server.control({{"script", {"400"}}});
  try {
    (void)model.generate(requests);
    FAIL("a 400 was accepted");
  } catch (const cai::remote_error& e) {
    CHECK_THAT(e.what(), !ContainsSubstring("sekrit"));
    CHECK_THAT(e.what(), ContainsSubstring("HTTP 400"));
  }

  SECTION("a key variable that is not set is a configuration error naming the variable") {
    ::unsetenv("CAI_TEST_REMOTE_KEY_MISSING");
    auto missing = options;
    missing.pool.api_key_env = "CAI_TEST_REMOTE_KEY_MISSING";
    CHECK_THROWS_WITH(cai::remote_model(missing), ContainsSubstring("CAI_TEST_REMOTE_KEY_MISSING"));
  }
  ::unsetenv("CAI_TEST_REMOTE_KEY");
}

TEST_CASE("a batch spread over two servers comes back in input order", "[remote][model][pool]") {
  CAI_REQUIRE_PYTHON3();
  fake_server a;
  fake_server b;
  cai::remote_model pooled(fast_options({a.base_url(), b.base_url()}, cai::remote_scoring::none));
  std::vector<cai::generation_request> requests;
  for (int i = 0; i < 40; ++i) requests.push_back({"prompt number " + std::to_string(i), {}, {}});
  const auto texts = pooled.generate(requests);
  REQUIRE(texts.size() == requests.size());

  fake_server single;
  cai::remote_model one(fast_options({single.base_url()}, cai::remote_scoring::none));
  for (std::size_t i = 0; i < requests.size(); i += 7)
    CHECK(texts[i] == one.generate(std::span<const cai::generation_request>(&requests[i], 1))[0]);
  CHECK(a.stats()["requests"].get<int>() > 0);
  CHECK(b.stats()["requests"].get<int>() > 0);
  CHECK(a.stats()["requests"].get<int>() + b.stats()["requests"].get<int>() == 40);
}

TEST_CASE("the boundary reader checks what the server returned", "[remote][model][score]") {
  using cai::remote_detail::sum_continuation_logprobs;
  auto choice = [](nlohmann::json tokens, nlohmann::json logprobs, nlohmann::json offsets, std::string text) {
    return nlohmann::json{{"text", text},
                          {"logprobs", {{"tokens", tokens}, {"token_logprobs", logprobs}, {"text_offset", offsets}}}};
  };
  const std::string prompt = "Hi there";
  const auto good = choice({"Hi", " there", "!"}, {nullptr, -1.5, -0.5}, {0, 2, 8}, "Hi there!");
  CHECK(sum_continuation_logprobs(good, prompt, 0, 2) == -1.5);  // the generated "!" is not counted
  CHECK_THROWS_WITH(sum_continuation_logprobs(good, prompt, 0, 0), ContainsSubstring("non-empty context"));
  CHECK_THROWS_AS(sum_continuation_logprobs(choice({"Hi"}, {nullptr, -1.0}, {0}, prompt), prompt, 0, 2),
                  cai::malformed_response);  // arrays of different lengths
  CHECK_THROWS_AS(sum_continuation_logprobs(choice({"!"}, {-1.0}, {0}, "!"), prompt, 0, 2),
                  cai::malformed_response);  // the prompt is not echoed
  CHECK_THROWS_AS(sum_continuation_logprobs(nlohmann::json{{"text", prompt}}, prompt, 0, 2), cai::malformed_response);
  // An invisible prefix (a BOS marker) is echoed but not counted by the offsets.
  const auto prefixed = choice({"Hi", " there"}, {nullptr, -2.0}, {0, 2}, "<s>Hi there");
  CHECK(sum_continuation_logprobs(prefixed, "<s>" + prompt, 3, 2) == -2.0);
  CHECK(cai::remote_detail::cut_at_stop("abc\n\nHuman: x", {"\n\nHuman:", "c"}) == "ab");
  CHECK(cai::remote_detail::code_points("Ça") == 2);
}
